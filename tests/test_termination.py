"""The fall test and the strike task's termination (`ase_jax.env.termination`), shared by the MJX env
and the C MuJoCo player.

Closed form: the rule on hand-made contact lists, numpy and jax (eager and jitted) giving the same
answers. Against each other: the strike scene in four poses (standing, lying on the floor, the sword
in the target, the shield against the target), set in the MJX env and in the C MuJoCo player;
their contact tests agree on the same state, and one control step of each ends the same episodes.
One MJX program pair (forward, step) is compiled for the module.
"""

import dataclasses
import types

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from ase_jax.inference import mujoco_player as play_mujoco
from ase_jax.inference.policy import Policy
from ase_jax.config import load_config
from ase_jax.env.fall_states import make_fall_states
from ase_jax.env import termination
from ase_jax.tasks.strike import SHIELD_PROXY, TARGET

# --- the rule in closed form ---------------------------------------------------------------------

# Three bodies: 0 head (termination height 0.3 m), 1 arm (0.15 m), 2 foot (a contact body).
# Geoms: 0 floor, 1 head, 2 arm, 3 foot, 4 a prop (world and props share the slot after the bodies).
HAND_SCENE = termination.Scene(
    character=types.SimpleNamespace(num_bodies=3, body_names=("head", "arm", "foot"),
                                    body_id=("head", "arm", "foot").index),
    geom_body=np.array([3, 0, 1, 2, 3], np.int32), geom_names=("floor", "head", "arm", "foot", "prop"),
    is_contact_body=np.array([False, False, True]), termination_heights=np.array([0.3, 0.15, 0.15]))
HIGH = np.array([1.5, 1.0, 0.05])  # the foot is low, as standing feet are
LOW_HEAD = np.array([0.2, 1.0, 0.05])

# (contact pairs, distances, heights) -> (body flags, fall contact, below height, fallen)
CASES = [
    ([], [], HIGH, ([0, 0, 0], False, False, False)),  # no contacts
    ([[0, 3]], [-0.01], LOW_HEAD, ([0, 0, 1], False, True, False)),  # only the foot touches: no fall
    ([[0, 2]], [0.001], LOW_HEAD, ([0, 0, 0], False, True, False)),  # arm near the floor, not touching
    ([[0, 2]], [-0.001], HIGH, ([0, 1, 0], True, False, False)),  # arm touches, nothing low
    ([[2, 0], [0, 3]], [-0.001, -0.02], LOW_HEAD, ([0, 1, 1], True, True, True)),  # arm touches, head low
    ([[1, 2]], [-0.003], LOW_HEAD, ([1, 1, 0], True, True, True)),  # self-contact counts (head-arm)
    ([[4, 1], [0, 2]], [-0.01, 0.2], HIGH, ([1, 0, 0], True, False, False)),  # head on a prop
    ([[0, 3]], [-0.01], np.array([1.5, 1.0, -0.1]), ([0, 0, 1], False, False, False)),  # a low foot is no fall
]


def _evaluate(contacts, heights):
    flags = termination.body_contacts(contacts, HAND_SCENE)
    return (flags, termination.fall_contact(flags, HAND_SCENE), termination.below_height(heights, HAND_SCENE),
            termination.has_fallen(contacts, heights, HAND_SCENE))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pairs, dist, heights, expected", CASES)
def test_fall_rule_closed_form_numpy_and_jax(pairs, dist, heights, expected):
    geom = np.asarray(pairs, np.int32).reshape(-1, 2)
    dist = np.asarray(dist, np.float32)
    runs = {
        "numpy": _evaluate(termination.Contacts(geom, dist), heights),
        "jax": _evaluate(termination.Contacts(jnp.asarray(geom), jnp.asarray(dist)), jnp.asarray(heights, jnp.float32)),
        "jit": jax.jit(lambda g, d, h: _evaluate(termination.Contacts(g, d), h))(geom, dist, heights.astype(np.float32)),
    }
    flags, contact, low, fallen = expected
    for name, (f, c, l, fa) in runs.items():
        assert np.asarray(f).tolist() == [bool(x) for x in flags], name
        assert (bool(c), bool(l), bool(fa)) == (contact, low, fallen), name
    assert isinstance(runs["numpy"][3], (bool, np.bool_))  # numpy in, numpy out (no jax in the player)


@pytest.mark.timeout(60)
def test_episode_end_rule():
    for xp_fallen in (True, np.True_, jnp.asarray(True)):
        assert bool(termination.ends_episode(xp_fallen, 2, 0))
        assert not bool(termination.ends_episode(xp_fallen, 1, 0))  # not on the first step
        assert not bool(termination.ends_episode(xp_fallen, 5, 3))  # protected by the recovery counter
    assert not bool(termination.ends_episode(False, 5, 0))


# --- the strike scene, MJX and C MuJoCo ----------------------------------------------------------

POSES = ("standing", "lying", "sword_in_target", "shield_on_target")
# What each pose is: (fallen, strike termination). The sword in the target is a hit by a striking
# body, which does not end the episode; the target against the shield (a body other than the feet
# and the striking arm) does, as in the reference.
EXPECTED = {"standing": (False, False), "lying": (True, False), "sword_in_target": (False, False),
            "shield_on_target": (False, True)}
DEPTH = 0.03  # m, how far the target is pushed into the sword or the shield


@pytest.fixture(scope="module")
def strike():
    """(env, player, scene qpos of each pose (4, nq)): the strike scene of task_tiny."""
    from ase_jax.env_factory import make_env, purpose_config

    config = purpose_config(load_config("task_tiny", {"name": "strike", "scratch": True}), "train")
    env = make_env(config, "train")
    assert config.env.early_termination
    policy = Policy(low_level=None, high_level=None, steps_per_action=1, character_obs_size=env.character_obs_size,
                    latent_dim=None, meta={}, env_config=config.env, character=env.character, task=env.task,
                    source="test", step=0, traceable=False)
    sim = play_mujoco.Simulation(policy)
    return env, sim, _poses(env, sim)


def _poses(env, sim):
    m, d, c = sim.model, mujoco.MjData(sim.model), env.character
    q_target = c.nq  # the target's free joint follows the character's coordinates
    half = env.task.half_size
    standing = m.qpos0.copy()
    standing[q_target: q_target + 3] = [5.0, 0.0, half[2]]  # far away
    d.qpos[:] = standing
    mujoco.mj_forward(m, d)
    blade, proxy = m.geom("sword_blade").id, m.geom(SHIELD_PROXY).id
    # The default pose holds the blade along +x and the shield's proxy box in the xz plane.
    tip = d.geom_xpos[blade] + d.geom_xmat[blade].reshape(3, 3)[:, 0] * m.geom_size[blade][0]
    front = d.geom_xpos[proxy][0] + m.geom_size[proxy][0]
    sword = standing.copy()
    sword[q_target: q_target + 3] = [tip[0] + half[0] - DEPTH, tip[1], half[2]]
    shield = standing.copy()
    shield[q_target: q_target + 3] = [front + half[0] - DEPTH, d.geom_xpos[proxy][1], half[2]]
    lying = standing.copy()  # a fallen pose as the env makes them (the task config starts none fallen)
    lying[: c.nq] = make_fall_states(c, 1, seed=0, self_collision=env.config.self_collision,
                                     torque_limit=env.config.pd_torque_limit)[0]
    return np.stack([standing, lying, sword, shield])


def _mujoco_contacts(sim, qpos):
    """(body flags, fallen, strike termination) of C MuJoCo's contacts at qpos (mj_forward)."""
    sim.data.qpos[:] = qpos
    sim.data.qvel[:] = 0.0
    mujoco.mj_forward(sim.model, sim.data)
    contacts = termination.mujoco_contacts(sim.data)
    return (termination.body_contacts(contacts, sim.scene), sim.fallen(),
            bool(sim.task.terminated({}, sim._view(), contacts, sim.scene)))


@pytest.fixture(scope="module")
def mjx_contacts(strike):
    """The env's (body flags, fallen, strike termination) of each pose after mjx.forward."""
    from ase_jax.mjx_import import mjx

    env, _, qpos = strike

    @jax.jit
    @jax.vmap
    def run(q):
        data = mjx.forward(env.mjx_model, env._blank_data.replace(qpos=q))
        contacts = termination.mjx_contacts(data)
        return (env.body_contacts(data), env._has_fallen(data),
                env.task.terminated({}, data, contacts, env.scene))

    return tuple(np.asarray(x) for x in run(jnp.asarray(qpos, jnp.float32)))


@pytest.mark.timeout(900)
def test_same_contacts_falls_and_strike_hits_on_the_same_state(strike, mjx_contacts):
    env, sim, qpos = strike
    flags, fallen, hit = mjx_contacts
    names = env.character.body_names
    for k, pose in enumerate(POSES):
        c_flags, c_fallen, c_hit = _mujoco_contacts(sim, qpos[k])
        touching = lambda f: sorted(names[i] for i in np.nonzero(f)[0])
        assert touching(flags[k]) == touching(c_flags), pose
        assert (bool(fallen[k]), bool(hit[k])) == (c_fallen, c_hit) == EXPECTED[pose], pose
    # The poses are what they say: the sword touches the target alone, the shield alone.
    sword_pose = touching(flags[POSES.index("sword_in_target")])
    assert "sword" in sword_pose and "shield" not in sword_pose
    shield_pose = touching(flags[POSES.index("shield_on_target")])
    assert "shield" in shield_pose and "sword" not in shield_pose
    target = sim.model.geom(TARGET).id
    _mujoco_contacts(sim, qpos[POSES.index("sword_in_target")])
    pairs = {tuple(sorted(sim.model.geom(g).name for g in pair)) for pair in termination.mujoco_contacts(sim.data).geom
             if target in pair}
    assert tuple(sorted(("sword_blade", TARGET))) in pairs


@pytest.mark.timeout(900)
def test_one_control_step_ends_the_same_episodes(strike):
    """From each pose at rest with the PD targets holding it: the env's step and the player's step
    end the same episodes (falls and the strike termination), past the first step and any recovery."""
    env, sim, qpos = strike
    n = len(POSES)
    hold = (sim.drive.lengths(qpos[:, : env.character.nq]) - sim.pd_offset) / sim.pd_scale  # (n, nu)

    @jax.jit
    def env_step(keys, q, action):
        def one(key, q, a):
            state = env.reset(key)
            data = env._with_state(state.data, q, jnp.zeros_like(state.data.qvel))
            state = state.replace(data=data, step_count=jnp.asarray(5, jnp.int32),
                                  recovery_count=jnp.asarray(0, jnp.int32))
            return env.step(state, a).terminated

        return jax.vmap(one)(keys, q, action)

    ended_mjx = np.asarray(env_step(jax.random.split(jax.random.PRNGKey(0), n), jnp.asarray(qpos, jnp.float32),
                                    jnp.asarray(hold, jnp.float32))) > 0
    ended_mujoco = []
    for k in range(n):
        sim.policy = dataclasses.replace(sim.policy, low_level=lambda obs, z, a=hold[k]: a)
        sim.reset(qpos[k])
        sim.step_count, sim.grace = 5, 0
        sim.step(auto_reset=False)
        ended_mujoco.append(sim.ended)
    expected = [any(EXPECTED[p]) for p in POSES]
    assert ended_mjx.tolist() == ended_mujoco == expected, (ended_mjx, ended_mujoco)


@pytest.mark.timeout(300)
def test_player_ends_a_strike_episode_on_the_hit(strike):
    """With auto_reset, the player starts a new episode (target placed anew) after the termination."""
    env, sim, qpos = strike
    k = POSES.index("shield_on_target")
    hold = (sim.drive.lengths(qpos[k, : env.character.nq]) - sim.pd_offset) / sim.pd_scale
    sim.policy = dataclasses.replace(sim.policy, low_level=lambda obs, z: hold)
    sim.reset(qpos[k])
    sim.step_count, sim.grace = 5, 0
    resets = sim.resets
    sim.step()
    assert sim.ended and sim.resets == resets + 1 and sim.step_count == 0
    q = env.character.nq
    assert not np.allclose(sim.data.qpos[q: q + 3], qpos[k, q: q + 3])  # the target placed anew
