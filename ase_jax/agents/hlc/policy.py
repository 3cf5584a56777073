"""A trained task policy loaded for inference: the high-level controller of a `python -m ase_jax.task`
run (or its `--scratch` policy), the frozen low-level controller it drives, and the task env."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from brax.training.acme import running_statistics
from brax.training.acme.specs import Array as Spec

from ase_jax.agents.ase.policy import Pretrained
from ase_jax.agents.hlc.networks import make_hlc_networks
from ase_jax.checkpoint import read_checkpoint, select_subtree
from ase_jax.config import Config, load_config
from ase_jax.env import HumanoidEnv
from ase_jax.errors import AseInputError


@dataclasses.dataclass(frozen=True)
class TaskPolicy:
    config: Config
    env: HumanoidEnv
    llc: Pretrained | None  # None for a --scratch policy
    actor: object  # flax module: normalised observation -> action mean
    params: dict  # {"actor", "critic"}
    obs_norm: running_statistics.RunningStatisticsState
    step: int

    @property
    def steps_per_action(self) -> int:
        """Low-level control steps one high-level action is held for (1 for scratch)."""
        return 1 if self.llc is None else self.config.llc_steps

    def high_level_action(self, obs: jax.Array) -> jax.Array:
        """Deterministic action: the unit latent z (hierarchical) or the 31 PD targets (scratch)."""
        obs = running_statistics.normalize(obs, self.obs_norm, max_abs_value=self.config.normalize_obs_clip)
        a = jnp.clip(self.actor.apply(self.params["actor"], obs), -1.0, 1.0)
        if self.llc is None:
            return a
        return a / jnp.maximum(jnp.linalg.norm(a, axis=-1, keepdims=True), 1e-6)

    def low_level_action(self, obs: jax.Array, high: jax.Array) -> jax.Array:
        """PD targets for the env from its full observation and the held high-level action."""
        if self.llc is None:
            return high
        return self.llc.action(obs[..., : self.env.humanoid_obs_size], high)


def is_task_run(saved_config: dict) -> bool:
    """Whether a saved config is that of a task run (every task run has an --llc or is --scratch)."""
    return bool(saved_config.get("llc")) or bool(saved_config.get("scratch"))


def load_task_policy(path, **overrides) -> TaskPolicy:
    """Loads a task run folder (latest checkpoint) or one of its checkpoints; `overrides` change config
    values that do not affect the networks. The LLC is loaded from the path the run was trained with."""
    from ase_jax.task import build  # here: ase_jax.task imports the training side

    workdir, step, arrays, layout, saved = read_checkpoint(path)
    if not is_task_run(saved):
        raise AseInputError(f"{workdir}: a pre-training run, not a task run (python -m ase_jax.task); "
                            f"play it without --task")
    try:
        config = load_config("task", {**saved, **overrides})
    except AseInputError as e:
        raise AseInputError(f"{workdir}: the saved config is not valid for this version of ase_jax: {e}") from None
    config, env, llc = build(config)
    action_size = env.action_size if llc is None else llc.config.latent_dim
    actor, _, init_params = make_hlc_networks(env.obs_size, action_size, config.actor_units, config.critic_units)
    params = select_subtree(arrays, layout, ".params", init_params(jax.random.PRNGKey(0)))
    obs_norm = select_subtree(arrays, layout, ".obs_norm",
                              running_statistics.init_state(Spec((env.obs_size,), jnp.float32)))
    return TaskPolicy(config, env, llc, actor, jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, obs_norm),
                      step)
