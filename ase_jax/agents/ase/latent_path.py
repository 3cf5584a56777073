"""Why skills start slowly: how much a freshly initialised actor's actions depend on its latent, and
how the diversity term's gradient compares with the PPO actor term's (`bench learn --diagnose`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ase_jax.agents import ppo
from ase_jax.agents.ase import losses
from ase_jax.agents.ase import networks as ase_networks
from ase_jax.config import Config


def latent_path_diagnostics(config: Config, obs_size: int, amp_dim: int, action_size: int,
                            minibatches=(None, 16384), seed: int = 0) -> dict:
    """How much the freshly initialised actor's actions depend on z, and how the diversity term's
    gradient compares with the PPO actor term's on one minibatch. Synthetic batch: normalised
    observations ~ N(0, 1), actions drawn around mu with the policy's std, standardised advantages
    ~ N(0, 1), i.e. the PPO gradient that an uninformative advantage gives (its noise). Network-only:
    no simulation, seconds on a CPU."""
    hp, ase = config.ppo, config.ase
    nets = ase_networks.networks_for(config, obs_size, amp_dim, action_size)
    actor = ase_networks.init_params(nets, jax.random.PRNGKey(seed))["actor"]
    m = 4096
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), 3)
    obs = jax.random.normal(keys[0], (m, obs_size))
    z, z2 = (ase_networks.sample_latents(k, (m,), ase.latent_dim) for k in keys[1:])
    mu, mu2 = nets.actor_apply(actor, obs, z), nets.actor_apply(actor, obs, z2)
    out = {"action_std": float(np.exp(hp.action_log_std)), "z_sensitivity": float(jnp.sqrt(jnp.mean((mu - mu2) ** 2))),
           "mu_rms": float(jnp.sqrt(jnp.mean(mu**2))), "gradients": []}

    def grads(n, key):
        k = jax.random.split(key, 5)
        o = jax.random.normal(k[0], (n, obs_size))
        zs, zp = (ase_networks.sample_latents(kk, (n,), ase.latent_dim) for kk in k[1:3])
        mean0 = nets.actor_apply(actor, o, zs)
        actions = mean0 + jnp.exp(hp.action_log_std) * jax.random.normal(k[3], mean0.shape)
        logp0 = ppo.gaussian_log_prob(actions, mean0, hp.action_log_std)
        adv = jax.random.normal(k[4], (n,))
        adv = (adv - adv.mean()) / adv.std()
        mask = jnp.ones(n)
        g_ppo = jax.grad(lambda q: ppo.ppo_actor_loss(ppo.gaussian_log_prob(actions, nets.actor_apply(q, o, zs),
                                                                              hp.action_log_std), logp0, adv, mask))(actor)
        g_div = jax.grad(lambda q: losses.diversity_loss(nets.actor_apply(q, o, zs), nets.actor_apply(q, o, zp),
                                                         zs, zp, mask, ase.diversity_target))(actor)
        return g_ppo, g_div

    norm = lambda g: float(jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(g))))
    for n in dict.fromkeys(n or hp.minibatch_size for n in minibatches):
        g_ppo, g_div = grads(n, jax.random.PRNGKey(seed + 2))
        out["gradients"].append({"minibatch": n, "ppo_actor_norm": norm(g_ppo), "diversity_norm": norm(g_div),
                                 "weighted_ratio": ase.diversity_coef * norm(g_div) / norm(g_ppo)})
    return out
