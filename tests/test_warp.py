"""MJX's Warp back end (`mjx_impl=warp`, what MuJoCo Playground uses on NVIDIA GPUs) against the JAX
back end, on Warp's CPU device: the same character, drive and start, a few control steps of one
env. Training vmaps the env over its characters, and that does not work with the Warp back end yet:
vmapping its reset and step leaks tracers (its Data keeps some arrays outside the pytree), so
`mjx_impl=warp` runs one env at a time; batching it needs MJX's own batched Warp data
(`make_data(..., batch_sizes=...)`) in place of our vmapped reset.

Needs warp-lang (`pip install -e '.[warp]'`; mujoco-mjx 3.17 carries MuJoCo Warp itself). CI leaves
it out: its wheel is about 150 MB and Warp builds MuJoCo Warp's kernels with its own compiler on
first use (minutes on a 2-core CPU, cached after). BENCHMARKS.md, "The Warp back end on the CPU",
has the figures this test was written from.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ase_jax.config import load_config
from ase_jax.env import HumanoidEnv
from ase_jax.mjx_import import warp_available

pytestmark = [pytest.mark.timeout(1800),
              pytest.mark.skipif(not warp_available(), reason="MJX's Warp back end needs warp-lang: "
                                 "pip install -e '.[warp]' (left out of CI: a 150 MB wheel)")]

STEPS = 3  # control steps (12 physics steps of 1/120 s)


def run(impl: str, sword_shield):
    config = load_config("tiny", {"state_init": "default", "fall_init_prob": 0.0, "mjx_impl": impl})
    env = HumanoidEnv(config.env, sword_shield)
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
