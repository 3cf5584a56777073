"""The first two steps of retargeting a source skeleton's motion onto a character
(docs/motions_import.md): the source's frame, and the targets in the character's proportions.

1. Source frame: the file's joint positions are turned Z-up (the up axis found from the rest pose:
   head above feet, or given) and into metres (the unit found from the skeleton's height, or given),
   and resampled to the clip rate.
2. Targets scaled to the character's proportions: the pelvis follows the source's hips, its
   translation scaled by the ratio of the character's leg length to the source's; every other
   point is placed from its parent point along the source's bone direction at the *character's*
   bone length. So a target pose has the character's proportions and is reachable, up to the
   angles between bones that the two skeletons do not share. Where the map says the source's joint
   frames are the character's and the rest poses agree, the joints' orientations are targets too.

The targets go to `retarget_ik.solve`, its solution to `retarget_floor.ground`.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from ase_jax import quat
from ase_jax.character import Character
from ase_jax.errors import MotionFileError
from ase_jax.motions.bvh import BvhMotion
from ase_jax.motions.bvh_maps import JointMap, character_points, point_offsets
from ase_jax.motions.kinematics import forward_kinematics

# Known units, as metres per file unit, and the standing heights (m) we accept.
UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254}
PLAUSIBLE_HEIGHT_M = (0.4, 3.0)

# A same-frames map (our own skeleton's names) matches the joints' rotations only if the source's rest
# pose is the character's: with a bone more than this far off (a T-pose source, say) its joint frames
# are not the character's and only positions are matched.
REST_POSE_TOLERANCE_DEG = 10.0


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    up: str  # "+y", "-y", "+z", "-z", "+x", "-x": the file's up axis
    unit_scale: float  # metres per file unit
    height_m: float  # standing height: the rest pose's highest joint or end site above its lowest, metres
    proportion_scale: float  # character leg length / source leg length (applied to the root path)
    fps: float
    rest_pose_difference_deg: float = 0.0  # largest angle between a source and a character rest bone
    rotations_matched: bool = False  # orientation targets used (a same-frames map and matching rest poses)


def _rest_height_vector(motion: BvhMotion, joint_map: JointMap) -> np.ndarray:
    rest = motion.rest_positions()
    idx = {n: i for i, n in enumerate(motion.joint_names)}
    head = rest[idx[joint_map.points["head"]]]
    feet = np.mean([rest[idx[joint_map.points[f]]] for f in ("right_foot", "left_foot")], axis=0)
    return head - feet


def detect_up(motion: BvhMotion, joint_map: JointMap) -> str:
    """The file's up axis: the axis along which the head stands above the feet in the rest pose."""
    v = _rest_height_vector(motion, joint_map)
    k = int(np.argmax(np.abs(v)))
    if np.abs(v[k]) < 0.8 * np.linalg.norm(v):
        raise MotionFileError(motion.path, f"cannot tell the up axis from the rest pose (head - feet = "
                                           f"{np.round(v, 3).tolist()}); pass --up=y or --up=z")
    return ("+" if v[k] > 0 else "-") + "xyz"[k]


def up_rotation(up: str) -> np.ndarray:
    """The rotation matrix taking the file's axes to ours (Z up)."""
    sign, axis = (-1.0 if up[0] == "-" else 1.0), up[-1]
    if axis == "z":
        return np.diag([1.0, sign, sign])
    if axis == "y":  # +y: a quarter turn about x (y -> z, z -> -y)
        return np.array([[1.0, 0, 0], [0, 0, -sign], [0, sign, 0]])
    return np.array([[0, 0, -sign], [0, 1.0, 0], [sign, 0, 0]])  # +x: a quarter turn about y


def standing_height(motion: BvhMotion, up: str) -> float:
    """The rest pose's extent along the up axis, in file units: from its lowest joint or end site (toe
    tips, else ankles) to its highest (the head's end site where the file has one, else the head joint)."""
    z = (motion.rest_extent() @ up_rotation(up).T)[:, 2]
    return float(z.max() - z.min())


def detect_unit_scale(height_in_file_units: float, path) -> float:
    """Metres per file unit: the first of m, cm, mm, inches giving a plausible human height."""
    for scale in UNIT_SCALES.values():
        if PLAUSIBLE_HEIGHT_M[0] <= height_in_file_units * scale <= PLAUSIBLE_HEIGHT_M[1]:
            return scale
    raise MotionFileError(path, f"cannot tell the unit: the skeleton is {height_in_file_units:.4g} file units tall "
                                f"(standing); pass --scale=METRES_PER_UNIT (e.g. 0.01 for cm)")


def _resample_at(num_in: int, fps_in: float, fps_out: float):
    """(source index below, source index above, weight) of each output frame, over the same duration;
    None when the rates and counts already agree."""
    num_out = int(np.floor((num_in - 1) / fps_in * fps_out + 1e-6)) + 1
    if num_out == num_in and np.isclose(fps_in, fps_out):
        return None
    t = np.arange(num_out) * fps_in / fps_out
    i0 = np.minimum(np.floor(t).astype(int), num_in - 1)
    return i0, np.minimum(i0 + 1, num_in - 1), t - i0


def resample(values: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear resampling of (T, ...) samples along time to fps_out, over the same duration."""
    at = _resample_at(values.shape[0], fps_in, fps_out)
    if at is None:
        return values
    i0, i1, w = at
    w = w.reshape((-1,) + (1,) * (values.ndim - 1))
    return values[i0] * (1 - w) + values[i1] * w


def resample_quat(q: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Slerp resampling of (T, ..., 4) quaternions along time to fps_out."""
    at = _resample_at(q.shape[0], fps_in, fps_out)
    if at is None:
        return q
    i0, i1, w = at
    w = w.reshape((-1,) + (1,) * (q.ndim - 2))
    return quat.slerp(q[i0], q[i1], np.broadcast_to(w, q[i0].shape[:-1]))


def _leg_length(pos: dict, side: str) -> float:
    return (np.linalg.norm(pos[f"{side}_shin"] - pos[f"{side}_thigh"])
            + np.linalg.norm(pos[f"{side}_foot"] - pos[f"{side}_shin"]))


def source_targets(motion: BvhMotion, joint_map: JointMap, character: Character, fps: float,
                   up: str | None = None, unit_scale: float | None = None) -> tuple[dict, dict, SourceInfo]:
    """Per-point target positions {name: (T, 3)} at `fps`, Z-up, in metres, in the character's
    proportions; orientation targets {name: (T, 4) wxyz} of the body-origin points when the map
    says the source's joint frames are the character's (else empty); what was found about the source."""
    if up is None:
        up = detect_up(motion, joint_map)
    rot = up_rotation(up)
    height = standing_height(motion, up)
    if unit_scale is None:
        unit_scale = detect_unit_scale(height, motion.path)
    idx = {n: i for i, n in enumerate(motion.joint_names)}
    points = [p for p in character_points() if p.name in joint_map.points]
    positions = resample(motion.positions(), motion.fps, fps) @ rot.T * unit_scale  # (T, J, 3)
    rest = motion.rest_positions() @ rot.T * unit_scale
    src = {p.name: positions[:, idx[joint_map.points[p.name]]] for p in points}
    src_rest = {p.name: rest[idx[joint_map.points[p.name]]] for p in points}
    char_rest = point_offsets(points, character.model)
    src_leg = 0.5 * (_leg_length(src_rest, "right") + _leg_length(src_rest, "left"))
    if src_leg < 1e-6:
        raise MotionFileError(motion.path, "the mapped leg joints coincide in the rest pose (leg length 0)")
    scale = 0.5 * (_leg_length(char_rest, "right") + _leg_length(char_rest, "left")) / src_leg
    targets = {"pelvis": src["pelvis"] * scale}
    for p in points[1:]:  # parents come first
        bone = src[p.name] - src[p.parent]
        length = np.linalg.norm(bone, axis=-1, keepdims=True)
        rest_dir = char_rest[p.name] - char_rest[p.parent]
        direction = np.where(length > 1e-9, bone / np.maximum(length, 1e-9), rest_dir / np.linalg.norm(rest_dir))
        targets[p.name] = targets[p.parent] + direction * np.linalg.norm(rest_dir)
    rest_deg = rest_pose_difference_deg(src_rest, char_rest, points)
    orientations = {}
    if joint_map.same_frames and rest_deg <= REST_POSE_TOLERANCE_DEG:
        q_up = np.zeros(4)
        mujoco.mju_mat2Quat(q_up, rot.reshape(-1))
        global_rot, _ = forward_kinematics(motion.local_rotation, motion.root_translation, motion.parent_indices,
                                           motion.offsets)
        global_rot = resample_quat(global_rot, motion.fps, fps)
        for p in points:
            if p.local == (0, 0, 0):
                g = global_rot[:, idx[joint_map.points[p.name]]]
                orientations[p.name] = quat.normalize(quat.mul(quat.mul(q_up, g), quat.conj(q_up)))
    return targets, orientations, SourceInfo(up, unit_scale, height * unit_scale, float(scale), motion.fps,
                                             rest_deg, bool(orientations))


def rest_pose_difference_deg(src_rest: dict, char_rest: dict, points) -> float:
    """Largest angle (degrees) between a bone (point minus its parent point) of the source's rest
    pose and the same bone of the character's (Z up, both): 0 when the rest poses agree, about 90 for
    a T-pose source retargeted onto a character whose arms hang down."""
    worst = 0.0
    for p in points:
        if p.parent is None:
            continue
        a, b = src_rest[p.name] - src_rest[p.parent], char_rest[p.name] - char_rest[p.parent]
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na > 1e-9 and nb > 1e-9:
            worst = max(worst, float(np.degrees(np.arccos(np.clip(a @ b / (na * nb), -1.0, 1.0)))))
    return worst
