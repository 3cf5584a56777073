"""The jittable motion library: interpolation, weighted sampling and demo histories."""

import jax
import jax.numpy as jnp
import numpy as np

from ase_jax import quat
from ase_jax.motions import library as ml


def test_state_at_frame_times_returns_frames(reallusion_lib, reallusion_dataset):
    state_at = jax.jit(ml.state_at)
    for ci in (0, 17, 86):
        clip = reallusion_dataset.clips[ci]
        frames = np.arange(clip.num_frames)
        s = state_at(reallusion_lib, jnp.full(frames.shape, ci), jnp.asarray(frames / clip.fps, jnp.float32))
        np.testing.assert_allclose(np.asarray(s.qpos), clip.qpos, atol=2e-6)
        np.testing.assert_allclose(np.asarray(s.qvel), clip.qvel, atol=1e-4, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(s.body_pos), clip.body_pos, atol=2e-6)


def test_half_way_lies_between_frames(reallusion_lib, reallusion_dataset, sword_shield):
    ci, f = 5, 40
    clip = reallusion_dataset.clips[ci]
    s = jax.jit(ml.state_at)(reallusion_lib, jnp.array([ci]), jnp.array([(f + 0.5) / clip.fps]))
    qpos = np.asarray(s.qpos[0], np.float64)
    np.testing.assert_allclose(qpos[:3], 0.5 * (clip.qpos[f, :3] + clip.qpos[f + 1, :3]), atol=1e-6)
    # Rotations: slerp half-way is equally far (in angle) from both frames, and half as far as they are apart.
    for sl in [slice(3, 7)] + [slice(j.qpos_adr, j.qpos_adr + 4) for j in sword_shield.joints if j.kind == "ball"]:
        q0, q1, qm = clip.qpos[f, sl], clip.qpos[f + 1, sl], qpos[sl]
        ang = lambda a, b: 2 * np.arccos(min(1.0, abs(float(np.dot(a, b)))))
        total = ang(q0, q1)
        assert abs(ang(q0, qm) - total / 2) < 2e-3 and abs(ang(qm, q1) - total / 2) < 2e-3
    for j in sword_shield.joints:
        if j.kind == "hinge":
            a, b, m = clip.qpos[f, j.qpos_adr], clip.qpos[f + 1, j.qpos_adr], qpos[j.qpos_adr]
            assert min(a, b) - 1e-5 <= m <= max(a, b) + 1e-5


def test_weighted_sampling_follows_yaml_weights(reallusion_lib):
    n = 400_000
    ids = jax.jit(ml.sample_clips, static_argnums=2)(reallusion_lib, jax.random.PRNGKey(0), (n,))
    freq = np.bincount(np.asarray(ids), minlength=reallusion_lib.num_clips) / n
    w = np.asarray(reallusion_lib.clip_weight)
    # 5 standard deviations of a binomial proportion
    assert np.all(np.abs(freq - w) < 5 * np.sqrt(w * (1 - w) / n) + 1e-4)


def test_sample_times_within_clip(reallusion_lib):
    ids = ml.sample_clips(reallusion_lib, jax.random.PRNGKey(1), (10_000,))
    t = ml.sample_times(reallusion_lib, jax.random.PRNGKey(2), ids, truncate_time=0.3)
    length = np.asarray(reallusion_lib.clip_length)[np.asarray(ids)]
    assert np.all(np.asarray(t) >= 0) and np.all(np.asarray(t) <= np.maximum(length - 0.3, 0) + 1e-6)


def test_demo_history_is_newest_first(reallusion_lib):
    num, steps, dt = 64, 10, 1 / 30
    states = jax.jit(ml.sample_demo_history, static_argnums=(2, 3))(reallusion_lib, jax.random.PRNGKey(3), num, steps)
    assert states.qpos.shape == (num, steps, 47) and states.qvel.shape == (num, steps, 37)
    assert states.body_pos.shape == (num, steps, 17, 3)
    # The root moves consistently with its velocity from one slot to the next (slot 0 is newest).
    step_disp = np.asarray(states.qpos[:, :-1, :3] - states.qpos[:, 1:, :3])
    vel = np.asarray(states.qvel[:, 1:, :3]) * dt
    assert np.median(np.linalg.norm(step_disp - vel, axis=-1)) < 0.02
    # Unit quaternions everywhere.
    np.testing.assert_allclose(np.linalg.norm(np.asarray(states.root_rot), axis=-1), 1, atol=1e-5)


def test_sample_states_vmaps_and_jits(reallusion_lib):
    f = jax.jit(jax.vmap(lambda k: ml.sample_states(reallusion_lib, k, 4)))
    ids, times, states = f(jax.random.split(jax.random.PRNGKey(4), 3))
    assert ids.shape == (3, 4) and states.qpos.shape == (3, 4, 47)
    assert np.all(np.isfinite(np.asarray(states.qpos)))


def test_root_ang_vel_world(reallusion_lib, reallusion_dataset):
    s = ml.state_at(reallusion_lib, jnp.array([2]), jnp.array([0.5]))
    raw_world = quat.rotate(np.asarray(s.root_rot, np.float64), np.asarray(s.qvel[..., 3:6], np.float64))
    np.testing.assert_allclose(np.asarray(s.root_ang_vel), raw_world, atol=1e-5)


def test_root_ang_vel_between_frames_is_frame_i0s_in_the_world(reallusion_lib):
    """Velocities come from frame i0 (as in the reference), also for the root's angular velocity,
    which the free joint holds in the (interpolated) root frame."""
    lib = reallusion_lib
    starts, frames = np.asarray(lib.clip_start), np.asarray(lib.clip_num_frames)
    spin = np.linalg.norm(np.asarray(lib.qvel[:, 3:6]), axis=-1)
    last = np.zeros(len(spin), bool)
    last[starts + frames - 1] = True
    g = int(np.argmax(np.where(last, 0.0, spin)))  # the fastest-turning frame that has a successor
    clip = int(np.searchsorted(starts, g, side="right") - 1)
    dt = float(np.asarray(lib.clip_dt)[clip])
    i0 = g - int(starts[clip])
    at_frame = ml.state_at(lib, jnp.array([clip]), jnp.array([i0 * dt]))
    between = ml.state_at(lib, jnp.array([clip]), jnp.array([(i0 + 0.6) * dt]))
    np.testing.assert_allclose(np.asarray(between.root_ang_vel), np.asarray(at_frame.root_ang_vel), atol=1e-4)
    # Reading frame i0's body-frame value in the interpolated frame would turn it with the root.
    naive = quat.rotate(np.asarray(between.root_rot), np.asarray(lib.qvel[g, 3:6]))
    assert np.abs(naive - np.asarray(at_frame.root_ang_vel)).max() > 1e-3
