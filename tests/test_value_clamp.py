"""The clamp of normalised values (`ppo.normalize_value_clip`, docs/reference.md §5.4).

rl_games' value normaliser clamps the critic's output (normalised units) to ±5 before it
denormalises it for GAE, and clamps the normalised returns that are the critic's target to ±5.
Closed-form checks on a normaliser with known statistics, then one training step of each learner
on the toy env with the clamp on and off.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ase_jax.agents import ppo
from ase_jax.config import load_config
from ase_jax.config.keys import ConfigError
from ase_jax.config.sections import PPOConfig

MEAN, STD = 3.0, 2.0


def _norm():
    state = ppo.init_normalizer(())
    return state.replace(mean=jnp.asarray(MEAN, jnp.float32), std=jnp.asarray(STD, jnp.float32))


def _ppo(clip):
    return dataclasses.replace(PPOConfig(), normalize_value_clip=clip)


@pytest.mark.timeout(60)
def test_default_is_the_reference_clamp():
    assert PPOConfig().normalize_value_clip == 5.0
    assert load_config("default").ppo.normalize_value_clip == 5.0
    assert load_config("default", {"normalize_value_clip": 0}).ppo.normalize_value_clip == 0.0
    with pytest.raises(ConfigError):
        load_config("default", {"normalize_value_clip": -1})


@pytest.mark.timeout(60)
def test_denormalised_values_clamped_beyond_the_clip():
    v = jnp.array([-9.0, -5.0, -4.99, 0.0, 2.5, 5.0, 7.0, 100.0])
    on = np.asarray(ppo.denormalize_values(v, _norm(), _ppo(5.0)))
    expected = MEAN + STD * np.clip(np.asarray(v), -5.0, 5.0)
    np.testing.assert_allclose(on, expected, rtol=1e-6)
    # within ±5: unchanged; beyond: the bound's value
    np.testing.assert_allclose(on[1:6], MEAN + STD * np.asarray(v[1:6]), rtol=1e-6)
    assert on[0] == on[1] == MEAN - 5 * STD and on[-1] == on[-2] == MEAN + 5 * STD
    # other clip values
    np.testing.assert_allclose(np.asarray(ppo.denormalize_values(v, _norm(), _ppo(1.0))),
                               MEAN + STD * np.clip(np.asarray(v), -1.0, 1.0), rtol=1e-6)
    # off: the plain denormalisation (the behaviour before the clamp)
    off = np.asarray(ppo.denormalize_values(v, _norm(), _ppo(0.0)))
    np.testing.assert_allclose(off, MEAN + STD * np.asarray(v), rtol=1e-6)
    np.testing.assert_array_equal(off, np.asarray(ppo.denormalize(v, _norm())))


@pytest.mark.timeout(60)
def test_normalised_returns_clamped_beyond_the_clip():
    returns = jnp.array([-50.0, MEAN - 5 * STD, MEAN - 1.0, MEAN, MEAN + 9.0, MEAN + 10.5, 80.0])
    z = (np.asarray(returns) - MEAN) / STD  # -26.5, -5, -0.5, 0, 4.5, 5.25, 38.5
    on = np.asarray(ppo.normalize_returns(returns, _norm(), _ppo(5.0)))
    np.testing.assert_allclose(on, np.clip(z, -5.0, 5.0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(on[1:5], z[1:5], rtol=1e-6, atol=1e-6)
    off = np.asarray(ppo.normalize_returns(returns, _norm(), _ppo(0.0)))
    np.testing.assert_allclose(off, z, rtol=1e-6, atol=1e-6)


@pytest.mark.timeout(60)
def test_critic_loss_against_the_clamped_target():
    """ppo_loss's critic term is mean (clip(R_norm, ±5) - V)^2, V the critic's raw output (not clamped)."""
    n = 6
    returns = jnp.array([-40.0, MEAN, MEAN + 4.0, MEAN + 12.0, 30.0, MEAN - 2.0])
    values = jnp.array([0.0, 7.0, 1.0, -6.0, 5.0, 0.5])  # normalised units, some beyond ±5
    minibatch = {"actions": jnp.zeros((n, 2)), "log_prob": jnp.zeros(n), "advantages": jnp.zeros(n),
                 "returns": returns}
    mu, mask = jnp.zeros((n, 2)), jnp.ones(n)
    z = (np.asarray(returns) - MEAN) / STD
    for clip, target in ((5.0, np.clip(z, -5, 5)), (0.0, z)):
        _, metrics = ppo.ppo_loss(mu, values, minibatch, mask, _norm(), _ppo(clip))
        expected = np.mean(np.square(target - np.asarray(values)))
        np.testing.assert_allclose(float(metrics["loss/critic"]), expected, rtol=1e-5)


def _first_step(fns):
    state, metrics = fns.step(fns.init(jax.random.PRNGKey(0)))
    return {k: float(np.asarray(v)[0]) for k, v in metrics.items()}


def _check_wired(make):
    """The same first iteration with the clamp off and at 0.05, which binds for nearly every
    normalised return: the key reaches the training step (the critic's loss changes when the clamp
    binds) and both settings train."""
    off, tight = (_first_step(make(clip)) for clip in (0.0, 0.05))
    for metrics in (off, tight):
        assert np.isfinite(metrics["loss/critic"]) and np.isfinite(metrics["loss/total"])
    assert tight["loss/critic"] != pytest.approx(off["loss/critic"], rel=1e-3)
    # the first iteration's actions do not depend on the critic: the same rollout in both
    assert off["reward/total"] == tight["reward/total"]


@pytest.mark.timeout(300)
def test_ase_training_step_uses_the_clamp():
    from ase_jax.agents.ase.train import make_train_fns
    from ase_jax.env.toy import ToyEnv, toy_config
    env = ToyEnv()
    _check_wired(lambda clip: make_train_fns(toy_config(normalize_value_clip=clip), env))


@pytest.mark.timeout(300)
def test_hlc_training_step_uses_the_clamp():
    from ase_jax.agents.hlc.train import make_hlc_train_fns
    from ase_jax.env.toy import ToyEnv, toy_config
    env = ToyEnv(task=True)
    _check_wired(lambda clip: make_hlc_train_fns(toy_config("task", normalize_value_clip=clip), env, None))
