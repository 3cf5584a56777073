"""ASE rewards, advantages and losses as pure functions over arrays (facts sheet sections 4.2, 5.3-5.7).

Network parameters and apply functions are passed in explicitly; nothing here holds state. Masks
are 1 for samples whose action was sampled from the Gaussian and 0 where the ε-greedy rollout
played the mean (facts 5.6); they weight the actor, bounds and diversity terms only.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from brax.training import distribution

from ase_jax.agents.ase import networks as ase_networks

Params = Any
DiscApply = Callable[[Params, jax.Array], jax.Array]
Metrics = dict[str, jax.Array]


# --- policy --------------------------------------------------------------------------------------


def gaussian_log_prob(actions: jax.Array, mean: jax.Array, log_std: float) -> jax.Array:
    """log N(actions; mean, exp(log_std)^2 I), summed over action dims (fixed std, facts 4.2)."""
    std = jnp.full_like(mean, jnp.exp(log_std))
    return distribution.NormalDistribution(mean.shape[-1]).log_prob((mean, std), actions)


# --- rewards (facts 5.3) -------------------------------------------------------------------------


def disc_reward(logits: jax.Array, scale: float) -> jax.Array:
    """r_D = -log(max(1 - sigmoid(D(o)), 1e-4)) * scale (facts 5.3)."""
    return -jnp.log(jnp.maximum(1.0 - jax.nn.sigmoid(logits), 1e-4)) * scale


def enc_reward(enc: jax.Array, z: jax.Array, scale: float) -> jax.Array:
    """r_E = max(e(o).z, 0) * scale, with e(o) the unit-norm encoding (facts 5.3)."""
    return jnp.maximum(jnp.sum(enc * z, axis=-1), 0.0) * scale


# --- advantages (facts 5.5, 5.7) -----------------------------------------------------------------


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    dones: jax.Array,
    terminated: jax.Array,
    gamma: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    """GAE over time-major (T, N) arrays; returns (advantages, returns = advantages + values).

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t): time-outs keep their bootstrap
    (facts 5.7); A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}: the recursion is cut at every
    done; A after the last step is 0 (facts 5.5, rl_games `discount_values`).
    """
    deltas = rewards + gamma * next_values * (1.0 - terminated) - values

    def step(next_adv: jax.Array, inputs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, done = inputs
        adv = delta + gamma * lam * (1.0 - done) * next_adv
        return adv, adv

    _, advantages = jax.lax.scan(step, jnp.zeros_like(values[0]), (deltas, dones.astype(deltas.dtype)),
                                 reverse=True)
    return advantages, advantages + values


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """sum(x * mask) / sum(mask); 0 when the mask is empty."""
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1e-8)


def standardize(x: jax.Array, mask: jax.Array, axis_name: str | None = None, eps: float = 1e-8) -> jax.Array:
    """(x - mean) / (std + eps) with mean and unbiased std over masked samples, applied to all.

    rl_games `normalization_with_masks` (facts 5.5). With `axis_name`, the statistics are pooled
    over the devices of a pmap.
    """
    mask = mask.astype(x.dtype)
    sums = jnp.stack([jnp.sum(mask), jnp.sum(x * mask), jnp.sum(jnp.square(x) * mask)])
    if axis_name is not None:
        sums = jax.lax.psum(sums, axis_name)
    count, total, total_sq = sums[0], sums[1], sums[2]
    mean = total / jnp.maximum(count, 1.0)
    var = (total_sq - count * jnp.square(mean)) / jnp.maximum(count - 1.0, 1.0)
    return (x - mean) / (jnp.sqrt(jnp.maximum(var, 0.0)) + eps)


# --- PPO terms (facts 5.4) -----------------------------------------------------------------------


def ppo_actor_loss(
    logp_new: jax.Array, logp_old: jax.Array, advantages: jax.Array, mask: jax.Array, clip: float = 0.2
) -> jax.Array:
    """Clipped surrogate: masked mean of max(-A r, -A clip(r, 1-clip, 1+clip)), r = exp(logp_new - logp_old)."""
    ratio = jnp.exp(logp_new - logp_old)
    loss = jnp.maximum(-advantages * ratio, -advantages * jnp.clip(ratio, 1.0 - clip, 1.0 + clip))
    return masked_mean(loss, mask)


def critic_loss(values: jax.Array, returns: jax.Array) -> jax.Array:
    """Mean over all samples of (R - V)^2, both in normalised units; no value clipping (facts 5.4)."""
    return jnp.mean(jnp.square(returns - values))


def bounds_loss(mu: jax.Array, mask: jax.Array, bound: float = 1.0) -> jax.Array:
    """Masked mean of sum over action dims of max(mu - b, 0)^2 + min(mu + b, 0)^2 (facts 5.4)."""
    per_sample = jnp.sum(jnp.square(jnp.maximum(mu - bound, 0.0)) + jnp.square(jnp.minimum(mu + bound, 0.0)),
                         axis=-1)
    return masked_mean(per_sample, mask)


def diversity_loss(
    mu: jax.Array, mu_prime: jax.Array, z: jax.Array, z_prime: jax.Array, mask: jax.Array, target: float = 1.0
) -> jax.Array:
    """Masked mean of (target - a_diff / (z_diff + 1e-5))^2 (facts 5.4, `_diversity_loss`).

    a_diff = mean over action dims of (clip(mu, -1, 1) - clip(mu', -1, 1))^2, with mu' = actor(obs, z');
    z_diff = (1 - z.z') / 2.
    """
    a_diff = jnp.mean(jnp.square(jnp.clip(mu, -1.0, 1.0) - jnp.clip(mu_prime, -1.0, 1.0)), axis=-1)
    z_diff = 0.5 * (1.0 - jnp.sum(z * z_prime, axis=-1))
    bonus = a_diff / (z_diff + 1e-5)
    return masked_mean(jnp.square(target - bonus), mask)


# --- discriminator and encoder (facts 5.4) -------------------------------------------------------


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
    """Discriminator loss (facts 5.4); agent_obs already holds the replay rows, all obs normalised.

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
    """Encoder loss mean(-(e(o).z)) over agent samples, no mask (facts 5.4).

    `enc_apply(params, obs) -> (N, latent_dim)` unit-norm encodings; obs normalised.
    """
    similarity = jnp.sum(enc_apply(disc_params, agent_obs) * z, axis=-1)
    loss = -jnp.mean(similarity)
    return loss, {"enc_loss": loss, "enc_similarity": jnp.mean(similarity)}
