"""The motion library on device: clip tables and jittable sampling and interpolation.

All clips are concatenated into flat frame tables with a start offset per clip, as in the
reference's `motion_lib.py` (docs/reference.md §2). Every function here is pure and jittable; the
library is a pytree (the character is static), so it can be passed into `jit` and closed over.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ase_jax import quat
from ase_jax.character import Character
from ase_jax.motions.convert import local_rotation_to_qpos
from ase_jax.motions.dataset import MotionDataset
from ase_jax.motions.kinematics import forward_kinematics


@struct.dataclass
class MotionState:
    """A character state taken from the motion data (any leading batch shape)."""

    qpos: jax.Array  # (..., nq) MuJoCo generalised positions
    qvel: jax.Array  # (..., nv) MuJoCo generalised velocities (root angular velocity in body frame)
    body_pos: jax.Array  # (..., B, 3) global body positions (forward kinematics of qpos)

    @property
    def root_pos(self) -> jax.Array:
        return self.qpos[..., 0:3]

    @property
    def root_rot(self) -> jax.Array:
        return self.qpos[..., 3:7]

    @property
    def root_vel(self) -> jax.Array:
        return self.qvel[..., 0:3]

    @property
    def root_ang_vel(self) -> jax.Array:
        """World-frame root angular velocity (what ASE's observations use)."""
        return quat.rotate(self.root_rot, self.qvel[..., 3:6])


@struct.dataclass
class MotionLib:
    local_rotation: jax.Array  # (F, B, 4) wxyz, [:, 0] is the root's global rotation
    root_pos: jax.Array  # (F, 3)
    qvel: jax.Array  # (F, nv)
    clip_start: jax.Array  # (C,) int32 index of each clip's first frame
    clip_num_frames: jax.Array  # (C,) int32
    clip_dt: jax.Array  # (C,) seconds per frame
    clip_length: jax.Array  # (C,) seconds, (T - 1) dt
    clip_weight: jax.Array  # (C,) sampling probabilities, sum to 1
    character: Character = struct.field(pytree_node=False)
    clip_names: tuple[str, ...] = struct.field(pytree_node=False)

    @property
    def num_clips(self) -> int:
        return len(self.clip_names)


def build_motion_lib(dataset: MotionDataset, character: Character, dtype=jnp.float32) -> MotionLib:
    clips = dataset.clips
    frames = np.array([c.num_frames for c in clips], np.int32)
    cat = lambda f: jnp.asarray(np.concatenate([f(c) for c in clips], axis=0), dtype)
    return MotionLib(
        local_rotation=cat(lambda c: c.local_rotation),
        root_pos=cat(lambda c: c.qpos[:, :3]),
        qvel=cat(lambda c: c.qvel),
        clip_start=jnp.asarray(np.concatenate([[0], np.cumsum(frames)[:-1]]), jnp.int32),
        clip_num_frames=jnp.asarray(frames),
        clip_dt=jnp.asarray([c.dt for c in clips], dtype),
        clip_length=jnp.asarray([c.length for c in clips], dtype),
        clip_weight=jnp.asarray(dataset.weights, dtype),
        character=character,
        clip_names=tuple(c.name for c in clips),
    )


def sample_clips(lib: MotionLib, key: jax.Array, shape=()) -> jax.Array:
    """Clip indices drawn with replacement by the dataset weights."""
    return jax.random.categorical(key, jnp.log(lib.clip_weight), shape=shape)


def sample_times(lib: MotionLib, key: jax.Array, clip_ids: jax.Array, truncate_time: float = 0.0) -> jax.Array:
    """Times U(0, 1) * (length - truncate_time) within each clip (docs/reference.md §2.1)."""
    u = jax.random.uniform(key, clip_ids.shape, lib.clip_length.dtype)
    return u * jnp.maximum(lib.clip_length[clip_ids] - truncate_time, 0.0)


def _frame_blend(lib: MotionLib, clip_ids, times):
    """(global frame i0, global frame i1, blend) for times in seconds (docs/reference.md §2.2).

    Differences from the reference, both on purpose: the blend is clamped to [0, 1] (the reference
    extrapolates for t < 0), and a tiny epsilon keeps t = k dt on frame k despite float rounding.
    """
    num_frames = lib.clip_num_frames[clip_ids]
    dt = lib.clip_dt[clip_ids]
    t = jnp.clip(times, 0.0, lib.clip_length[clip_ids])
    i0 = jnp.clip(jnp.floor(t / dt + 1e-4).astype(jnp.int32), 0, num_frames - 1)
    i1 = jnp.minimum(i0 + 1, num_frames - 1)
    blend = jnp.clip((t - i0 * dt) / dt, 0.0, 1.0)
    start = lib.clip_start[clip_ids]
    return start + i0, start + i1, blend


def state_at(lib: MotionLib, clip_ids: jax.Array, times: jax.Array) -> MotionState:
    """The character state of each clip at each time (docs/reference.md §2.3).

    The root position is interpolated linearly, rotations by slerp; velocities come from frame i0,
    as in the reference (the root's angular velocity is frame i0's in the world frame, expressed in
    the interpolated root frame, where MuJoCo's free joint reads it). Body positions are the
    forward kinematics of the interpolated pose (the reference lerps stored key-body positions
    instead, which differs from the pose between frames by a few mm and would let the
    discriminator tell demo from agent).
    """
    f0, f1, blend = _frame_blend(lib, clip_ids, times)
    b = blend[..., None]
    root_pos = (1.0 - b) * lib.root_pos[f0] + b * lib.root_pos[f1]
    rotation0 = lib.local_rotation[f0]
    local_rotation = quat.slerp(rotation0, lib.local_rotation[f1], blend[..., None])
    model = lib.character.model
    _, body_pos = forward_kinematics(local_rotation, root_pos, lib.character.parent_indices, model.body_pos[1:])
    qpos = local_rotation_to_qpos(root_pos, local_rotation, lib.character)
    qvel = lib.qvel[f0]
    root_ang_vel_world = quat.rotate(rotation0[..., 0, :], qvel[..., 3:6])
    qvel = qvel.at[..., 3:6].set(quat.rotate(quat.conj(local_rotation[..., 0, :]), root_ang_vel_world))
    return MotionState(qpos=qpos, qvel=qvel, body_pos=body_pos)


def history_times(times: jax.Array, num_steps: int, dt: float) -> jax.Array:
    """(..., num_steps) times t, t - dt, ..., newest first, as the discriminator history is ordered."""
    return times[..., None] - dt * jnp.arange(num_steps, dtype=times.dtype)


def sample_states(lib: MotionLib, key: jax.Array, num: int):
    """Reference-state initialisation: (clip_ids, times, states) for `num` random (clip, time)."""
    k_clip, k_time = jax.random.split(key)
    clip_ids = sample_clips(lib, k_clip, (num,))
    times = sample_times(lib, k_time, clip_ids)
    return clip_ids, times, state_at(lib, clip_ids, times)


def sample_demo_history(lib: MotionLib, key: jax.Array, num: int, num_steps: int = 10,
                        dt: float = 1.0 / 30.0) -> MotionState:
    """States for `num` demo discriminator samples, shape (num, num_steps, ...), newest first.

    t0 is drawn in [dt (num_steps - 1), length] as the reference's `fetch_amp_obs_demo` does.
    """
    k_clip, k_time = jax.random.split(key)
    clip_ids = sample_clips(lib, k_clip, (num,))
    truncate = dt * (num_steps - 1)
    t0 = sample_times(lib, k_time, clip_ids, truncate) + truncate
    times = history_times(t0, num_steps, dt)
    return state_at(lib, jnp.broadcast_to(clip_ids[:, None], times.shape), times)
