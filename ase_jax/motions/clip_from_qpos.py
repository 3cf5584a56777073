"""Simulator states -> a clip file: the inverse of `convert.convert_clip`.

`qpos_to_clip` turns a character's qpos per frame into a `RawClip` (the `.npy` SkeletonMotion layout
`npy_format.save_clip` writes): local rotations of every body (ball joints: their quaternion; hinges:
the rotation about their axis; bodies without a joint: identity) and the stored body velocities
computed as poselib did (docs/reference.md §1.1; the same as motions/authoring/skeleton_clip.py,
with the Gaussian filter written in numpy so that the package needs no scipy).
"""

from __future__ import annotations

import numpy as np

from ase_jax import quat
from ase_jax.character import Character
from ase_jax.motions.kinematics import forward_kinematics
from ase_jax.motions.npy_format import RawClip, Skeleton

# The root row of `local_translation` in the ASE files; forward kinematics never reads it.
ROOT_OFFSET = (0.0, 0.0, 1.0)
VELOCITY_SMOOTHING_SIGMA = 2.0  # frames, as poselib


def character_skeleton(character: Character) -> Skeleton:
    """The character's skeleton tree as clip files store it (MJCF body offsets, float32)."""
    offsets = np.array(character.model.body_pos[1:], np.float64)
    offsets[0] = ROOT_OFFSET
    return Skeleton(character.body_names, np.array(character.parent_indices, np.int64),
                    offsets.astype(np.float32).astype(np.float64))


def qpos_to_local_rotation(character: Character, qpos: np.ndarray) -> np.ndarray:
    """Local rotations (T, B, 4) wxyz from qpos (T, nq); [:, 0] is the root's."""
    qpos = np.asarray(qpos, np.float64)
    rot = np.zeros((qpos.shape[0], character.num_bodies, 4))
    rot[..., 0] = 1.0
    rot[:, 0] = qpos[:, 3:7]
    for joint in character.joints:
        if joint.kind == "ball":
            rot[:, joint.body] = qpos[:, joint.qpos_adr:joint.qpos_adr + 4]
        else:
            axis = np.broadcast_to(np.asarray(joint.axis, np.float64), (qpos.shape[0], 3))
            rot[:, joint.body] = quat.from_axis_angle(axis, qpos[:, joint.qpos_adr])
    return quat.normalize(rot)


def gaussian_filter_time(x: np.ndarray, sigma: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter1d(x, sigma, axis=0, mode='nearest') (truncate 4.0), in numpy."""
    radius = int(4.0 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.concatenate([np.repeat(x[:1], radius, 0), x, np.repeat(x[-1:], radius, 0)], axis=0)
    return sum(w * padded[i:i + x.shape[0]] for i, w in enumerate(k))


def body_velocities(local_rotation: np.ndarray, root_translation: np.ndarray, fps: float, skeleton: Skeleton):
    """World linear and angular velocity of every body, as poselib stored them: np.gradient of the
    positions, and q_{t+1} q_t^-1 of the global rotations (the last frame zero), each smoothed."""
    dt = 1.0 / float(fps)
    global_rot, global_pos = forward_kinematics(local_rotation, root_translation, skeleton.parent_indices,
                                                skeleton.local_translation)
    velocity = gaussian_filter_time(np.gradient(global_pos, axis=0) / dt, VELOCITY_SMOOTHING_SIGMA)
    diff = np.zeros_like(global_rot)
    diff[..., 0] = 1.0
    d = quat.normalize(quat.mul(global_rot[1:], quat.conj(global_rot[:-1])))
    diff[:-1] = np.where(d[..., :1] < 0, -d, d)
    angle = np.arccos(np.clip(2.0 * diff[..., 0] ** 2 - 1.0, -1.0, 1.0))
    axis = diff[..., 1:] / np.clip(np.linalg.norm(diff[..., 1:], axis=-1, keepdims=True), 1e-9, None)
    angular = gaussian_filter_time(axis * angle[..., None] / dt, VELOCITY_SMOOTHING_SIGMA)
    return velocity, angular


def qpos_to_clip(character: Character, qpos: np.ndarray, fps: float, path: str = "") -> RawClip:
    """A clip of `character` from its qpos per frame (T >= 2)."""
    skeleton = character_skeleton(character)
    rot = qpos_to_local_rotation(character, qpos)
    rot[:, 1:] = np.where(rot[:, 1:, :1] < 0, -rot[:, 1:], rot[:, 1:])  # w >= 0, as poselib
    for t in range(1, rot.shape[0]):  # the root keeps sign continuity over time
        if rot[t, 0] @ rot[t - 1, 0] < 0:
            rot[t, 0] = -rot[t, 0]
    root = np.array(qpos[:, :3], np.float64)
    vel, ang = body_velocities(rot, root, fps, skeleton)
    return RawClip(str(path), float(fps), skeleton, quat.to_xyzw(rot), root, vel, ang)
