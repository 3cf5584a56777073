"""The skill-discovery levers (docs/reference.md §11, departures D-skills): each is a config key
whose default is the reference's; these tests check what each one changes, against closed forms
where there is one, and that skill discovery still learns on the toy env with all of them on."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ase_jax.agents import ppo
from ase_jax.agents.ase import losses, networks as ase_networks
from ase_jax.agents.ase.train import make_train_fns
from ase_jax.config.flags import config_from_args
from ase_jax.config.keys import ConfigError
from ase_jax.config.sections import PPOConfig
from ase_jax.env.toy import ToyEnv, toy_config

pytestmark = pytest.mark.timeout(300)
SMALL = dict(actor_units=(32, 32), style_units=(16, 8), critic_units=(16,), disc_units=(16, 16))


def test_shifted_encoder_reward_is_dense_for_every_latent():
    enc = jnp.array([[0.6, 0.8], [0.6, 0.8], [1.0, 0.0]])
    z = jnp.array([[1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])  # similarities 0.6, -0.6, -1
    np.testing.assert_allclose(losses.enc_reward(enc, z, 1.0, "clipped"), [0.6, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(losses.enc_reward(enc, z, 2.0, "shifted"), [1.6, 0.4, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="clipped"):
        losses.enc_reward(enc, z, 1.0, "hinge")


def test_a_bad_lever_value_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="enc_reward_form.*did you mean 'shifted'"):
        config_from_args(["--config=tiny", "--enc_reward_form=shifed"], command="pretrain")
    with pytest.raises(ConfigError, match="style_init_scale"):
        config_from_args(["--config=tiny", "--style_init_scale=0"], command="pretrain")


def _z_sensitivity(nets, params, key):
    k_obs, k_z1, k_z2 = jax.random.split(key, 3)
    obs = jax.random.normal(k_obs, (512, nets.obs_size))
    z1, z2 = (ase_networks.sample_latents(k, (512,), nets.latent_dim) for k in (k_z1, k_z2))
    return float(jnp.sqrt(jnp.mean((nets.actor_apply(params, obs, z1) - nets.actor_apply(params, obs, z2)) ** 2)))


def test_style_init_scale_sets_the_style_output_range_and_the_latents_effect():
    key = jax.random.PRNGKey(0)
    sensitivity = {}
    for scale in (1.0, 5.0):
        nets = ase_networks.make_ase_networks(40, 20, 6, latent_dim=16, style_init_scale=scale, **SMALL)
        actor = ase_networks.init_params(nets, key)["actor"]
        style_out = actor["params"]["style"][f"hidden_{len(SMALL['style_units'])}"]["kernel"]  # its output layer
        assert float(jnp.max(jnp.abs(style_out))) <= scale and float(jnp.max(jnp.abs(style_out))) > 0.8 * scale
        sensitivity[scale] = _z_sensitivity(nets, actor, jax.random.PRNGKey(1))
    # Same draws scaled by 5 before the tanh: z moves the actions several times more (tanh saturates, so < 5x).
    assert 2.0 < sensitivity[5.0] / sensitivity[1.0] < 5.0, sensitivity


def test_a_separate_encoder_shares_nothing_with_the_discriminator():
    nets = ase_networks.make_ase_networks(40, 20, 6, latent_dim=16, separate_encoder=True, **SMALL)
    disc = ase_networks.init_params(nets, jax.random.PRNGKey(0))["disc"]
    obs = jax.random.normal(jax.random.PRNGKey(1), (8, 20))
    logit, enc = nets.disc_enc_apply(disc, obs)
    bump = lambda tree: jax.tree.map(lambda x: x + 0.5, tree)
    moved_trunk = {"params": {**disc["params"], "trunk": bump(disc["params"]["trunk"])}}
    moved_enc = {"params": {**disc["params"], "enc_trunk": bump(disc["params"]["enc_trunk"])}}
    np.testing.assert_array_equal(nets.encode_apply(moved_trunk, obs), enc)
    np.testing.assert_array_equal(nets.disc_logit_apply(moved_enc, obs), logit)
    assert not np.allclose(nets.disc_logit_apply(moved_trunk, obs), logit)
    assert not np.allclose(nets.encode_apply(moved_enc, obs), enc)
    # Weight decay covers the discriminator's trunk and logit layer only (2 + 1 kernels), as with a shared trunk.
    assert len(ase_networks.disc_kernels(disc)) == 3
    shared = ase_networks.make_ase_networks(40, 20, 6, latent_dim=16, **SMALL)
    assert "enc_trunk" not in ase_networks.init_params(shared, jax.random.PRNGKey(0))["disc"]["params"]


def test_each_network_group_steps_at_its_own_learning_rate():
    # Adam's first step is lr * g / (|g| + eps) = lr * sign(g) for |g| >> eps: each group moves by its rate.
    params = {"actor": jnp.ones(3), "critic": jnp.ones(3), "disc": jnp.ones(3)}
    grads = jax.tree.map(lambda x: 0.3 * x, params)
    hp = PPOConfig(learning_rate=2e-5)
    optimizer = ppo.make_optimizer(hp, {"critic": 5e-5, "disc": 1e-4})
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    for name, rate in {"actor": 2e-5, "critic": 5e-5, "disc": 1e-4}.items():
        np.testing.assert_allclose(updates[name], -rate, rtol=1e-4)
    # Rates of 0 (unset) or equal to learning_rate are the reference's single Adam, state and all.
    plain = ppo.make_optimizer(hp)
    same = ppo.make_optimizer(hp, {"critic": 0.0, "disc": 2e-5})
    assert jax.tree.structure(same.init(params)) == jax.tree.structure(plain.init(params))
    assert jax.tree.structure(optimizer.init(params)) != jax.tree.structure(plain.init(params))
    np.testing.assert_allclose(optax.apply_updates(params, updates)["disc"], 1 - 1e-4, rtol=1e-6)


def test_the_encoders_own_layers_step_at_the_encoder_rate():
    for separate in (False, True):
        nets = ase_networks.make_ase_networks(40, 20, 6, latent_dim=16, separate_encoder=separate, **SMALL)
        params = ase_networks.init_params(nets, jax.random.PRNGKey(0))
        optimizer = ppo.make_optimizer(PPOConfig(learning_rate=2e-5), {"disc": 1e-4, "enc": 1e-3},
                                       ase_networks.parameter_group)
        grads = jax.tree.map(lambda x: jnp.full_like(x, 0.5), params)
        updates, _ = optimizer.update(grads, optimizer.init(params), params)
        disc = updates["disc"]["params"]
        np.testing.assert_allclose(disc["enc_layer"]["kernel"], -1e-3, rtol=1e-4)
        np.testing.assert_allclose(disc["logit_layer"]["kernel"], -1e-4, rtol=1e-4)
        np.testing.assert_allclose(disc["trunk"]["hidden_0"]["kernel"], -1e-4, rtol=1e-4)
        np.testing.assert_allclose(updates["actor"]["params"]["trunk"]["hidden_0"]["kernel"], -2e-5, rtol=1e-4)
        if separate:
            np.testing.assert_allclose(disc["enc_trunk"]["hidden_1"]["kernel"], -1e-3, rtol=1e-4)


def test_reward_normalization_divides_each_term_by_its_running_std():
    config = toy_config(reward_normalization=True)
    fns = make_train_fns(config, ToyEnv())
    state = fns.init(jax.random.PRNGKey(0))
    assert make_train_fns(toy_config(), ToyEnv()).init(jax.random.PRNGKey(0)).reward_norm is None
    state, metrics = fns.step(state)
    first = lambda x: float(np.asarray(x)[0])
    stats = jax.tree.map(lambda x: np.asarray(x)[0], state.reward_norm)
    assert float(stats["disc"].std) > 0 and float(stats["enc"].std) > 0
    # The total is the weighted sum of each term's mean over its std.
    expected = (config.ase.disc_reward_w * first(metrics["reward/disc"]) / float(stats["disc"].std)
                + config.ase.enc_reward_w * first(metrics["reward/enc"]) / float(stats["enc"].std))
    np.testing.assert_allclose(first(metrics["reward/total"]), expected, rtol=1e-4)


def test_skill_discovery_learns_on_the_toy_env_with_every_lever_on():
    """The quick-skills recipe's levers together (docs/reference.md) still discover skills, and their
    control (no encoder reward, no diversity) much less so: the same judgement as the toy test of the
    reference recipe (tests/test_toy_learning.py), on the final encoder."""
    from tests.test_toy_learning import ASE_ITERATIONS, _evaluate, _train

    levers = dict(style_init_scale=5.0, enc_reward_form="shifted", reward_normalization=True,
                  disc_learning_rate=2e-3, critic_learning_rate=2e-3, separate_encoder=True)
    similarity = {}
    for name, extra in {"levers": {}, "control": {"enc_reward_w": 0.0, "diversity_coef": 0.0}}.items():
        config = toy_config(**levers, **extra)
        env = ToyEnv()
        fns = make_train_fns(config, env)
        _, final, history = _train(fns, ASE_ITERATIONS)
        speed, _, similarity[name] = _evaluate(config, env, fns.networks, final, final)
        if name == "levers":
            assert abs(speed - 1.0) < 0.3, speed  # it still imitates the demo's unit speed
            assert all(m["skipped_updates"] == 0 for m in history)
    assert similarity["levers"] > 0.85, similarity
    assert similarity["control"] < similarity["levers"] - 0.2, similarity
