"""One rollout for everything that runs a trained policy in the MJX env without training it.

`unroll` is the one `lax.scan` over control steps; it serves playback (`play`, task playback, the
GPU script's e0/e3 video), the nearest-clip diversity metric (`evaluate diversity`), the push test
(`evaluate perturb`, `inference.perturb`) and `bench learn`'s evaluation, as brax's `generate_unroll` serves its Evaluator. A consumer says what the
policy does (a `StepPolicy`, `policy(carry, state, t) -> (carry, actions, extras)`: latents held,
scheduled per step, or a loaded task policy's `inference.policy.Policy.act`) and what to keep of each step
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

# What acts at each step of `unroll` (not a loaded policy: that is `inference.policy.Policy`).
StepPolicy = Callable[[Any, Any, jax.Array], tuple[Any, jax.Array, Any]]


def unroll(env, state, policy: StepPolicy, steps: int, record: Callable, carry=()):
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


def latent_policy(action: Callable, latents: jax.Array) -> StepPolicy:
    """The low-level policy under given latents: (N, D) held for the whole rollout, or (N, T, D), the
    latent of step t at [:, t]. `action(obs, z) -> actions`. Its extras are the latents used."""

    def policy(carry, state, t):
        z = latents if latents.ndim == 2 else latents[:, t]
        return carry, action(state.obs, z), z

    return policy


def task_controller(policy, start) -> tuple[StepPolicy, jax.Array]:
    """(StepPolicy, initial carry) of a loaded task policy (`inference.policy.Policy`) for a batch of
    `start` states: `Policy.act` under `lax.cond`, its high-level pick held in the carry. Its extras
    are the picks used."""
    carry = jnp.zeros(jax.eval_shape(policy.high_level, start.obs).shape)

    def act(held, state, t):
        held, actions = policy.act(held, state.obs, t, cond=jax.lax.cond)
        return held, actions, held

    return act, carry


# --- playback --------------------------------------------------------------------------------------

# Loaded models and their jitted rollouts, compiled once per process (a viewer or notebook plays
# the same run again and again).
_PLAYBACK = CompileCache("playback rollouts", max_entries=4)


def load_for_playback(checkpoint, what: str = "the MJX playback"):
    """The policy of a run folder or checkpoint folder (`inference.policy.Policy`) in its env with the
    playback overrides, loaded once per process (`what` needs it: named where the source is an
    export folder)."""
    from ase_jax.checkpoint import find_checkpoint
    from ase_jax.errors import AseInputError
    from ase_jax.inference.policy_loading import is_export_folder, load_policy

    if is_export_folder(checkpoint):
        raise AseInputError(f"{checkpoint}: an export folder; it plays in C MuJoCo (--engine=mujoco), {what} "
                            "needs the run folder")
    key = ("policy",) + tuple(map(str, find_checkpoint(checkpoint)))
    return _PLAYBACK.get(key, lambda: load_policy(checkpoint, purpose="play"))


def latent_rollout(policy, latents: np.ndarray, seed: int = 0) -> np.ndarray:
    """qpos (N, T, nq) of N characters of a pre-training run's policy (`load_for_playback`) for T
    control steps under latents (N, T, latent_dim), the latent of step t at [:, t]. Frame 0 is the
    initial state; the last step's latent is not used. Compiled once per policy."""
    pretrained = policy.pretraining_model("a latent rollout")

    def build():
        @jax.jit
        def run(params, obs_norm, latents, rng):  # the networks as arguments, not constants of the program
            model = dataclasses.replace(pretrained, params=params, obs_norm=obs_norm)
            start = reset_batch(pretrained.env, rng, latents.shape[0])
            _, _, qpos = unroll(pretrained.env, start, latent_policy(model.action, latents), latents.shape[1] - 1,
                                lambda s, z: s.data.qpos)
            return jnp.concatenate([start.data.qpos[None], qpos]).swapaxes(0, 1)

        return policy, run  # the entry keeps the policy alive, so its id is not reused while cached

    _, run = _PLAYBACK.get(("latents", id(policy)), build)
    return np.asarray(run(pretrained.params, pretrained.obs_norm, jnp.asarray(latents, jnp.float32),
                          jax.random.PRNGKey(seed)))


def task_rollout(policy, steps: int, seed: int = 0, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(qpos (n, T, nq), target markers (n, T, 3), NaN where the task draws none) of n episodes of a
    task run's policy (`load_for_playback`) side by side, each from its own start and task target,
    over T = `steps` control steps, the first being the initial state. Compiled once per policy,
    length and n."""
    def build():
        env = policy.env
        marker = jax.vmap(env.task.marker)

        @jax.jit
        def run(rng):
            start = reset_batch(env, rng, n)
            act, latent = task_controller(policy, start)
            _, _, (qpos, mark) = unroll(env, start, act, steps - 1,
                                        lambda s, z: (s.data.qpos, marker(s.task, s.data)), carry=latent)
            first = (start.data.qpos[None], marker(start.task, start.data)[None])
            return tuple(jnp.concatenate([a, b]).swapaxes(0, 1) for a, b in zip(first, (qpos, mark)))

        return policy, run  # the entry keeps the policy alive, so its id is not reused while cached

    _, run = _PLAYBACK.get(("task", id(policy), steps, n), build)
    qpos, mark = run(jax.random.PRNGKey(seed))
    return np.asarray(qpos), np.asarray(mark)
