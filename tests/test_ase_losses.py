"""ASE networks, rewards, GAE and losses against closed forms (docs/reference.md §4.2, §5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ase_jax.agents import ppo
from ase_jax.agents.ase import losses
from ase_jax.agents.ase import networks as ase_networks

SMALL = dict(actor_units=(32, 32), style_units=(16,), critic_units=(32, 32), disc_units=(32, 32))
AMP_SIZE = 8


@pytest.fixture(scope="module")
def small_nets():
    """Small networks (two 32-unit layers) and their params; init is jitted to skip eager op compiles."""
    nets = ase_networks.make_ase_networks(obs_size=5, amp_obs_size=AMP_SIZE, action_size=3, latent_dim=4, **SMALL)
    return nets, jax.jit(ase_networks.init_params, static_argnums=0)(nets, jax.random.PRNGKey(0))


def _zero_kernels_with_logit_bias(disc_params, bias: float):
    """Disc params whose logit is `bias` for every input: all kernels zero, logit bias set."""
    params = jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.zeros_like(x) if path[-1].key == "kernel" else x, disc_params)
    params["params"][ase_networks.DISC_LOGIT]["bias"] = jnp.full((1,), bias)
    return params


# --- networks ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sword_shield_nets():
    """Full-size networks for the sword-and-shield character (docs/reference.md §3.1, §3.2, §4.1) and their params."""
    nets = ase_networks.make_ase_networks(obs_size=253, amp_obs_size=1400, action_size=31, latent_dim=64)
    return nets, jax.jit(ase_networks.init_params, static_argnums=0)(nets, jax.random.PRNGKey(0))


def test_sword_shield_shapes_and_unit_norm_encoder(sword_shield_nets):
    nets, params = sword_shield_nets
    k_obs, k_amp, k_z = jax.random.split(jax.random.PRNGKey(1), 3)
    obs = jax.random.normal(k_obs, (4, 253))
    amp = jax.random.normal(k_amp, (4, 1400))
    z = ase_networks.sample_latents(k_z, (4,), 64)

    assert nets.actor_apply(params["actor"], obs, z).shape == (4, 31)
    assert nets.critic_apply(params["critic"], obs, z).shape == (4,)
    logits, enc = nets.disc_enc_apply(params["disc"], amp)
    assert logits.shape == (4,) and enc.shape == (4, 64)
    np.testing.assert_allclose(jnp.linalg.norm(enc, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(nets.disc_logit_apply(params["disc"], amp), logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nets.encode_apply(params["disc"], amp), enc, rtol=1e-5, atol=1e-6)


def test_initialisers_match_reference(sword_shield_nets):
    _, params = sword_shield_nets
    disc = params["disc"]["params"]
    first = disc[ase_networks.DISC_TRUNK]["hidden_0"]["kernel"]
    assert float(jnp.abs(first).max()) <= 1.0 / np.sqrt(1400) + 1e-7
    assert float(jnp.abs(first).max()) > 0.9 / np.sqrt(1400)
    assert float(jnp.abs(disc[ase_networks.DISC_LOGIT]["kernel"]).max()) > 0.9  # U(-1, 1)
    assert float(jnp.abs(disc[ase_networks.DISC_ENCODER]["kernel"]).max()) <= 0.1
    style_out = params["actor"]["params"]["style"]["hidden_2"]["kernel"]
    assert style_out.shape == (256, 64) and float(jnp.abs(style_out).max()) > 0.9
    assert all(float(jnp.abs(b).max()) == 0.0 for path, b in jax.tree_util.tree_leaves_with_path(params)
               if path[-1].key == "bias")
    # Weight decay sees the trunk and logit kernels only.
    assert len(ase_networks.disc_kernels(params["disc"])) == 4


def test_latents_unit_norm_and_steps_in_range():
    z = ase_networks.sample_latents(jax.random.PRNGKey(2), (1000,), 64)
    np.testing.assert_allclose(jnp.linalg.norm(z, axis=-1), 1.0, rtol=1e-5)
    assert abs(float(z.mean())) < 0.01  # no preferred direction
    steps = ase_networks.sample_latent_steps(jax.random.PRNGKey(3), (20000,))
    assert int(steps.min()) == 1 and int(steps.max()) == 149


# --- rewards and log-prob ------------------------------------------------------------------------


def test_disc_reward_formula_and_clamp():
    logits = jnp.array([-2.0, 0.0, 3.0, 20.0])
    expected = -np.log(np.maximum(1.0 - 1.0 / (1.0 + np.exp(-np.array(logits))), 1e-4)) * 2.0
    np.testing.assert_allclose(losses.disc_reward(logits, 2.0), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.disc_reward(jnp.array([0.0]), 1.0), [np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(losses.disc_reward(jnp.array([20.0]), 1.0), [-np.log(1e-4)], rtol=1e-6)


def test_enc_reward_is_clipped_dot():
    z = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    enc = jnp.array([[0.6, 0.8], [-0.6, 0.8], [0.6, 0.8]])
    np.testing.assert_allclose(losses.enc_reward(enc, z, 1.0), [0.6, 0.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(losses.enc_reward(enc, z, 3.0), [1.8, 0.0, 3.0], rtol=1e-6)


def test_gaussian_log_prob():
    mean = jnp.array([[0.0, 1.0]])
    actions = jnp.array([[0.1, 0.8]])
    std = np.exp(-2.9)
    expected = np.sum(-0.5 * ((np.array(actions) - np.array(mean)) / std) ** 2 - np.log(std)
                      - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(ppo.gaussian_log_prob(actions, mean, -2.9), [expected], rtol=1e-5)


# --- GAE -----------------------------------------------------------------------------------------


def test_gae_bootstraps_timeouts_not_terminations():
    gamma, lam = 0.9, 0.8
    # One env, 3 steps: step 0 terminates (fall), step 1 times out, step 2 runs on.
    r = np.array([1.0, 2.0, 3.0])
    v = np.array([0.5, 0.6, 0.7])
    v_next = np.array([10.0, 20.0, 30.0])
    done = np.array([1.0, 1.0, 0.0])
    term = np.array([1.0, 0.0, 0.0])
    a2 = r[2] + gamma * v_next[2] - v[2]
    a1 = r[1] + gamma * v_next[1] - v[1]  # time-out: bootstrapped, recursion cut
    a0 = r[0] - v[0]  # termination: no bootstrap, recursion cut
    adv, ret = ppo.compute_gae(*(jnp.asarray(x)[:, None] for x in (r, v, v_next, done, term)), gamma, lam)
    np.testing.assert_allclose(adv[:, 0], [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], np.array([a0, a1, a2]) + v, rtol=1e-6)

    # Without dones the recursion chains: A_t = delta_t + gamma lam A_{t+1}.
    zeros = jnp.zeros((3, 1))
    adv, _ = ppo.compute_gae(*(jnp.asarray(x)[:, None] for x in (r, v, v_next)), zeros, zeros, gamma, lam)
    d = r + gamma * v_next - v
    expected2 = d[2]
    expected1 = d[1] + gamma * lam * expected2
    expected0 = d[0] + gamma * lam * expected1
    np.testing.assert_allclose(adv[:, 0], [expected0, expected1, expected2], rtol=1e-6)


def test_standardize_uses_masked_statistics():
    x = jnp.array([1.0, 3.0, 100.0])
    mask = jnp.array([1.0, 1.0, 0.0])
    out = ppo.standardize(x, mask)
    std = np.std([1.0, 3.0], ddof=1)
    np.testing.assert_allclose(out, (np.array(x) - 2.0) / (std + 1e-8), rtol=1e-5)
    np.testing.assert_allclose(ppo.masked_mean(x, mask), 2.0)


# --- PPO terms -----------------------------------------------------------------------------------


def test_ppo_actor_loss_clips_and_masks():
    logp_old = jnp.zeros(3)
    logp_new = jnp.log(jnp.array([1.5, 0.5, 1.5]))
    adv = jnp.array([1.0, 1.0, -1.0])
    # r=1.5, A=1 -> max(-1.5, -1.2) = -1.2; r=0.5, A=1 -> max(-0.5, -0.8) = -0.5; third masked out.
    loss = ppo.ppo_actor_loss(logp_new, logp_old, adv, jnp.array([1.0, 1.0, 0.0]), 0.2)
    np.testing.assert_allclose(loss, (-1.2 - 0.5) / 2, rtol=1e-6)


def test_bounds_loss():
    mu = jnp.array([[1.5, -2.0, 0.3], [0.0, 0.0, 3.0]])
    loss = ppo.bounds_loss(mu, jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(loss, 0.25 + 1.0, rtol=1e-6)
    np.testing.assert_allclose(ppo.bounds_loss(mu, jnp.ones(2)), (1.25 + 4.0) / 2, rtol=1e-6)


def test_diversity_loss():
    mu = jnp.array([[0.5, 2.0], [0.0, 0.0]])
    mu_prime = jnp.array([[-0.5, 1.0], [0.0, 0.0]])
    z = jnp.array([[1.0, 0.0], [1.0, 0.0]])
    z_prime = jnp.array([[0.0, 1.0], [0.0, 1.0]])
    # Row 0: a_diff = mean(1^2, (1-1)^2) = 0.5 (mu clipped to 1); z_diff = 0.5; bonus ~ 1.
    bonus0 = 0.5 / (0.5 + 1e-5)
    loss = losses.diversity_loss(mu, mu_prime, z, z_prime, jnp.array([1.0, 0.0]), target=3.0)
    np.testing.assert_allclose(loss, (3.0 - bonus0) ** 2, rtol=1e-5)
    # Row 1 alone: identical actions give bonus 0 and loss target^2.
    loss = losses.diversity_loss(mu, mu_prime, z, z_prime, jnp.array([0.0, 1.0]), target=2.0)
    np.testing.assert_allclose(loss, 4.0, rtol=1e-6)


def test_critic_loss():
    np.testing.assert_allclose(ppo.critic_loss(jnp.array([1.0, 2.0]), jnp.array([2.0, 0.0])), 2.5)


# --- discriminator and encoder -------------------------------------------------------------------


@pytest.mark.parametrize("logit", [-1.5, 0.0, 2.0])
def test_disc_loss_constant_logit_is_closed_form_bce(logit, small_nets):
    nets, params = small_nets
    params = _zero_kernels_with_logit_bias(params["disc"], logit)
    agent = jax.random.normal(jax.random.PRNGKey(1), (8, AMP_SIZE))
    demo = jax.random.normal(jax.random.PRNGKey(2), (8, AMP_SIZE))
    loss, metrics = jax.jit(losses.disc_loss, static_argnums=1)(params, nets.disc_logit_apply, agent, demo)
    expected = 0.5 * (np.log1p(np.exp(logit)) + np.log1p(np.exp(-logit)))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert float(metrics["disc_grad_penalty"]) == 0.0


def test_disc_grad_penalty_of_linear_discriminator():
    w = jnp.array([0.5, -1.0, 2.0])
    b = jnp.array([0.3])
    params = {"params": {ase_networks.DISC_LOGIT: {"kernel": w[:, None], "bias": b}}}

    def linear_apply(p, o):
        layer = p["params"][ase_networks.DISC_LOGIT]
        return (o @ layer["kernel"] + layer["bias"])[:, 0]

    agent = jax.random.normal(jax.random.PRNGKey(3), (16, 3))
    demo = jax.random.normal(jax.random.PRNGKey(4), (16, 3))
    w2 = float(jnp.sum(w**2))
    _, metrics = losses.disc_loss(params, linear_apply, agent, demo, 0.0, 0.0, 0.0)
    bce = float(metrics["disc_bce"])
    loss, metrics = losses.disc_loss(params, linear_apply, agent, demo, logit_reg=0.01, grad_penalty=5.0,
                                     weight_decay=1e-4)
    np.testing.assert_allclose(metrics["disc_grad_penalty"], w2, rtol=1e-6)
    np.testing.assert_allclose(loss, bce + (0.01 + 5.0 + 1e-4) * w2, rtol=1e-6)


def test_disc_weight_decay_covers_trunk_and_logit_kernels_only(small_nets):
    params = small_nets[1]["disc"]["params"]
    expected = sum(float(jnp.sum(params[ase_networks.DISC_TRUNK][f"hidden_{i}"]["kernel"] ** 2)) for i in range(2))
    expected += float(jnp.sum(params[ase_networks.DISC_LOGIT]["kernel"] ** 2))
    got = sum(float(jnp.sum(w**2)) for w in ase_networks.disc_kernels({"params": params}))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_disc_adam_steps_separate_demo_from_agent(small_nets):
    nets, params = small_nets
    params = params["disc"]
    demo = 1.0 + 0.3 * jax.random.normal(jax.random.PRNGKey(5), (256, AMP_SIZE))
    agent = -1.0 + 0.3 * jax.random.normal(jax.random.PRNGKey(6), (256, AMP_SIZE))
    optimizer = optax.adam(1e-3)
    loss_fn = lambda p: losses.disc_loss(p, nets.disc_logit_apply, agent, demo)

    @jax.jit
    def step(params, opt_state):
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = optimizer.init(params)
    first_loss = None
    for _ in range(30):
        params, opt_state, loss = step(params, opt_state)
        first_loss = loss if first_loss is None else first_loss
    final_loss, metrics = loss_fn(params)
    assert float(final_loss) < float(first_loss)
    assert float(metrics["disc_demo_accuracy"]) > 0.9
    assert float(metrics["disc_agent_accuracy"]) > 0.9


def test_enc_loss_is_negative_mean_similarity(small_nets):
    nets, params = small_nets
    params = params["disc"]
    obs = jax.random.normal(jax.random.PRNGKey(7), (10, AMP_SIZE))
    enc = nets.encode_apply(params, obs)
    loss, metrics = losses.enc_loss(params, nets.encode_apply, obs, enc)
    np.testing.assert_allclose(loss, -1.0, rtol=1e-5)  # z = e(o) gives similarity 1
    loss, _ = losses.enc_loss(params, nets.encode_apply, obs, -enc)
    np.testing.assert_allclose(loss, 1.0, rtol=1e-5)
    assert float(metrics["enc_similarity"]) == pytest.approx(1.0, rel=1e-5)


def test_eps_greedy_probabilities_follow_the_reference_and_ignore_the_device_split():
    """p_i = 1 - exp(10 (i / (N - 1) - 1)): env 0 almost always stochastic, the last never; a run
    over two devices gives each device its rows of the single-device schedule."""
    from ase_jax.agents.ase.train import eps_greedy_probs

    whole = np.asarray(eps_greedy_probs(8, 0, 8, True))
    np.testing.assert_allclose(whole, 1.0 - np.exp(10.0 * (np.arange(8) / 7 - 1.0)), rtol=1e-6)
    assert whole[0] == pytest.approx(1.0 - np.exp(-10.0)) and whole[-1] == 0.0 and np.all(np.diff(whole) < 0)
    halves = np.concatenate([np.asarray(eps_greedy_probs(4, 4 * d, 8, True)) for d in range(2)])
    np.testing.assert_allclose(halves, whole, rtol=1e-6)
    np.testing.assert_array_equal(eps_greedy_probs(8, 0, 8, False), np.ones(8))  # off: always stochastic
