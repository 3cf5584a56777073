"""The one rollout (`ase_jax.inference.rollout`) and the high-level step of task training, on a
counting env small enough to follow by hand: latents held, scheduled per step or picked by a
high-level controller every few steps, and an episode that ends inside a high-level step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from ase_jax.agents.hlc.train import held_latent_step
from ase_jax.inference.policy import Policy
from ase_jax.inference.rollout import latent_policy, reset_batch, task_controller, unroll

pytestmark = pytest.mark.timeout(120)


@struct.dataclass
class CountState:
    obs: jax.Array  # (2,): [control steps in this episode, sum of the actions' first component]
    next_obs: jax.Array
    reward: jax.Array
    done: jax.Array
    terminated: jax.Array
    next_amp_obs: jax.Array
    metrics: dict


class CountEnv:
    """Counts its steps; the episode ends (and the env resets to zero) after `length` steps.
    Reward: the action's first component."""

    def __init__(self, length: int):
        self.length = length

    def reset(self, key):
        del key
        zero = jnp.zeros(())
        return CountState(jnp.zeros(2), jnp.zeros(2), zero, zero, zero, jnp.zeros((2, 1)),
                          {"episode_length": zero, "nonfinite": zero})

    def step(self, state, action):
        next_obs = jnp.stack([state.obs[0] + 1, state.obs[1] + action[0]])
        done = (next_obs[0] >= self.length).astype(jnp.float32)
        return CountState(jnp.where(done > 0, 0.0, next_obs), next_obs, action[0], done, done,
                          jnp.broadcast_to(next_obs[0], (2, 1)), {"episode_length": next_obs[0] * done,
                                                                   "nonfinite": jnp.zeros(())})


def test_a_latent_schedule_gives_step_t_the_latent_at_t():
    env, n, steps = CountEnv(length=100), 3, 6
    latents = jnp.arange(n * (steps + 1) * 2, dtype=jnp.float32).reshape(n, steps + 1, 2)
    action = lambda obs, z: z  # the action is the latent itself
    start = reset_batch(env, jax.random.PRNGKey(0), n)
    final, _, (used, counted) = jax.jit(lambda s: unroll(env, s, latent_policy(action, latents), steps,
                                                         lambda s, z: (z, s.obs[:, 0])))(start)
    np.testing.assert_array_equal(used, np.swapaxes(latents[:, :steps], 0, 1))  # step t used latents[:, t]
    np.testing.assert_array_equal(counted, np.broadcast_to(np.arange(1, steps + 1)[:, None], (steps, n)))
    np.testing.assert_allclose(final.obs[:, 1], latents[:, :steps, 0].sum(axis=1))


def test_a_held_latent_is_the_same_at_every_step():
    env, latents = CountEnv(length=100), jnp.array([[1.0, 0.0], [0.0, 1.0]])
    _, _, used = unroll(env, reset_batch(env, jax.random.PRNGKey(0), 2), latent_policy(lambda o, z: z, latents), 4,
                        lambda s, z: z)
    np.testing.assert_array_equal(used, np.broadcast_to(latents, (4, 2, 2)))


def test_the_high_level_controller_picks_every_hold_steps_and_the_latent_is_held_between():
    env, hold, steps = CountEnv(length=100), 3, 8
    high = lambda obs: jnp.stack([obs[:, 0], -obs[:, 0]], axis=-1)  # a latent that names the step it was picked at
    loaded = Policy(low_level=lambda obs, z: z, high_level=high, steps_per_action=hold, character_obs_size=2,
                    latent_dim=2, meta={}, env_config=None, character=None, task=None, source="test", step=0)
    start = reset_batch(env, jax.random.PRNGKey(0), 2)
    policy, _ = task_controller(loaded, start)
    _, held, used = unroll(env, start, policy, steps, lambda s, z: z, carry=jnp.full((2, 2), 99.0))
    picked_at = np.arange(steps) - np.arange(steps) % hold  # 0 0 0 3 3 3 6 6
    np.testing.assert_array_equal(used[:, 0, 0], picked_at)
    np.testing.assert_array_equal(used[:, 1, 1], -picked_at)
    np.testing.assert_array_equal(held, used[-1])


def test_an_episode_ending_inside_a_high_level_step():
    """Env 0's episode ends at the 2nd of 4 low-level steps, env 1's never: env 0's transition has the
    rewards of its first 2 steps only, averaged over 2, the observation from before the reset, done
    and terminated; the steps after the reset count for nothing."""
    env, llc_steps = CountEnv(length=5), 4
    start = reset_batch(env, jax.random.PRNGKey(0), 2)
    start = start.replace(obs=jnp.array([[3.0, 0.0], [0.0, 0.0]]))  # env 0 is 2 steps from its end
    action = lambda obs: jnp.stack([obs[:, 0] + 1, jnp.zeros(2)], axis=-1)  # reward: the step's number
    disc = lambda amp_obs: 10.0 * amp_obs[:, 0, 0]  # the disc reward names the step too
    final, out = jax.jit(lambda s: held_latent_step(jax.vmap(env.step), action, disc, llc_steps, s))(start)
    # env 0: steps 4 and 5 (the end, then a reset to 0), then steps 1 and 2 of the next episode
    np.testing.assert_allclose(out["task_reward"], [(4 + 5) / 2, (1 + 2 + 3 + 4) / 4])
    np.testing.assert_allclose(out["disc_reward"], [10 * (4 + 5) / 2, 10 * (1 + 2 + 3 + 4) / 4])
    np.testing.assert_allclose(out["next_obs"][:, 0], [5, 4])  # env 0: the terminal observation
    np.testing.assert_array_equal(out["done"], [1, 0])
    np.testing.assert_array_equal(out["terminated"], [1, 0])
    np.testing.assert_allclose(out["episode_length"], [5, 0])
    np.testing.assert_allclose(final.obs[:, 0], [2, 4])  # env 0 went on in its new episode
