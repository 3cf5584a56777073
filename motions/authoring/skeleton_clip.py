"""The skeleton of an authored clip (from the character's MJCF) and the stored clip itself: a
`RawClip` with the body velocities computed the way poselib computed them for the ASE data
(docs/reference.md §1.1)."""

from __future__ import annotations

import mujoco
import numpy as np
from scipy.ndimage import gaussian_filter1d

from ase_jax import quat
from ase_jax.motions.kinematics import forward_kinematics
from ase_jax.motions.npy_format import RawClip, Skeleton

from .rotations import continuous_sign, quat_pos

# Root row of `local_translation` in the ASE sword-and-shield files (docs/reference.md §1.1). Forward
# kinematics never reads it (the root uses `root_translation`), so it only matters for fidelity.
ASE_ROOT_OFFSET = (0.0, 0.0, 1.0)

# poselib smooths the stored velocities with a Gaussian of this many frames (docs/reference.md §1.1).
VELOCITY_SMOOTHING_SIGMA = 2.0


def skeleton_from_mjcf(model: mujoco.MjModel, root_offset=ASE_ROOT_OFFSET) -> Skeleton:
    """The skeleton tree of the character in `model` (bodies 1..nbody-1, in MuJoCo order).

    Node names are the body names, parents are MuJoCo parents minus one (-1 for the root) and the
    local translations are the MJCF body `pos` offsets, rounded to float32 as the file stores them.
    The root row is `root_offset`, by default (0, 0, 1) like the ASE files; it is never used by
    forward kinematics (the root position is the clip's `root_translation`).
    """
    names = tuple(model.body(i).name for i in range(1, model.nbody))
    parents = np.array([int(model.body_parentid[i]) - 1 for i in range(1, model.nbody)], np.int64)
    offsets = np.array(model.body_pos[1:], np.float64)
    offsets[0] = root_offset
    offsets = offsets.astype(np.float32).astype(np.float64)
    return Skeleton(names, parents, offsets)


def compute_velocities(local_rotation_wxyz, root_translation, fps, skeleton: Skeleton):
    """World linear and angular velocity of every body, as poselib stored them (docs/reference.md §1.1).

    poselib `SkeletonMotion._compute_velocity`: np.gradient of the global body positions along time,
    divided by dt, then a Gaussian filter (sigma = 2 frames, mode 'nearest') along time.
    `_compute_angular_velocity`: per frame the rotation q_{t+1} q_t^-1 of the *global* body
    rotations, made w >= 0 and converted to angle in [0, pi] (angle = acos(2 w^2 - 1)) times the
    unit axis, divided by dt; the last frame gets the identity (zero velocity) before the same
    Gaussian filter. Returns (global_velocity (T, B, 3), global_angular_velocity (T, B, 3)).
    """
    dt = 1.0 / float(fps)
    global_rot, global_pos = forward_kinematics(np.asarray(local_rotation_wxyz, np.float64),
                                                np.asarray(root_translation, np.float64),
                                                skeleton.parent_indices, skeleton.local_translation)
    velocity = np.gradient(global_pos, axis=-3) / dt
    velocity = gaussian_filter1d(velocity, VELOCITY_SMOOTHING_SIGMA, axis=-3, mode="nearest")

    diff = np.zeros_like(global_rot)
    diff[..., 0] = 1.0
    d = quat.mul(global_rot[1:], quat.conj(global_rot[:-1]))
    diff[:-1] = quat_pos(d / np.linalg.norm(d, axis=-1, keepdims=True))
    angle = np.arccos(np.clip(2.0 * diff[..., 0] ** 2 - 1.0, -1.0, 1.0))
    axis = diff[..., 1:] / np.clip(np.linalg.norm(diff[..., 1:], axis=-1, keepdims=True), 1e-9, None)
    angular = axis * angle[..., None] / dt
    angular = gaussian_filter1d(angular, VELOCITY_SMOOTHING_SIGMA, axis=-3, mode="nearest")
    return velocity, angular


def make_clip(local_rotation_wxyz, root_translation, fps, skeleton: Skeleton, path: str = "") -> RawClip:
    """A `RawClip` (what `save_clip` writes) with poselib-style stored velocities.

    `local_rotation_wxyz` (T, B, 4): local joint rotations, [:, 0] the root's global rotation; they
    are normalised and made w >= 0 (the root keeps sign continuity over time instead).
    `root_translation` (T, 3): world position of the root body.
    """
    rot = np.array(local_rotation_wxyz, np.float64)
    rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
    rot[:, 1:] = quat_pos(rot[:, 1:])
    rot[:, 0] = continuous_sign(rot[:, 0])
    root = np.array(root_translation, np.float64)
    if rot.ndim != 3 or rot.shape[1:] != (skeleton.num_bodies, 4) or root.shape != (rot.shape[0], 3):
        raise ValueError(f"expected rotations (T, {skeleton.num_bodies}, 4) and root (T, 3), got "
                         f"{rot.shape} and {root.shape}")
    vel, ang = compute_velocities(rot, root, fps, skeleton)
    return RawClip(str(path), float(fps), skeleton, quat.to_xyzw(rot), root, vel, ang)
