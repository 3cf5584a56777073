"""MJX's Warp back end (`mjx_impl=warp`, what MuJoCo Playground uses on NVIDIA GPUs) against the JAX
back end, on Warp's CPU device: the same character, drive and start, a few control steps of one env,
and a batch of envs as training runs them (`env.interface.vmap_envs`): two standing, two lying in
fallen poses that touch the floor and themselves. The Warp back end keeps one contact list for the
whole batch (each contact tagged with its env); the batch test checks that every env finds its own
contacts in it (a standing env must not see its neighbours' falls) and that resets keep the shared
fields (`Data.where`).

Needs warp-lang (`pip install -e '.[warp]'`; mujoco-mjx 3.17 carries MuJoCo Warp itself). CI leaves
it out: its wheel is about 150 MB and Warp builds MuJoCo Warp's kernels with its own compiler on
first use (minutes on a 2-core CPU, cached after). BENCHMARKS.md, "The Warp back end", has the
figures this test was written from.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ase_jax.config import load_config
from ase_jax.env import HumanoidEnv
from ase_jax.env.fall_states import make_fall_states
from ase_jax.env.interface import vmap_envs
from ase_jax.mjx_import import warp_available

pytestmark = [pytest.mark.timeout(1800),
              pytest.mark.skipif(not warp_available(), reason="MJX's Warp back end needs warp-lang: "
                                 "pip install -e '.[warp]' (left out of CI: a 150 MB wheel)")]

STEPS = 3  # control steps (12 physics steps of 1/120 s)


def run(impl: str, sword_shield):
    config = load_config("tiny", {"state_init": "default", "fall_init_prob": 0.0, "mjx_impl": impl})
    env = HumanoidEnv(config.env, sword_shield, num_envs=1)
    # a mild action: the PD targets move a little from the default pose, the feet stay on the floor
    action = 0.2 * jnp.sin(jnp.arange(env.action_size))
    state, step = jax.jit(env.reset)(jax.random.PRNGKey(0)), jax.jit(env.step)
    out = []
    for _ in range(STEPS):  # one env: vmapping the Warp back end's data does not work yet (see below)
        state = step(state, action)
        out.append((np.asarray(state.data.qpos), np.asarray(state.done), np.asarray(state.obs)))
    return [np.stack(x) for x in zip(*out)]


def test_warp_steps_the_character_as_the_jax_back_end(sword_shield):
    qpos_jax, done_jax, obs_jax = run("jax", sword_shield)
    qpos_warp, done_warp, obs_warp = run("warp", sword_shield)
    # The two back ends share the model, the drive and the start; they differ in contact generation
    # and solver details (float32 both). Measured after 1, 2, 3 control steps from standing
    # (2026-12-04, warp-lang 1.19.0 on the CPU): qpos 1.6e-7, 3.6e-4, 6.6e-4 apart (m, rad);
    # the observation's positions and rotations within 1e-2, its body velocities up to 6.0e-2
    # (rad/s, of values up to 7.2), where the solvers' differences show first. Tolerances: about 3x.
    np.testing.assert_allclose(qpos_warp, qpos_jax, atol=2e-3)
    np.testing.assert_array_equal(done_warp, done_jax)  # the fall test (contacts and heights) agrees: no falls
    np.testing.assert_allclose(obs_warp, obs_jax, atol=0.2)
    np.testing.assert_allclose(obs_warp[:, :151], obs_jax[:, :151], atol=3e-2)  # root height, positions, rotations


BATCH = 4  # envs 0, 1 standing; 2, 3 lying in fallen poses (floor and self-contact)


def run_batch(impl: str, sword_shield, fallen_qpos):
    config = load_config("tiny", {"state_init": "default", "fall_init_prob": 0.0, "mjx_impl": impl,
                                  "self_collision": True})
    env = HumanoidEnv(config.env, sword_shield, num_envs=BATCH)
    state = jax.jit(vmap_envs(env.reset))(jax.random.split(jax.random.PRNGKey(0), BATCH))
    qpos = state.data.qpos.at[2:, : env._nq].set(fallen_qpos)
    pose = jax.jit(vmap_envs(lambda d, q: env._with_state(d, q, jnp.zeros_like(d.qvel))))
    state = state.replace(data=pose(state.data, qpos))
    target = jnp.zeros((BATCH, env.action_size))
    nb = sword_shield.num_bodies

    def contacts_after_physics(data, target):
        """(per-body contact flags, any self-contact) one control step of physics on."""
        data = env._refresh_kinematics(env.physics(data, env._pd_offset + env._pd_scale * target))
        contacts = env.contacts(data)
        bodies = jnp.asarray(env.scene.geom_body)[contacts.geom]
        own = (bodies < nb).all(-1) & (contacts.dist < 0)
        return env.body_contacts(data), own.any()

    flags, self_contact = jax.jit(vmap_envs(contacts_after_physics))(state.data, target)
    step = jax.jit(vmap_envs(env.step))
    dones, qpos_out = [], []
    for _ in range(STEPS):
        state = step(state, target)
        dones.append(np.asarray(state.done))
        qpos_out.append(np.asarray(state.data.qpos))
    overflow = np.asarray(state.metrics["contact_overflow"])
    return np.asarray(flags), np.asarray(self_contact), np.stack(dones), np.stack(qpos_out), overflow


def test_warp_batches_envs_each_with_its_own_contacts(sword_shield):
    config = load_config("tiny", {"self_collision": True})
    fallen = jnp.asarray(make_fall_states(sword_shield, 2, 0, True, config.env.pd_torque_limit), jnp.float32)
    flags_jax, self_jax, done_jax, qpos_jax, _ = run_batch("jax", sword_shield, fallen)
    flags_warp, self_warp, done_warp, qpos_warp, overflow = run_batch("warp", sword_shield, fallen)
    feet = np.asarray(sword_shield.contact_body_ids)
    others = np.setdiff1d(np.arange(sword_shield.num_bodies), feet)
    # The JAX back end as the reference: standing envs touch the floor with their feet only, the
    # fallen ones with other bodies too, and themselves.
    assert not flags_jax[:2][:, others].any() and flags_jax[:2][:, feet].any()
    assert flags_jax[2:][:, others].any(axis=1).all() and self_jax[2:].all() and not self_jax[:2].any()
    # The Warp back end finds the same bodies in contact in each env of the batch, and the same
    # self-contacts: a standing env does not see the fallen envs' contacts in the shared list.
    np.testing.assert_array_equal(flags_warp, flags_jax)
    np.testing.assert_array_equal(self_warp, self_jax)
    # The fallen envs end their episode at the first step and reset (Data.where); the standing ones go on.
    np.testing.assert_array_equal(done_warp, done_jax)
    assert done_jax[0].tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(qpos_warp[:, :2], qpos_jax[:, :2], atol=2e-3)  # the standing envs' motion
    assert not overflow.any()  # the contact list sized for the batch holds every env's contacts
