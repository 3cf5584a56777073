"""High-level controller networks (docs/reference.md §6.1): separate actor and critic MLPs; the actor's mean goes
through tanh."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ase_jax.agents.ase.networks import TORCH_DEFAULT_INIT


class MLP(nn.Module):
    units: tuple[int, ...]
    out: int

    @nn.compact
    def __call__(self, x):
        for i, u in enumerate(self.units):
            x = nn.relu(nn.Dense(u, kernel_init=TORCH_DEFAULT_INIT, name=f"hidden_{i}")(x))
        return nn.Dense(self.out, kernel_init=TORCH_DEFAULT_INIT, name="out")(x)


class HLCActor(nn.Module):
    units: tuple[int, ...]
    action_size: int

    @nn.compact
    def __call__(self, obs):
        return jnp.tanh(MLP(self.units, self.action_size)(obs))


class HLCCritic(nn.Module):
    units: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        return MLP(self.units, 1)(obs)[..., 0]


def unit_latent(action: jax.Array) -> jax.Array:
    """The latent a high-level action stands for: the action made unit length (the low-level
    policy's latents lie on the unit sphere); used by task training, playback and export alike."""
    return action / jnp.maximum(jnp.linalg.norm(action, axis=-1, keepdims=True), 1e-6)


def make_hlc_networks(obs_size: int, action_size: int, actor_units, critic_units):
    actor, critic = HLCActor(tuple(actor_units), action_size), HLCCritic(tuple(critic_units))

    def init(key: jax.Array) -> dict:
        k_a, k_c = jax.random.split(key)
        dummy = jnp.zeros((1, obs_size))
        return {"actor": actor.init(k_a, dummy), "critic": critic.init(k_c, dummy)}

    return actor, critic, init
