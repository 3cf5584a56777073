"""A pre-trained ASE model as the task stage and playback use it: the low-level policy, its
normaliser, the discriminator and encoder, and an environment. `ase_jax.inference.pretrained`
loads one from a run; the task stage's training (agents/hlc) takes one and imports no loader."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ase_jax.agents import ppo
from ase_jax.agents.ase import networks as ase_networks
from ase_jax.config import Config


@dataclasses.dataclass(frozen=True)
class Pretrained:
    config: Config
    env: object  # the run's env (an ase_jax.env.interface.Env); None where only the policy is needed
    networks: ase_networks.ASENetworks
    params: dict  # {"actor", "critic", "disc"}
    obs_norm: ppo.Normalizer
    amp_norm: ppo.Normalizer
    step: int

    def action(self, obs: jax.Array, z: jax.Array) -> jax.Array:
        """Deterministic low-level action clip(mu(obs, z), -1, 1), as the frozen LLC acts (docs/reference.md §6.3)."""
        obs = ppo.normalize(obs, self.obs_norm, self.config.ppo.normalize_obs_clip)
        return jnp.clip(self.networks.actor_apply(self.params["actor"], obs, z), -1.0, 1.0)

    def disc_logit(self, amp_obs: jax.Array) -> jax.Array:
        """Discriminator logit of flattened (..., H x F) discriminator histories."""
        amp_obs = ppo.normalize(amp_obs, self.amp_norm, self.config.ppo.normalize_obs_clip)
        return self.networks.disc_logit_apply(self.params["disc"], amp_obs)
