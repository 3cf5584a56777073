"""A trained task policy loaded for inference: the high-level controller of a `python -m ase_jax.task`
run (or its `--scratch` policy), the frozen low-level controller it drives, and the task env.

Everything comes from the task run's own checkpoint: its config, the high-level networks and the
frozen LLC (parameters, normalisers and the LLC's config are saved with every task checkpoint), so
continuing the pre-training in the `--llc` folder never changes what a task run plays back.
Inference only: nothing here imports the training step or a command-line module.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ase_jax.agents import ppo
from ase_jax.agents.ase.pretrained import Pretrained
from ase_jax.inference.pretrained_loading import pretrained_from_arrays, saved_pretrain_config
from ase_jax.agents.hlc.networks import make_hlc_networks, unit_latent
from ase_jax.checkpoint import read_checkpoint
from ase_jax.checkpoint.layout import select_subtree
from ase_jax.config.schema import Config, from_dict
from ase_jax.env_factory import make_env, purpose_config
from ase_jax.errors import AseInputError

# Key of a task checkpoint's saved config that holds the frozen LLC's own config.
LLC_CONFIG_KEY = "llc_config"


@dataclasses.dataclass(frozen=True)
class TaskPolicy:
    config: Config
    env: object  # the task env (HumanoidEnv with the task)
    llc: Pretrained | None  # None for a --scratch policy
    actor: object  # flax module: normalised observation -> action mean
    params: dict  # {"actor", "critic"}
    obs_norm: ppo.Normalizer
    step: int

    @property
    def steps_per_action(self) -> int:
        """Low-level control steps one high-level action is held for (1 for scratch)."""
        return 1 if self.llc is None else self.config.task.llc_steps

    def high_level_action(self, obs: jax.Array) -> jax.Array:
        """Deterministic action: the unit latent z (hierarchical) or the PD targets (scratch)."""
        obs = ppo.normalize(obs, self.obs_norm, self.config.ppo.normalize_obs_clip)
        a = jnp.clip(self.actor.apply(self.params["actor"], obs), -1.0, 1.0)
        if self.llc is None:
            return a
        return unit_latent(a)


def load_task_policy(path, purpose: str = "inspect") -> TaskPolicy:
    """Loads a task run folder (latest checkpoint) or one of its checkpoints, in its env built for
    `purpose` (env_factory's: inspect, play, perturb)."""
    workdir, step, arrays, layout, saved = read_checkpoint(path)
    if saved.get("command") != "task":
        raise AseInputError(f"{workdir}: a pre-training run, not a task run (python -m ase_jax.task); "
                            f"play it without --task")
    saved = dict(saved)
    llc_saved = saved.pop(LLC_CONFIG_KEY, None)
    try:
        config = purpose_config(from_dict(saved), purpose)
    except AseInputError as e:
        raise AseInputError(f"{workdir}: the saved config is not valid for this version of ase_jax: {e}") from None
    env = make_env(config, purpose)
    llc = None
    if not config.task.scratch:
        if llc_saved is None:
            raise AseInputError(f"{workdir}: this task checkpoint does not hold its low-level controller's config "
                                f"(saved by an older ase_jax); train it again")
        llc = pretrained_from_arrays(saved_pretrain_config(llc_saved, workdir), arrays, layout, step, prefix=".llc")
    action_size = env.action_size if llc is None else llc.config.ase.latent_dim
    actor, _, init_params = make_hlc_networks(env.obs_size, action_size, config.ppo.actor_units,
                                              config.ppo.critic_units)
    params = select_subtree(arrays, layout, ".params", init_params(jax.random.PRNGKey(0)))
    obs_norm = select_subtree(arrays, layout, ".obs_norm", ppo.init_normalizer((env.obs_size,)))
    return TaskPolicy(config, env, llc, actor, jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, obs_norm),
                      step)
