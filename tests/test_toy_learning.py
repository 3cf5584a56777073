"""Learning, not plumbing: the ASE and task learners on the pure-JAX toy env (ase_jax.env.toy).

Each run takes seconds (no MJX). They check what the algorithms are for: PPO raises a task return,
the discriminator tells demo from agent and its reward rises as the policy comes to move like the
demo, skill discovery makes the latent identifiable from the motion (and without its reward it is
much less so), and a high-level controller on the frozen toy skills raises a task reward.
All runs use fixed seeds; the thresholds leave room for numerical differences between machines.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ase_jax.agents import ppo
from ase_jax.agents.ase import losses, networks as ase_networks
from ase_jax.agents.ase.pretrained import Pretrained
from ase_jax.agents.ase.train import make_train_fns
from ase_jax.agents.hlc.train import make_hlc_train_fns
from ase_jax.env.toy import ToyEnv, toy_config

pytestmark = pytest.mark.timeout(300)
ASE_ITERATIONS = 80
TASK_ITERATIONS = 60


def _train(fns, iterations, seed=0):
    """(initial state, final state, per-iteration metrics) on the first device."""
    first = lambda tree: jax.tree.map(lambda x: np.asarray(x)[0], tree)
    state = fns.init(jax.random.PRNGKey(seed))
    initial = first(state)
    history = []
    for _ in range(iterations):
        state, metrics = fns.step(state)
        history.append({k: float(np.asarray(v)[0]) for k, v in metrics.items()})
    return initial, first(state), history


@pytest.fixture(scope="module")
def ase_run():
    config = toy_config()
    env = ToyEnv()
    fns = make_train_fns(config, env)
    return (config, env, fns.networks) + _train(fns, ASE_ITERATIONS)


@pytest.fixture(scope="module")
def no_sd_run():
    """Skill discovery's reward and the diversity term off; the encoder is still trained, as a probe
    of how much the motion says about z."""
    config = toy_config(enc_reward_w=0.0, diversity_coef=0.0)
    env = ToyEnv()
    fns = make_train_fns(config, env)
    return (config, env, fns.networks) + _train(fns, ASE_ITERATIONS)


@pytest.fixture(scope="module")
def bfloat16_run():
    """The same run with the networks computing in bfloat16 (`ppo.compute_dtype`)."""
    config = toy_config(compute_dtype="bfloat16")
    env = ToyEnv()
    fns = make_train_fns(config, env)
    return (config, env, fns.networks) + _train(fns, ASE_ITERATIONS)


def _evaluate(config, env, nets, policy_state, disc_state, shuffle_latents=False, num=256, steps=48, seed=5):
    """Deterministic rollouts of `policy_state`'s actor under random latents, judged by
    `disc_state`'s discriminator and encoder: (mean speed, disc reward, encoder similarity)."""
    key = jax.random.PRNGKey(seed)
    z = ase_networks.sample_latents(key, (num,), config.ase.latent_dim)
    z_judged = jnp.roll(z, 1, axis=0) if shuffle_latents else z
    clip = config.ppo.normalize_obs_clip

    def body(s, _):
        obs = ppo.normalize(s.obs, policy_state.obs_norm, clip)
        s = jax.vmap(env.step)(s, jnp.clip(nets.actor_apply(policy_state.params["actor"], obs, z), -1.0, 1.0))
        amp = ppo.normalize(s.next_amp_obs.reshape(num, -1), disc_state.amp_norm, clip)
        logits, enc = nets.disc_enc_apply(disc_state.params["disc"], amp)
        return s, (jnp.linalg.norm(s.vel, axis=-1), losses.disc_reward(logits, config.ase.disc_reward_scale),
                   jnp.sum(enc * z_judged, axis=-1))

    start = jax.vmap(env.reset)(jax.random.split(key, num))
    _, (speed, reward, similarity) = jax.jit(lambda s: jax.lax.scan(body, s, None, steps))(start)
    warm = slice(8, None)  # past the start from standstill
    return float(speed[warm].mean()), float(reward[warm].mean()), float(similarity[warm].mean())


def test_discriminator_separates_demo_from_agent_and_its_reward_rises_as_the_policy_imitates(ase_run):
    config, env, nets, initial, final, history = ase_run
    assert history[0]["disc_agent_accuracy"] < 0.6  # an untrained discriminator
    late = history[-1]
    assert late["disc_demo_accuracy"] > 0.9 and late["disc_agent_accuracy"] > 0.9, late
    assert late["disc_demo_logit"] - late["disc_agent_logit"] > 3.0, late
    # The demo moves at unit speed; the untrained policy barely moves, the trained one like the demo.
    speed_before, reward_before, _ = _evaluate(config, env, nets, initial, final)
    speed_after, reward_after, _ = _evaluate(config, env, nets, final, final)
    assert speed_before < 0.2
    assert abs(speed_after - 1.0) < 0.25, speed_after
    # One judge (the final discriminator) for both policies: the trained one earns far more.
    assert reward_after > reward_before + 1.0, (reward_before, reward_after)


def test_skill_discovery_makes_the_latent_identifiable(ase_run, no_sd_run):
    config, env, nets, initial, final, history = ase_run
    assert abs(history[0]["enc_similarity"]) < 0.2  # random level at the start
    _, _, similarity = _evaluate(config, env, nets, final, final)
    _, _, shuffled = _evaluate(config, env, nets, final, final, shuffle_latents=True)
    assert similarity > 0.85, similarity
    assert abs(shuffled) < 0.3, shuffled  # the encoder reads the motion, not the latent's statistics
    assert history[-1]["loss/diversity"] < 0.5 * history[0]["loss/diversity"]

    config, env, nets, _, no_sd_final, _ = no_sd_run
    _, _, no_sd_similarity = _evaluate(config, env, nets, no_sd_final, no_sd_final)
    assert no_sd_similarity < similarity - 0.2, (no_sd_similarity, similarity)


def test_ppo_reaches_a_return_threshold_on_the_toy_task():
    config = toy_config("task")
    _, _, history = _train(make_hlc_train_fns(config, ToyEnv(task=True), None), TASK_ITERATIONS)
    start = history[0]["reward/task"]
    end = np.mean([m["reward/task"] for m in history[-5:]])
    assert start < 0.45 and end > 0.8, (start, end)
    assert all(m["skipped_updates"] == 0 for m in history)


def test_high_level_controller_on_frozen_toy_skills_raises_the_task_reward(ase_run):
    llc_config, env, nets, _, llc_state, _ = ase_run
    as_jax = lambda tree: jax.tree.map(jnp.asarray, tree)
    llc = Pretrained(llc_config, env, nets, as_jax(llc_state.params), as_jax(llc_state.obs_norm),
                     as_jax(llc_state.amp_norm), ASE_ITERATIONS)
    config = toy_config("task")
    fns = make_hlc_train_fns(config, ToyEnv(task=True), llc)
    _, final, history = _train(fns, TASK_ITERATIONS)
    start = history[0]["reward/task"]
    end = np.mean([m["reward/task"] for m in history[-5:]])
    assert end > start + 0.25, (start, end)
    # The low-level controller stays frozen.
    for a, b in zip(jax.tree.leaves(llc_state.params), jax.tree.leaves(final.llc["params"])):
        np.testing.assert_array_equal(a, b)


def test_bfloat16_networks_learn_as_the_float32_ones(ase_run, bfloat16_run):
    """`compute_dtype=bfloat16` (matmuls and activations in bfloat16, parameters and losses float32)
    on the same run: the discriminator, the imitation and the skills reach the float32 run's
    thresholds (BENCHMARKS.md, "bfloat16 networks", has both runs' figures)."""
    config, env, nets, initial, final, history = bfloat16_run
    assert nets.compute_dtype == "bfloat16"
    assert jax.tree.leaves(final.params)[0].dtype == jnp.float32  # parameters stay float32
    late = history[-1]
    assert late["disc_demo_accuracy"] > 0.9 and late["disc_agent_accuracy"] > 0.9, late
    speed, _, similarity = _evaluate(config, env, nets, final, final)
    assert abs(speed - 1.0) < 0.25, speed
    assert similarity > 0.85, similarity
    assert history[-1]["loss/diversity"] < 0.5 * history[0]["loss/diversity"]
    # ... and it did compute in bfloat16: its actions differ from a float32 pass by bfloat16's rounding
    f32 = ase_networks.make_ase_networks(nets.obs_size, nets.amp_obs_size, nets.action_size, nets.latent_dim,
                                         config.ppo.actor_units, config.ase.style_units, config.ppo.critic_units,
                                         config.ase.disc_units)
    obs = jax.random.normal(jax.random.PRNGKey(3), (256, nets.obs_size))
    z = ase_networks.sample_latents(jax.random.PRNGKey(4), (256,), nets.latent_dim)
    mu16 = nets.actor_apply(final.params["actor"], obs, z)
    mu32 = f32.actor_apply(final.params["actor"], obs, z)
    assert mu16.dtype == jnp.float32
    gap = float(jnp.abs(mu16 - mu32).max())
    assert 0 < gap < 0.05 * float(jnp.abs(mu32).max()) + 1e-2, gap
