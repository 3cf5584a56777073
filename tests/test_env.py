"""The jittable environment: observations, initialisation, termination and auto-reset.

One environment (4 characters) is compiled once for the whole session; tests drive it with
hand-made states where they need a particular situation.
"""

import dataclasses

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from ase_jax.mjx_import import mjx

from ase_jax import quat
from ase_jax.config import load_config
from ase_jax.env import HumanoidEnv
from ase_jax.env import observations as obs_lib
from ase_jax.motions import library as ml
from ase_jax.motions.dataset import load_dataset
from conftest import BUNDLED_YAML

NUM_ENVS = 4


@pytest.fixture(scope="session")
def bundled_lib(sword_shield):
    return ml.build_motion_lib(load_dataset(BUNDLED_YAML, sword_shield), sword_shield)


@pytest.fixture(scope="session")
def env(sword_shield, bundled_lib):
    config = load_config("tiny", {"episode_length": 80, "recovery_episode_prob": 0.0, "num_fall_states": 8,
                                   "self_collision": True})
    return HumanoidEnv(config.env, sword_shield, bundled_lib)


@pytest.fixture(scope="session")
def fns(env):
    """The compiled programs: reset, step, and a state setter (kinematics for given qpos/qvel)."""
    reset = jax.jit(jax.vmap(env.reset))
    step = jax.jit(jax.vmap(env.step))

    @jax.jit
    @jax.vmap
    def set_state(state, qpos, qvel):
        data = env._with_state(state.data, qpos, qvel)
        policy, frame = env._observe(data)
        history = jnp.broadcast_to(frame, state.amp_obs.shape)
        return state.replace(data=data, obs=policy, amp_obs=history, step_count=jnp.zeros_like(state.step_count),
                             recovery_count=jnp.zeros_like(state.recovery_count))

    return reset, step, set_state


@pytest.fixture(scope="session")
def state0(fns):
    return fns[0](jax.random.split(jax.random.PRNGKey(0), NUM_ENVS))


def _idle_states(bundled_lib, times):
    clip = bundled_lib.clip_names.index("idle")
    return ml.state_at(bundled_lib, jnp.full(len(times), clip), jnp.asarray(times, jnp.float32))


def _hold_action(env, qpos):
    """Actions whose PD targets are the joint positions of `qpos` (exp map for balls)."""
    targets = []
    for joint in env.character.joints:
        q = qpos[..., joint.qpos_adr: joint.qpos_adr + (4 if joint.kind == "ball" else 1)]
        targets.append(quat.to_exp_map(q) if joint.kind == "ball" else q)
    targets = jnp.concatenate(targets, axis=-1)
    return (targets - env._pd_offset) / env._pd_scale


def test_shapes(env, state0):
    assert env.obs_size == 253 and env.amp_obs_size == 140
    assert state0.obs.shape == (NUM_ENVS, 253)
    assert state0.amp_obs.shape == (NUM_ENVS, 10, 140)
    assert np.all(np.isfinite(np.asarray(state0.obs))) and np.all(np.isfinite(np.asarray(state0.amp_obs)))


def test_jit_vmap_step_runs(env, fns, state0):
    step = fns[1]
    s = state0
    np.testing.assert_array_equal(np.asarray(s.step_count), 0)  # a reset starts the episode at step 0
    expected = np.zeros(NUM_ENVS, int)
    for _ in range(3):
        s = step(s, jnp.zeros((NUM_ENVS, env.action_size)))
        # each step counts one more, unless it ended the episode (then the next episode is at step 0)
        expected = np.where(np.asarray(s.done) > 0, 0, expected + 1)
        np.testing.assert_array_equal(np.asarray(s.step_count), expected)
    assert s.obs.shape == (NUM_ENVS, 253) and np.all(np.isfinite(np.asarray(s.obs)))


def test_observations_are_heading_invariant(env, fns, state0, bundled_lib):
    """Turning the whole character about the vertical axis leaves both observations unchanged."""
    set_state = fns[2]
    ref = _idle_states(bundled_lib, [0.5, 1.0, 1.5, 2.0])
    qpos, qvel = np.array(ref.qpos), np.array(ref.qvel)
    qvel[:, 6:] += np.random.default_rng(0).normal(0, 0.5, qvel[:, 6:].shape)  # some joint motion too
    yaw = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.array([1.1, -2.0, 0.4, 3.0]))
    turned_qpos, turned_qvel = qpos.copy(), qvel.copy()
    turned_qpos[:, :3] = quat.rotate(yaw, qpos[:, :3]) + np.array([3.0, -2.0, 0.0])  # turned and moved
    turned_qpos[:, 3:7] = quat.mul(yaw, qpos[:, 3:7])
    turned_qvel[:, :3] = quat.rotate(yaw, qvel[:, :3])  # world linear velocity turns; body-frame angular does not
    a = set_state(state0, jnp.asarray(qpos, jnp.float32), jnp.asarray(qvel, jnp.float32))
    b = set_state(state0, jnp.asarray(turned_qpos, jnp.float32), jnp.asarray(turned_qvel, jnp.float32))
    np.testing.assert_allclose(np.asarray(a.obs), np.asarray(b.obs), atol=2e-4)
    np.testing.assert_allclose(np.asarray(a.amp_obs), np.asarray(b.amp_obs), atol=2e-4)


def test_observation_content(env, fns, state0, bundled_lib):
    """Hand-checked entries: root height first, body velocities match MuJoCo's own."""
    set_state = fns[2]
    ref = _idle_states(bundled_lib, [0.3] * NUM_ENVS)
    qvel = np.array(ref.qvel)
    qvel[:, :6] = [0.5, -0.2, 0.1, 0.3, -0.4, 0.2]
    s = set_state(state0, ref.qpos, jnp.asarray(qvel, jnp.float32))
    obs = np.asarray(s.obs[0])
    assert abs(obs[0] - float(ref.qpos[0, 2])) < 1e-5
    # Body-origin velocities from cvel agree with mj_objectVelocity of the body frame (XBODY: origin, not COM).
    m = env.mj_model
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = np.asarray(ref.qpos[0]), qvel[0]
    mujoco.mj_forward(m, d)
    h = quat.heading_inv(np.asarray(ref.qpos[0, 3:7], np.float64))
    vel = np.zeros((17, 6))
    for b in range(1, 18):
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_XBODY, b, vel[b - 1], 0)
    lin = quat.rotate(np.broadcast_to(h, (17, 4)), vel[:, 3:])
    ang = quat.rotate(np.broadcast_to(h, (17, 4)), vel[:, :3])
    np.testing.assert_allclose(obs[1 + 48 + 102: 1 + 48 + 102 + 51].reshape(17, 3), lin, atol=1e-4)
    np.testing.assert_allclose(obs[1 + 48 + 102 + 51:].reshape(17, 3), ang, atol=1e-4)


def test_demo_and_agent_amp_obs_are_identical(env, fns, state0, bundled_lib):
    """The discriminator sees the same numbers for a motion state and the simulated copy of it."""
    ref = ml.sample_states(bundled_lib, jax.random.PRNGKey(5), NUM_ENVS)[2]
    demo = jax.vmap(obs_lib.amp_obs_frame, in_axes=(0, 0, 0, None))(ref.qpos, ref.qvel, ref.body_pos, env.character)
    agent = fns[2](state0, ref.qpos, ref.qvel).amp_obs[:, 0]
    np.testing.assert_allclose(np.asarray(agent), np.asarray(demo), atol=1e-4)


def test_observations_after_a_step_are_of_the_new_state(env, fns, state0, bundled_lib):
    """After a step, observations describe the state the step ended in: the same numbers as
    observing that qpos/qvel afresh (mjx.step's own body poses lag it by one physics step, which
    at 4 m/s and 3 rad/s is centimetres, enough for the discriminator to tell agent from demo)."""
    _, step, set_state = fns
    ref = _idle_states(bundled_lib, [0.0, 0.5, 1.0, 1.5])
    qvel = ref.qvel.at[:, 0].set(4.0).at[:, 5].set(3.0)
    stepped = step(set_state(state0, ref.qpos, qvel), _hold_action(env, ref.qpos))
    assert not np.any(np.asarray(stepped.done))
    fresh = set_state(stepped, stepped.data.qpos, stepped.data.qvel)
    np.testing.assert_allclose(np.asarray(stepped.next_amp_obs[:, 0]), np.asarray(fresh.amp_obs[:, 0]), atol=1e-4)
    np.testing.assert_allclose(np.asarray(stepped.next_obs), np.asarray(fresh.obs), atol=1e-4)


def test_reference_pose_held_by_pd_stays_upright(env, fns, state0, bundled_lib):
    """From a reference state, PD targets at that pose keep the character standing for 2 s."""
    _, step, set_state = fns
    ref = _idle_states(bundled_lib, [0.0, 1.0, 2.0, 3.0])
    s = set_state(state0, ref.qpos, ref.qvel)
    action = _hold_action(env, ref.qpos)
    for _ in range(60):
        s = step(s, action)
        assert not np.any(np.asarray(s.done)), "an upright character held by PD ended its episode"
    assert np.all(np.asarray(s.data.qpos[:, 2]) > 0.75)


def test_a_character_tipped_over_falls_and_terminates(env, fns, state0, bundled_lib):
    """Idle poses turned 90 degrees about the forward axis, 0.6 m up: the character drops on its side
    and the fall ends its episode (terminated, not a time-out). (The env's own step, so that no other
    program is compiled; the drive's torque limit is tested in test_drive.py.)"""
    _, step, set_state = fns
    ref = _idle_states(bundled_lib, [0.0, 1.0, 2.0, 3.0])
    side = quat.from_axis_angle(jnp.array([1.0, 0.0, 0.0]), jnp.array(jnp.pi / 2))
    qpos = ref.qpos.at[:, 3:7].set(quat.mul(side[None], ref.qpos[:, 3:7])).at[:, 2].set(0.6)
    s = set_state(state0, qpos, jnp.zeros_like(ref.qvel))
    ended = np.zeros(NUM_ENVS, bool)
    for _ in range(30):  # 1 s
        s = step(s, jnp.zeros((NUM_ENVS, env.action_size)))
        ended |= np.asarray(s.terminated) > 0
    assert ended.all(), "a character on its side on the ground should trigger termination"


def test_fall_states_lie_on_the_ground(env):
    m = env.mj_model
    d = mujoco.MjData(m)
    heights = []
    for qpos in np.asarray(env._fall_qpos):
        d.qpos[:] = qpos
        mujoco.mj_kinematics(m, d)
        heights.append(d.xpos[env.character.body_id("head") + 1, 2])
    assert np.median(heights) < 0.5, heights


def test_fall_initialisation_starts_a_recovery(sword_shield, bundled_lib):
    config = load_config("tiny", {"fall_init_prob": 1.0, "num_fall_states": 8})
    fall_env = HumanoidEnv(config.env, sword_shield, bundled_lib)
    s = jax.jit(jax.vmap(fall_env.reset))(jax.random.split(jax.random.PRNGKey(1), NUM_ENVS))
    assert np.all(np.asarray(s.recovery_count) == config.env.recovery_steps)
    assert np.all(np.asarray(s.data.qpos[:, 2]) < 0.6), "fall starts should put the character on the ground"


def test_fall_states_one_per_env_by_default_and_none_without_fall_starts(sword_shield, monkeypatch):
    """num_fall_states=0 (the default, as the reference) makes one fallen pose per env; an env in
    which no episode starts fallen (playback, evaluation) makes none; 0 without the number of envs
    is refused in one line."""
    from ase_jax.env import humanoid
    from ase_jax.errors import AseInputError

    made = []
    real = humanoid.make_fall_states
    monkeypatch.setattr(humanoid, "make_fall_states", lambda character, num, *a: made.append(num) or real(character, 2, *a))
    default = load_config("default")
    assert default.env.num_fall_states == 0
    HumanoidEnv(dataclasses.replace(default.env, state_init="default"), sword_shield, num_envs=24)
    assert made == [24]
    HumanoidEnv(dataclasses.replace(default.env, state_init="default", num_fall_states=5), sword_shield, num_envs=24)
    assert made == [24, 5]
    playback = dataclasses.replace(default.env, state_init="default", fall_init_prob=0.0)
    env = HumanoidEnv(playback, sword_shield)
    assert made == [24, 5]
    start = jax.jit(env.reset)(jax.random.PRNGKey(0))  # no fall start, so the default pose
    np.testing.assert_allclose(np.asarray(start.data.qpos), env.mj_model.qpos0, atol=1e-6)
    with pytest.raises(AseInputError, match="num_fall_states=0.*num_fall_states=N"):
        HumanoidEnv(dataclasses.replace(default.env, state_init="default"), sword_shield)


def test_recovery_episode_keeps_its_discriminator_history(env, state0, sword_shield, bundled_lib):
    """A recovery start continues from the fallen state with its real past frames (no frozen copy)."""
    config = load_config("tiny", {"recovery_episode_prob": 1.0, "fall_init_prob": 0.0, "num_fall_states": 8})
    recovery_env = HumanoidEnv(config.env, sword_shield, bundled_lib)
    past = jax.random.normal(jax.random.PRNGKey(3), state0.amp_obs.shape[1:])
    one = jax.tree.map(lambda x: x[0], state0)
    start = jax.jit(recovery_env._initial_state)
    data, _, history, recovery_count = start(jax.random.PRNGKey(4), one.data, jnp.asarray(True),
                                             jnp.asarray(False), past)
    np.testing.assert_array_equal(np.asarray(history), np.asarray(past))
    np.testing.assert_allclose(np.asarray(data.qpos), np.asarray(one.data.qpos), atol=1e-6)
    assert int(recovery_count) == config.env.recovery_steps
    # A start that is not a recovery (the episode timed out) gets a fresh history.
    _, _, fresh, _ = start(jax.random.PRNGKey(4), one.data, jnp.asarray(False), jnp.asarray(False), past)
    assert not np.allclose(np.asarray(fresh), np.asarray(past))


def test_episode_end_resets_inside_jit(env, fns, state0, bundled_lib):
    """Episodes time out at episode_length - 1 steps, reset in the compiled step, and go on."""
    _, step, set_state = fns
    ref = _idle_states(bundled_lib, [0.0, 1.0, 2.0, 3.0])
    s = set_state(state0, ref.qpos, ref.qvel)
    action = _hold_action(env, ref.qpos)
    done_at = np.full(NUM_ENVS, -1)
    for t in range(env.config.episode_length + 5):
        s = step(s, action)
        newly = (np.asarray(s.done) > 0) & (done_at < 0)
        done_at[newly] = t + 1
    assert np.all(done_at == env.config.episode_length - 1), done_at
    assert np.all(np.asarray(s.step_count) == 6)
    assert np.all(np.isfinite(np.asarray(s.obs)))


def test_nan_action_terminates_without_spreading(env, fns, state0):
    step = fns[1]
    action = jnp.zeros((NUM_ENVS, env.action_size)).at[1, 3].set(jnp.nan)
    s = step(state0, action)
    assert np.asarray(s.terminated)[1] == 1 and np.asarray(s.done)[1] == 1
    assert np.asarray(s.metrics["nonfinite"])[1] == 1
    for leaf in jax.tree.leaves((s.obs, s.amp_obs, s.next_obs, s.next_amp_obs, s.data.qpos, s.data.qvel)):
        assert np.all(np.isfinite(np.asarray(leaf)))
    s = step(s, jnp.zeros((NUM_ENVS, env.action_size)))
    assert np.all(np.isfinite(np.asarray(s.data.qpos)))


def test_random_full_range_actions_stay_finite_for_10_s(env, fns, state0):
    """300 control steps of random targets over the whole action range: no state goes non-finite
    (which the env would count and reset), and joints move faster than the old F / kd cap."""
    step = fns[1]
    s, key, peak, nonfinite = state0, jax.random.PRNGKey(7), 0.0, 0.0
    for _ in range(300):
        key, k = jax.random.split(key)
        s = step(s, jax.random.uniform(k, (NUM_ENVS, env.action_size), minval=-1.0, maxval=1.0))
        nonfinite += float(np.asarray(s.metrics["nonfinite"]).sum())
        peak = max(peak, float(np.abs(np.asarray(s.data.qvel[:, 6:])).max()))
    cap = np.max(env.drive.torque_limit / env.drive.kd)
    assert nonfinite == 0
    assert cap < peak < 200.0, (cap, peak)


def test_self_contact_is_fall_contact_but_standing_is_no_fall(env, fns, state0):
    """The sword pressed into the torso of a standing character: both bodies touch something, which
    counts as fall contact, but nothing is low, so the episode goes on."""
    from test_drive import sword_in_torso_qpos

    _, step, set_state = fns
    qpos = jnp.asarray(np.repeat(sword_in_torso_qpos(env.character)[None], NUM_ENVS, 0), jnp.float32)
    s = set_state(state0, qpos, jnp.zeros((NUM_ENVS, env.character.nv)))
    s = step(s, _hold_action(env, qpos))
    touching = np.asarray(jax.jit(jax.vmap(env.body_contacts))(s.data))
    names = env.character.body_names
    assert touching[:, names.index("sword")].all() and touching[:, names.index("torso")].all()
    assert np.asarray(jax.jit(jax.vmap(env.fall_contact))(s.data)).all()
    assert not np.asarray(s.done).any()


@pytest.mark.timeout(900)
def test_start_initialisation_begins_at_a_clips_first_frame(sword_shield, bundled_lib):
    """state_init=start (the reference's StateInit.Start): every episode starts at the first frame of
    a sampled clip, with no random time inside it."""
    config = load_config("tiny", {"state_init": "start", "fall_init_prob": 0.0, "recovery_episode_prob": 0.0,
                                   "num_fall_states": 8})
    start_env = HumanoidEnv(config.env, sword_shield, bundled_lib)
    s = jax.jit(jax.vmap(start_env.reset))(jax.random.split(jax.random.PRNGKey(5), 16))
    num_clips = bundled_lib.clip_length.shape[0]
    firsts = np.asarray(ml.state_at(bundled_lib, jnp.arange(num_clips), jnp.zeros(num_clips)).qpos)
    qpos = np.asarray(s.data.qpos)[:, : firsts.shape[1]]
    nearest = np.abs(qpos[:, None, :] - firsts[None]).max(-1).min(-1)  # to the closest clip start
    np.testing.assert_allclose(nearest, 0.0, atol=1e-4)  # float32 kinematics: 3e-5 measured
    later = np.asarray(ml.state_at(bundled_lib, jnp.arange(num_clips), jnp.full(num_clips, 0.5)).qpos)
    assert np.abs(later - firsts).max() > 1e-2  # the clips move: a start at another time would show
