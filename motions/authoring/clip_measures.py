"""The plausibility numbers of an authored clip (`measure_clip`): lowest geom, foot heights, foot
slide while in contact, self-penetration and joint-limit use, with MuJoCo kinematics on the MJCF
from the qpos that `ase_jax.motions.convert` makes of the clip (the same conversion training uses).
`make_bundled.py` refuses a clip whose numbers are out of its limits."""

from __future__ import annotations

import copy
import dataclasses

import mujoco
import numpy as np

from ase_jax import quat
from ase_jax.character import Character
from ase_jax.motions import geom_heights
from ase_jax.motions.convert import local_rotation_to_qpos
from ase_jax.motions.npy_format import RawClip


def geom_lowest_z(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """Height of the lowest point of every geom (planes: +inf) after mj_kinematics."""
    out = np.full(model.ngeom, np.inf)
    solids = [g for g in range(model.ngeom) if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_PLANE]
    out[solids] = geom_heights.geom_lowest_z(model, data, solids)
    return out


def _self_collision_model(model: mujoco.MjModel) -> mujoco.MjModel:
    """A copy of the model in which the character's geoms also collide with each other."""
    m = copy.copy(model)
    char = model.geom_bodyid > 0
    m.geom_contype[char] = m.geom_contype[char] | 4
    m.geom_conaffinity[char] = m.geom_conaffinity[char] | 4
    m.body_contype[1:] = m.body_contype[1:] | 4  # the broad phase filters bodies by these
    m.body_conaffinity[1:] = m.body_conaffinity[1:] | 4
    m.geom_margin[:] = 0.0
    m.geom_gap[:] = 0.0
    return m


@dataclasses.dataclass
class ClipMeasures:
    num_frames: int
    seconds: float
    root_speed: float  # horizontal root displacement / duration (m/s)
    min_geom_z: float  # lowest point of any character geom over all frames
    lowest_non_foot_z: float  # lowest point of any geom that is not a foot
    max_lowest_foot_z: float  # over frames, height of the lower foot (0 = a foot always touches)
    max_foot_slide: float  # largest horizontal travel of a foot corner while it touches the floor
    max_self_penetration: float  # deepest overlap of two non-adjacent character geoms
    self_penetration_pair: str
    max_joint_limit_excess: float  # largest excess over a joint's range (rad; <= 0 within range)
    max_joint_limit_joint: str


def measure_clip(character: Character, clip: RawClip, contact_height=0.005) -> ClipMeasures:
    """Plausibility numbers of a clip for `character` (see `ClipMeasures`)."""
    model = character.model
    rot = quat.from_xyzw(clip.local_rotation)
    qpos = local_rotation_to_qpos(clip.root_translation, rot, character)
    data = mujoco.MjData(model)
    coll_model = _self_collision_model(model)
    coll_data = mujoco.MjData(coll_model)
    foot_bodies = [b for b in range(model.nbody) if model.body(b).name.endswith("foot")]
    foot_geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] in foot_bodies]
    char_geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] > 0]
    other_geoms = [g for g in char_geoms if g not in foot_geoms]
    corners_local = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    num_frames = qpos.shape[0]
    lowest = np.zeros((num_frames, model.ngeom))
    corners = np.zeros((num_frames, len(foot_geoms), 8, 3))
    pen, pen_pair = 0.0, ""
    for t in range(num_frames):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        lowest[t] = geom_lowest_z(model, data)
        for k, g in enumerate(foot_geoms):
            r = data.geom_xmat[g].reshape(3, 3)
            corners[t, k] = data.geom_xpos[g] + (corners_local * model.geom_size[g]) @ r.T
        coll_data.qpos[:] = qpos[t]
        mujoco.mj_fwdPosition(coll_model, coll_data)
        for c in coll_data.contact[:coll_data.ncon]:
            if min(c.geom1, c.geom2) == 0:
                continue  # the floor
            if -c.dist > pen:
                pen = -c.dist
                pen_pair = f"{model.geom(c.geom1).name}/{model.geom(c.geom2).name} @ frame {t}"
    # Foot slide: horizontal travel of each corner over consecutive frames in which it touches.
    touching = corners[..., 2] < contact_height
    both = touching[1:] & touching[:-1]
    step = np.linalg.norm(corners[1:, ..., :2] - corners[:-1, ..., :2], axis=-1) * both
    slide = 0.0
    for k in range(len(foot_geoms)):
        for c in range(8):
            run = 0.0
            for s, b in zip(step[:, k, c], both[:, k, c]):
                run = run + s if b else 0.0
                slide = max(slide, run)
    # Joint limits: how far any joint goes past its MJCF range (radians, 0 = within).
    worst, worst_joint = 0.0, ""
    for info in character.joints:
        if info.kind == "ball":
            _, ang = quat.to_axis_angle(rot[:, info.body])
            over = np.abs(ang) - info.range[1]
        else:
            v = qpos[:, info.qpos_adr]
            over = np.maximum(info.range[0] - v, v - info.range[1])
        if float(over.max()) > worst or not worst_joint:
            worst, worst_joint = float(over.max()), info.name
    disp = clip.root_translation[-1] - clip.root_translation[0]
    return ClipMeasures(
        num_frames=num_frames, seconds=clip.length,
        root_speed=float(np.linalg.norm(disp[:2]) / clip.length),
        min_geom_z=float(lowest[:, char_geoms].min()),
        lowest_non_foot_z=float(lowest[:, other_geoms].min()),
        max_lowest_foot_z=float(lowest[:, foot_geoms].min(axis=1).max()),
        max_foot_slide=float(slide),
        max_self_penetration=float(pen), self_penetration_pair=pen_pair,
        max_joint_limit_excess=worst, max_joint_limit_joint=worst_joint,
    )
