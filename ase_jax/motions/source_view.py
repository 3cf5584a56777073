"""The source skeleton of a BVH file beside the character it was retargeted onto, as one video.

    python -m ase_jax.motions play DIR/NAME.npy --source=NAME.bvh --video=side_by_side.mp4

Left: the BVH's joints as spheres and its bones as capsules (the joints a map uses in orange, the
others grey), turned Z-up and into metres as the import does (the up axis and unit from
NAME.report.json beside the clip when it is there, else detected), resampled to the clip's frame rate
and stood on the floor. Right: the clip played on the character (`motions play`). Each side has its
own follow camera with the same distance and angles, so a retargeting problem (a limb turned the
wrong way, a lost foot contact, a stiff spine) shows at a glance. Offscreen, with MuJoCo's renderer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ase_jax.errors import AseInputError, MotionFileError

JOINT_RADIUS = 0.035
BONE_RADIUS = 0.018
MAPPED_RGBA = np.array([0.95, 0.55, 0.1, 1.0], np.float32)
OTHER_RGBA = np.array([0.6, 0.6, 0.6, 1.0], np.float32)
BONE_RGBA = np.array([0.85, 0.85, 0.8, 1.0], np.float32)

FLOOR_XML = """<mujoco model="bvh_source">
  <visual>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.6 0.6 0.6" specular="0.1 0.1 0.1"/>
  </visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.2 0.3 0.4" rgb2="0.1 0.2 0.3"
             width="512" height="512" mark="edge" markrgb="0.8 0.8 0.8"/>
    <material name="grid" texture="grid" texrepeat="1 1" texuniform="true" reflectance="0.1"/>
  </asset>
  <worldbody>
    <light pos="0 0 6" dir="0 0 -1" directional="true" castshadow="false"/>
    <geom type="plane" size="0 0 0.1" material="grid"/>
  </worldbody>
</mujoco>"""


def source_skeleton(bvh_path, fps: float, report_path=None, map_name: str | None = None):
    """(positions (T, J, 3) Z-up metres at `fps` with the lowest joint over the clip at JOINT_RADIUS,
    parent indices (J,), mapped (J,) bool): the BVH's joints as the import saw them."""
    from ase_jax.motions import bvh_maps
    from ase_jax.motions.bvh import read_bvh
    from ase_jax.motions.retarget_source import detect_unit_scale, detect_up, resample, standing_height, up_rotation

    motion = read_bvh(bvh_path)
    up = unit = None
    if report_path is not None and Path(report_path).is_file():
        report = json.loads(Path(report_path).read_text())
        up, unit = report.get("up"), report.get("unit_scale")
        map_name = map_name or (report.get("map") if report.get("map") in bvh_maps.BUILTIN_MAPS else None)
    mapped = np.zeros(len(motion.joint_names), bool)
    try:
        joint_map = bvh_maps.resolve_map(map_name, motion.joint_names, bvh_path)
    except MotionFileError:
        joint_map = None  # a custom map the report names but we do not have: no highlighting
    if joint_map is not None:
        names = set(joint_map.points.values())
        mapped = np.array([n in names for n in motion.joint_names])
    if up is None or unit is None:
        if joint_map is None:
            raise MotionFileError(bvh_path, "cannot tell its up axis and unit: import it first (the clip's "
                                            "NAME.report.json beside it says them)")
        up = up or detect_up(motion, joint_map)
        if unit is None:
            unit = detect_unit_scale(standing_height(motion, up), bvh_path)
    pos = resample(motion.positions(), motion.fps, fps) @ up_rotation(up).T * float(unit)
    pos[..., 2] -= pos[..., 2].min() - JOINT_RADIUS
    return pos, np.asarray(motion.parent_indices), mapped


def _add_bone(scene, a, b) -> None:
    import mujoco

    if scene.ngeom >= scene.maxgeom or np.linalg.norm(b - a) < 1e-6:
        return
    geom = scene.geoms[scene.ngeom]
    mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_CAPSULE, np.zeros(3), np.zeros(3), np.eye(3).ravel(), BONE_RGBA)
    mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_CAPSULE, BONE_RADIUS, np.asarray(a, np.float64),
                         np.asarray(b, np.float64))
    scene.ngeom += 1


def render_skeleton_frames(positions, parents, mapped=None, width: int = 640, height: int = 480,
                           like=None) -> np.ndarray:
    """(T, height, width, 3) uint8: each frame's joints as spheres and bones as capsules over a floor,
    with `render.render_frames`'s follow camera (tracking the root joint's xy). like: a model whose
    view (extent, clipping planes) to copy, so that both sides of a side-by-side video look alike."""
    import mujoco

    from ase_jax import render

    positions = np.asarray(positions, np.float64)
    mapped = np.zeros(positions.shape[1], bool) if mapped is None else np.asarray(mapped, bool)
    model = mujoco.MjModel.from_xml_string(FLOOR_XML)
    model.vis.global_.offwidth, model.vis.global_.offheight = width, height
    if like is not None:
        model.stat.extent, model.vis.map.znear, model.vis.map.zfar = like.stat.extent, like.vis.map.znear, like.vis.map.zfar
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    cam = render.follow_camera(positions[0, 0, :2])
    frames = np.empty((len(positions), height, width, 3), np.uint8)
    sphere = mujoco.mjtGeom.mjGEOM_SPHERE
    with render.make_renderer(model, width, height) as renderer:
        for t, pos in enumerate(positions):
            render.follow(cam, pos[0, :2])
            renderer.update_scene(data, camera=cam)
            scene = renderer.scene
            for j, p in enumerate(parents):
                if p >= 0:
                    _add_bone(scene, pos[p], pos[j])
            for j in range(len(parents)):
                render.add_geom(scene, sphere, [JOINT_RADIUS, 0, 0], pos[j], MAPPED_RGBA if mapped[j] else OTHER_RGBA)
            frames[t] = renderer.render()
    return frames


def side_by_side(character_model, qpos, fps: float, bvh_path, clip_path=None, width: int = 640,
                 height: int = 480) -> np.ndarray:
    """(T, height, 2 * width, 3): the source skeleton (left) beside the character playing `qpos` (right),
    T the shorter of the two (they cover the same duration at `fps`)."""
    from ase_jax import render

    report = None
    if clip_path is not None:
        report = Path(clip_path).with_name(Path(clip_path).name.removesuffix(".npy") + ".report.json")
    pos, parents, mapped = source_skeleton(bvh_path, fps, report)
    n = min(len(pos), len(qpos))
    if n < 1:
        raise AseInputError(f"{bvh_path}: no frames to show")
    left = render_skeleton_frames(pos[:n], parents, mapped, width, height, like=character_model)
    right = render.render_frames(character_model, np.asarray(qpos)[:n], width=width, height=height)
    return render.grid([left, right], cols=2)
