"""A pre-trained ASE model as the task stage and playback use it: the low-level policy, its
normaliser, the discriminator and encoder, and an environment. `ase_jax.inference.pretrained_loading`
loads one from a run; the task stage's training (agents/hlc) takes one and imports no loader."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ase_jax.agents import ppo
from ase_jax.agents.ase import losses
from ase_jax.agents.ase import networks as ase_networks
from ase_jax.config import Config


# How a trained low-level policy acts and how its discriminator scores motion, defined once for the
# loaded model (`Pretrained`), the frozen LLC inside task training (whose arrays are part of the
# training state) and `bench learn`'s evaluation (which evaluates the training state's arrays).

def deterministic_action(nets: ase_networks.ASENetworks, actor_params, obs_norm: ppo.Normalizer, obs: jax.Array,
                         z: jax.Array, clip: float) -> jax.Array:
    """clip(mu(normalised obs, z), -1, 1): the low-level policy's mean action, as a frozen LLC acts
    (docs/reference.md §6.3); `clip` is the run's normalize_obs_clip."""
    return jnp.clip(nets.actor_apply(actor_params, ppo.normalize(obs, obs_norm, clip), z), -1.0, 1.0)


def disc_logit(nets: ase_networks.ASENetworks, disc_params, amp_norm: ppo.Normalizer, amp_obs: jax.Array,
               clip: float) -> jax.Array:
    """The discriminator's logit of flattened (..., H x F) discriminator histories."""
    return nets.disc_logit_apply(disc_params, ppo.normalize(amp_obs, amp_norm, clip))


def disc_reward(nets: ase_networks.ASENetworks, disc_params, amp_norm: ppo.Normalizer, amp_obs: jax.Array,
                clip: float, scale: float) -> jax.Array:
    """The style reward -log(1 - D) x scale of discriminator histories (the motion prior of tasks)."""
    return losses.disc_reward(disc_logit(nets, disc_params, amp_norm, amp_obs, clip), scale)


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
        return deterministic_action(self.networks, self.params["actor"], self.obs_norm, obs, z,
                                    self.config.ppo.normalize_obs_clip)

    def disc_logit(self, amp_obs: jax.Array) -> jax.Array:
        """Discriminator logit of flattened (..., H x F) discriminator histories."""
        return disc_logit(self.networks, self.params["disc"], self.amp_norm, amp_obs, self.config.ppo.normalize_obs_clip)
