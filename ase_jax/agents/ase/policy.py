"""A pre-trained ASE model loaded for inference: the low-level policy, its normaliser, the
discriminator and encoder, and an environment built from the run's own config."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from brax.training.acme import running_statistics
from brax.training.acme.specs import Array as Spec

from ase_jax.agents.ase import networks as ase_networks
from ase_jax.agents.ase.train import make_networks
from ase_jax.character import load_character
from ase_jax.checkpoint import read_checkpoint, select_subtree
from ase_jax.config import Config, load_config
from ase_jax.env import HumanoidEnv
from ase_jax.errors import AseInputError


@dataclasses.dataclass(frozen=True)
class Pretrained:
    config: Config
    env: HumanoidEnv
    networks: ase_networks.ASENetworks
    params: dict  # {"actor", "critic", "disc"}
    obs_norm: running_statistics.RunningStatisticsState
    amp_norm: running_statistics.RunningStatisticsState
    step: int

    def action(self, obs: jax.Array, z: jax.Array) -> jax.Array:
        """Deterministic low-level action clip(mu(obs, z), -1, 1), as the frozen LLC acts (facts 6.3)."""
        obs = running_statistics.normalize(obs, self.obs_norm, max_abs_value=self.config.normalize_obs_clip)
        return jnp.clip(self.networks.actor_apply(self.params["actor"], obs, z), -1.0, 1.0)

    def disc_logit(self, amp_obs: jax.Array) -> jax.Array:
        """Discriminator logit of flattened (..., H x F) discriminator histories."""
        amp_obs = running_statistics.normalize(amp_obs, self.amp_norm, max_abs_value=self.config.normalize_obs_clip)
        return self.networks.disc_logit_apply(self.params["disc"], amp_obs)


def load_pretrained(path, **overrides) -> Pretrained:
    """Loads a run folder (latest checkpoint) or one checkpoint folder; `overrides` change config values
    that do not affect the networks (e.g. num_envs, state_init)."""
    workdir, step, arrays, layout, saved = read_checkpoint(path)
    try:
        config = load_config("default", {**{k: v for k, v in saved.items()}, **overrides})
    except AseInputError as e:
        raise AseInputError(f"{workdir}: the saved config is not valid for this version of ase_jax: {e}") from None
    character = load_character(config.character)
    env = HumanoidEnv(dataclasses.replace(config, state_init="default"), character)
    amp_dim = env.history * env.amp_obs_size
    nets = make_networks(config, env)
    template = ase_networks.init_params(nets, jax.random.PRNGKey(0))
    params = select_subtree(arrays, layout, ".params", template)
    obs_norm = select_subtree(arrays, layout, ".obs_norm",
                              running_statistics.init_state(Spec((env.obs_size,), jnp.float32)))
    amp_norm = select_subtree(arrays, layout, ".amp_norm", running_statistics.init_state(Spec((amp_dim,), jnp.float32)))
    return Pretrained(config, env, nets, jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, obs_norm),
                      jax.tree.map(jnp.asarray, amp_norm), step)
