"""One rollout for everything that runs a trained policy in the MJX env without training it.

`unroll` is the one `lax.scan` over control steps; it serves playback (`play`, task playback, the
GPU script's e0/e3 video), the nearest-clip diversity metric (`evaluate diversity`), the push test
(`evaluate perturb`, `inference.perturb`) and `bench learn`'s evaluation, as brax's `generate_unroll` serves its Evaluator. A consumer says what the
policy does (`policy(carry, state, t) -> (carry, actions, extras)`: latents held, scheduled per
step, or chosen by a high-level controller every few steps) and what to keep of each step
(`record(state, extras)`), and jits the whole thing once. The C-MuJoCo player
(`mujoco_player.Simulation.rollout`) steps C MuJoCo on the host and stays outside.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ase_jax.compile_cache import CompileCache
from ase_jax.env.interface import vmap_envs

Policy = Callable[[Any, Any, jax.Array], tuple[Any, jax.Array, Any]]


def unroll(env, state, policy: Policy, steps: int, record: Callable, carry=()):
    """`steps` control steps of a batch of envs (every leaf of `state` has the batch axis first) in
    one `lax.scan`. `policy(carry, state, t) -> (carry, actions, extras)` acts on the state before
    step t; `record(state, extras)` is kept of the state after it. Returns (final state, final
    carry, the records stacked on a leading time axis). Envs reset themselves after a fall, as in
    training."""

    def step(loop, t):
        carry, state = loop
        carry, actions, extras = policy(carry, state, t)
        state = vmap_envs(env.step)(state, actions)
        return (carry, state), record(state, extras)

    (carry, state), records = jax.lax.scan(step, (carry, state), jnp.arange(steps))
    return state, carry, records


def reset_batch(env, key: jax.Array, n: int):
    """n fresh env states (one key each), stacked on a leading batch axis."""
    return vmap_envs(env.reset)(jax.random.split(key, n))


def latent_policy(action: Callable, latents: jax.Array) -> Policy:
    """The low-level policy under given latents: (N, D) held for the whole rollout, or (N, T, D), the
    latent of step t at [:, t]. `action(obs, z) -> actions`. Its extras are the latents used."""

    def policy(carry, state, t):
        z = latents if latents.ndim == 2 else latents[:, t]
        return carry, action(state.obs, z), z

    return policy


def hierarchical_policy(high_level_action: Callable, low_level_action: Callable, hold: int) -> Policy:
    """A task controller: the high-level policy picks a latent at every `hold`-th control step (from
    the observation then), the low-level policy acts on it until the next pick. Its carry is the
    latent held (start it with zeros of the latent's shape); its extras are the latents used."""

    def policy(z, state, t):
        z = jax.lax.cond(t % hold == 0, lambda: high_level_action(state.obs).astype(z.dtype), lambda: z)
        return z, low_level_action(state.obs, z), z

    return policy


def task_controller(policy, start):
    """(Policy, initial carry) of a task policy (`inference.task_policy.TaskPolicy`) for a batch of
    `start` states: its high-level controller picks a latent every `steps_per_action` steps."""
    carry = jnp.zeros(jax.eval_shape(policy.high_level_action, start.obs).shape)
    return hierarchical_policy(policy.high_level_action, policy.low_level_action, policy.steps_per_action), carry


# --- playback --------------------------------------------------------------------------------------

# Loaded models and their jitted rollouts, compiled once per process (a viewer or notebook plays
# the same run again and again).
_PLAYBACK = CompileCache("playback rollouts", max_entries=4)


def load_for_playback(checkpoint):
    """The pre-trained model of a run folder or checkpoint folder, in its env with the playback
    overrides (loaded once per process)."""
    from ase_jax.checkpoint import find_checkpoint
    from ase_jax.inference.pretrained_loading import load_pretrained


    def build():
        pretrained = load_pretrained(checkpoint, purpose="play")

        @jax.jit
        def run(params, obs_norm, latents, rng):
            model = dataclasses.replace(pretrained, params=params, obs_norm=obs_norm)
            start = reset_batch(pretrained.env, rng, latents.shape[0])
            _, _, qpos = unroll(pretrained.env, start, latent_policy(model.action, latents), latents.shape[1] - 1,
                                lambda s, z: s.data.qpos)
            return jnp.concatenate([start.data.qpos[None], qpos]).swapaxes(0, 1)

        return pretrained, run

    return _PLAYBACK.get(("pretrained",) + tuple(map(str, find_checkpoint(checkpoint))), build)


def latent_rollout(checkpoint, latents: np.ndarray, seed: int = 0) -> np.ndarray:
    """qpos (N, T, nq) of N characters for T control steps under latents (N, T, latent_dim), the
    latent of step t at [:, t]. Frame 0 is the initial state; the last step's latent is not used."""
    pretrained, run = load_for_playback(checkpoint)
    return np.asarray(run(pretrained.params, pretrained.obs_norm, jnp.asarray(latents, jnp.float32),
                          jax.random.PRNGKey(seed)))


def task_rollout(policy, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(qpos (T, nq), target marker (T, 3), NaN where the task draws none) of a task policy
    (`inference.task_policy.TaskPolicy`) over T = `steps` control steps, the first being the initial
    state. Compiled once per policy and length."""
    def build():
        env = policy.env
        marker = jax.vmap(env.task.marker)

        @jax.jit
        def run(rng):
            start = reset_batch(env, rng, 1)
            act, latent = task_controller(policy, start)
            _, _, (qpos, mark) = unroll(env, start, act, steps - 1,
                                        lambda s, z: (s.data.qpos, marker(s.task, s.data)), carry=latent)
            first = (start.data.qpos[None], marker(start.task, start.data)[None])
            return tuple(jnp.concatenate([a, b])[:, 0] for a, b in zip(first, (qpos, mark)))

        return policy, run  # the entry keeps the policy alive, so its id is not reused while cached

    _, run = _PLAYBACK.get(("task", id(policy), steps), build)
    qpos, mark = run(jax.random.PRNGKey(seed))
    return np.asarray(qpos), np.asarray(mark)
