"""Clip files -> simulator states of a character (docs/reference.md §2.3-2.5).

The result is MuJoCo's generalised coordinates: qpos = [root pos, root quat wxyz, per joint: a
local quaternion (ball) or an angle (hinge)] and qvel = [root linear velocity (world), root angular
velocity (*body* frame, as MuJoCo's free joint stores it), per joint: child-frame relative angular
velocity (ball) or its component along the hinge axis]. This is the state the reference's motion
library produces, in MuJoCo's conventions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ase_jax import quat
from ase_jax.character import Character
from ase_jax.errors import MotionFileError
from ase_jax.motions.kinematics import forward_kinematics
from ase_jax.motions.npy_format import RawClip

# Largest allowed difference between a clip's bone offsets and the MJCF body positions.
OFFSET_TOLERANCE_M = 0.01


@dataclasses.dataclass(frozen=True)
class ClipStates:
    """A clip converted for one character; float64 numpy arrays over its T frames."""

    name: str
    path: str
    fps: float
    local_rotation: np.ndarray  # (T, B, 4) wxyz; [:, 0] is the root's global rotation
    qpos: np.ndarray  # (T, nq)
    qvel: np.ndarray  # (T, nv)
    body_pos: np.ndarray  # (T, B, 3) global body positions from the clip's own FK

    @property
    def num_frames(self) -> int:
        return self.qpos.shape[0]

    @property
    def dt(self) -> float:
        return 1.0 / self.fps

    @property
    def length(self) -> float:
        return (self.num_frames - 1) / self.fps


def check_skeleton(clip: RawClip, character: Character) -> None:
    """Raises MotionFileError if the clip was not made for this character's body tree."""
    names = clip.skeleton.node_names
    if names != character.body_names:
        if len(names) != len(character.body_names):
            problem = f"{len(names)} bodies, but character '{character.name}' has {len(character.body_names)}"
        else:
            i = next(i for i, (a, b) in enumerate(zip(names, character.body_names)) if a != b)
            problem = f"body {i} is '{names[i]}', but character '{character.name}' has '{character.body_names[i]}' there"
        raise MotionFileError(clip.path, f"skeleton does not match the character: {problem} "
                                         f"(clip bodies: {list(names)})")
    if tuple(int(p) for p in clip.skeleton.parent_indices) != character.parent_indices:
        raise MotionFileError(clip.path, f"skeleton parents {clip.skeleton.parent_indices.tolist()} differ from "
                                         f"character '{character.name}' {list(character.parent_indices)}")
    offsets = character.model.body_pos[2:]  # skip world and root
    err = np.abs(clip.skeleton.local_translation[1:] - offsets).max(axis=-1)
    if err.max() > OFFSET_TOLERANCE_M:
        b = int(err.argmax()) + 1
        raise MotionFileError(clip.path, f"bone offset of '{names[b]}' is {clip.skeleton.local_translation[b].tolist()}, "
                                         f"character '{character.name}' has {offsets[b - 1].tolist()} "
                                         f"(tolerance {OFFSET_TOLERANCE_M} m)")


def hinge_angle(q, axis):
    """Angle of local rotations q (..., 4) about a hinge axis, wrapped into [-pi, pi], as the reference
    does (docs/reference.md §2.4); numpy or jax arrays."""
    xp = quat._xp(q)
    rot_axis, angle = quat.to_axis_angle(q)
    theta = angle * xp.sum(rot_axis * xp.asarray(axis, dtype=rot_axis.dtype), axis=-1)
    return (theta + np.pi) % (2 * np.pi) - np.pi


def local_rotation_to_qpos(root_pos, local_rotation, character: Character):
    """qpos (..., nq) from root positions (..., 3) and local rotations (..., B, 4) wxyz.

    Works on numpy and jax arrays (used by the motion library inside jit).
    """
    xp = quat._xp(root_pos, local_rotation)
    parts = [root_pos, local_rotation[..., 0, :]]
    for joint in character.joints:
        q = local_rotation[..., joint.body, :]
        if joint.kind == "ball":
            parts.append(q)
        else:
            parts.append(hinge_angle(q, joint.axis)[..., None])
    return xp.concatenate(parts, axis=-1)


def _joint_velocities(local_rotation: np.ndarray, dt: float, character: Character) -> np.ndarray:
    """Child-frame relative angular velocity per joint (docs/reference.md §2.5), (T, nv - 6)."""
    dq = quat.normalize(quat.mul(quat.conj(local_rotation[:-1]), local_rotation[1:]))
    axis, angle = quat.to_axis_angle(dq)
    omega = axis * angle[..., None] / dt  # (T-1, B, 3)
    omega = np.concatenate([omega, omega[-1:]], axis=0)  # the last frame copies the one before
    parts = []
    for joint in character.joints:
        w = omega[:, joint.body]
        parts.append(w if joint.kind == "ball" else w @ np.asarray(joint.axis)[:, None])
    return np.concatenate(parts, axis=-1)


def convert_clip(clip: RawClip, character: Character, name: str | None = None) -> ClipStates:
    check_skeleton(clip, character)
    local_rotation = quat.from_xyzw(clip.local_rotation)
    root_rot = local_rotation[:, 0]
    qpos = local_rotation_to_qpos(clip.root_translation, local_rotation, character)
    root_ang_vel_body = quat.rotate(quat.conj(root_rot), clip.global_angular_velocity[:, 0])
    qvel = np.concatenate([clip.global_velocity[:, 0], root_ang_vel_body,
                           _joint_velocities(local_rotation, 1.0 / clip.fps, character)], axis=-1)
    _, body_pos = forward_kinematics(local_rotation, clip.root_translation,
                                     clip.skeleton.parent_indices, clip.skeleton.local_translation)
    if name is None:
        name = clip.path.rsplit("/", 1)[-1].removesuffix(".npy")
    return ClipStates(name, clip.path, clip.fps, local_rotation, qpos, qvel, body_pos)


def fk_error(states: ClipStates, character: Character) -> np.ndarray:
    """Per-frame max distance (m) between MuJoCo's body positions for the converted qpos and the
    clip's own forward kinematics: the round-trip check of the conversion."""
    import mujoco

    model = character.model
    data = mujoco.MjData(model)
    errors = np.zeros(states.num_frames)
    for t in range(states.num_frames):
        data.qpos[:] = states.qpos[t]
        mujoco.mj_kinematics(model, data)
        errors[t] = np.linalg.norm(data.xpos[1:] - states.body_pos[t], axis=-1).max()
    return errors
