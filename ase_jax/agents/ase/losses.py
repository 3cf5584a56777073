"""ASE's own rewards and losses as pure functions over arrays (docs/reference.md §5.3-5.4); the
PPO terms they are added to live in `ase_jax.agents.ppo`.

Network parameters and apply functions are passed in explicitly; nothing here holds state. Masks
are 1 for samples whose action was sampled from the Gaussian and 0 where the ε-greedy rollout
played the mean (docs/reference.md §5.6); they weight the actor, bounds and diversity terms only.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from ase_jax.agents.ase import networks as ase_networks
from ase_jax.agents.ppo import masked_mean

Params = Any
DiscApply = Callable[[Params, jax.Array], jax.Array]
Metrics = dict[str, jax.Array]


# --- rewards (docs/reference.md §5.3) -------------------------------------------------------------------------


def disc_reward(logits: jax.Array, scale: float) -> jax.Array:
    """r_D = -log(max(1 - sigmoid(D(o)), 1e-4)) * scale (docs/reference.md §5.3)."""
    return -jnp.log(jnp.maximum(1.0 - jax.nn.sigmoid(logits), 1e-4)) * scale


def enc_reward(enc: jax.Array, z: jax.Array, scale: float, form: str = "clipped") -> jax.Array:
    """r_E = max(e(o).z, 0) * scale, with e(o) the unit-norm encoding (docs/reference.md §5.3);
    form "shifted": (e(o).z + 1) / 2 * scale, which rewards every z by how close it is (ProtoMotions)."""
    similarity = jnp.sum(enc * z, axis=-1)
    if form == "shifted":
        return 0.5 * (similarity + 1.0) * scale
    if form != "clipped":
        raise ValueError(f"enc_reward form must be 'clipped' or 'shifted', got {form!r}")
    return jnp.maximum(similarity, 0.0) * scale


# --- diversity (docs/reference.md §5.4) ---------------------------------------------------------------------


def diversity_loss(
    mu: jax.Array, mu_prime: jax.Array, z: jax.Array, z_prime: jax.Array, mask: jax.Array, target: float = 1.0
) -> jax.Array:
    """Masked mean of (target - a_diff / (z_diff + 1e-5))^2 (docs/reference.md §5.4, `_diversity_loss`).

    a_diff = mean over action dims of (clip(mu, -1, 1) - clip(mu', -1, 1))^2, with mu' = actor(obs, z');
    z_diff = (1 - z.z') / 2.
    """
    a_diff = jnp.mean(jnp.square(jnp.clip(mu, -1.0, 1.0) - jnp.clip(mu_prime, -1.0, 1.0)), axis=-1)
    z_diff = 0.5 * (1.0 - jnp.sum(z * z_prime, axis=-1))
    bonus = a_diff / (z_diff + 1e-5)
    return masked_mean(jnp.square(target - bonus), mask)


# --- discriminator and encoder (docs/reference.md §5.4) -------------------------------------------------------


def _logits_and_input_grads(disc_params: Params, disc_apply: DiscApply, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Logits D(o) and dD/do per sample (samples are independent, so one VJP with ones suffices)."""
    logits, vjp = jax.vjp(lambda o: disc_apply(disc_params, o), obs)
    (grads,) = vjp(jnp.ones_like(logits))
    return logits, grads


def disc_loss(
    disc_params: Params,
    disc_apply: DiscApply,
    agent_obs: jax.Array,
    demo_obs: jax.Array,
    logit_reg: float = 0.01,
    grad_penalty: float = 5.0,
    weight_decay: float = 1e-4,
) -> tuple[jax.Array, Metrics]:
    """Discriminator loss (docs/reference.md §5.4); agent_obs already holds the replay rows, all obs normalised.

    L = 0.5 [BCE(D(agent), 0) + BCE(D(demo), 1)] + logit_reg |W_logit|^2
        + grad_penalty mean_demo |dD/do|^2 + weight_decay sum |W|^2,
    W over the kernels of the trunk and the logit layer (no biases, no encoder head).
    `disc_apply(params, obs) -> logits (N,)`.
    """
    agent_logits = disc_apply(disc_params, agent_obs)
    demo_logits, demo_grads = _logits_and_input_grads(disc_params, disc_apply, demo_obs)
    bce = 0.5 * (jnp.mean(optax.sigmoid_binary_cross_entropy(agent_logits, jnp.zeros_like(agent_logits)))
                 + jnp.mean(optax.sigmoid_binary_cross_entropy(demo_logits, jnp.ones_like(demo_logits))))
    logit_l2 = jnp.sum(jnp.square(ase_networks.disc_logit_kernel(disc_params)))
    penalty = jnp.mean(jnp.sum(jnp.square(demo_grads.reshape(demo_grads.shape[0], -1)), axis=-1))
    weights_l2 = sum(jnp.sum(jnp.square(w)) for w in ase_networks.disc_kernels(disc_params))
    loss = bce + logit_reg * logit_l2 + grad_penalty * penalty + weight_decay * weights_l2
    metrics = {
        "disc_loss": loss,
        "disc_bce": bce,
        "disc_grad_penalty": penalty,
        "disc_logit_l2": logit_l2,
        "disc_weights_l2": weights_l2,
        "disc_demo_accuracy": jnp.mean((demo_logits > 0).astype(jnp.float32)),
        "disc_agent_accuracy": jnp.mean((agent_logits < 0).astype(jnp.float32)),
        "disc_demo_logit": jnp.mean(demo_logits),
        "disc_agent_logit": jnp.mean(agent_logits),
    }
    return loss, metrics


def enc_loss(
    disc_params: Params, enc_apply: DiscApply, agent_obs: jax.Array, z: jax.Array
) -> tuple[jax.Array, Metrics]:
    """Encoder loss mean(-(e(o).z)) over agent samples, no mask (docs/reference.md §5.4).

    `enc_apply(params, obs) -> (N, latent_dim)` unit-norm encodings; obs normalised.
    """
    similarity = jnp.sum(enc_apply(disc_params, agent_obs) * z, axis=-1)
    loss = -jnp.mean(similarity)
    return loss, {"enc_loss": loss, "enc_similarity": jnp.mean(similarity)}
