"""Plain AMP (`ase.latent_dim: 0`, configs/amp.yaml): the reference's `amp_humanoid.yaml` on the one
training path. No latent input and no encoder in the networks, the style reward alone, clear errors
for settings AMP cannot honour, and an AMP run that checkpoints, plays, exports and learns."""

from __future__ import annotations

import io
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rich.console import Console

from ase_jax.agents import ppo
from ase_jax.agents.ase import losses, networks as ase_networks
from ase_jax.agents.ase.train import make_train_fns
from ase_jax.config import load_config
from ase_jax.config.keys import ConfigError
from ase_jax.env.toy import ToyEnv, toy_config
from ase_jax.inference.rollout import latent_rollout, load_for_playback

AMP_OFF = {"latent_dim": 0, "enc_reward_w": 0.0, "enc_coef": 0.0, "diversity_coef": 0.0}
TOY_ITERATIONS = 80


def _toy_amp(**changes):
    return toy_config(**{**AMP_OFF, "disc_reward_w": 1.0, **changes})


# --- config ------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_amp_config_has_the_reference_amp_hyperparameters():
    """The values of the reference's amp_humanoid.yaml (docs/reference.md §5.8)."""
    config = load_config("amp", command="pretrain")
    ase, hp = config.ase, config.ppo
    assert ase.latent_dim == 0
    assert hp.actor_units == hp.critic_units == ase.disc_units == (1024, 512)
    assert (ase.disc_reward_w, ase.enc_reward_w, ase.enc_coef, ase.diversity_coef) == (1.0, 0.0, 0.0, 0.0)
    assert ase.eps_greedy is False
    assert (hp.learning_rate, hp.minibatch_size, hp.mini_epochs, hp.horizon) == (2e-5, 16384, 6, 32)
    assert (ase.disc_coef, ase.disc_logit_reg, ase.disc_grad_penalty, ase.disc_weight_decay,
            ase.disc_reward_scale, ase.amp_minibatch_size) == (5.0, 0.01, 5.0, 1e-4, 2.0, 4096)
    assert config.env.demo_history == 10
    assert (config.env.state_init, config.env.fall_init_prob, config.env.recovery_episode_prob) == ("reference", 0, 0)
    for name in ("amp_cpu", "amp_tiny"):
        assert load_config(name).ase.latent_dim == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("key,value", [("enc_reward_w", 0.5), ("enc_coef", 5.0), ("diversity_coef", 0.01),
                                       ("separate_encoder", True), ("enc_learning_rate", 1e-4)])
def test_skill_discovery_keys_with_latent_dim_0_are_refused(key, value):
    with pytest.raises(ConfigError, match=rf"latent_dim=0 is plain AMP.*{key}="):
        load_config("amp", {key: value})
    with pytest.raises(ConfigError, match="latent_dim=0 is plain AMP"):
        load_config("default", {"latent_dim": 0})  # ASE's encoder and diversity terms are still on


# --- networks and reward -------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_amp_networks_have_no_latent_input_and_no_encoder():
    config = load_config("amp_tiny")
    nets = ase_networks.networks_for(config, obs_size=7, amp_obs_size=12, action_size=3)
    params = ase_networks.init_params(nets, jax.random.PRNGKey(0))
    actor, critic, disc = (params[k]["params"] for k in ("actor", "critic", "disc"))
    assert set(actor) == {"trunk"}  # no style branch
    assert actor["trunk"]["hidden_0"]["kernel"].shape == (7, 64)  # obs alone, no z
    assert actor["trunk"]["hidden_2"]["kernel"].shape == (64, 3)
    assert critic["mlp"]["hidden_0"]["kernel"].shape == (7, 64)
    assert set(disc) == {"trunk", "logit_layer"}  # no encoder head
    # The ASE networks of the same sizes do have them (the switch is latent_dim alone).
    ase_params = ase_networks.init_params(
        ase_networks.networks_for(load_config("tiny"), 7, 12, 3), jax.random.PRNGKey(0))
    assert "style" in ase_params["actor"]["params"] and "enc_layer" in ase_params["disc"]["params"]
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 7))
    mu = nets.actor_apply(params["actor"], obs, jnp.zeros((5, 0)))
    assert mu.shape == (5, 3)
    logits, enc = nets.disc_enc_apply(params["disc"], jnp.ones((5, 12)))
    assert logits.shape == (5,) and enc.shape == (5, 0)


@pytest.mark.timeout(300)
def test_amp_reward_is_the_weighted_style_reward_alone():
    """An iteration's reward is w_D x r_D with nothing else added (an encoder reward scale set to 3
    changes nothing), and r_D = -log(max(1 - sigmoid(D(o)), 1e-4)) x scale on a batch, by the run's
    own discriminator and normaliser."""
    w, scale = 0.7, 1.5
    config = _toy_amp(disc_reward_w=w, disc_reward_scale=scale, enc_reward_scale=3.0)
    env = ToyEnv()
    fns = make_train_fns(config, env)
    state = fns.init(jax.random.PRNGKey(0))
    for _ in range(3):  # a discriminator that is no longer at its initialisation
        state, _ = fns.step(state)
    disc, amp_norm = (jax.tree.map(lambda x: x[0], t) for t in (state.params["disc"], state.amp_norm))
    _, metrics = fns.step(state)
    assert "reward/enc" not in metrics and "enc_loss" not in metrics and "loss/diversity" not in metrics
    total, style = float(metrics["reward/total"][0]), float(metrics["reward/disc"][0])
    np.testing.assert_allclose(total, w * style, rtol=1e-5)
    # closed form of the style reward on a batch of discriminator observations, by this state's D
    amp = jnp.concatenate([env.demo_amp_obs(jax.random.PRNGKey(3), 64).reshape(64, -1), jnp.zeros((64, 4))])
    logits = fns.networks.disc_logit_apply(disc, ppo.normalize(amp, amp_norm, config.ppo.normalize_obs_clip))
    want = -np.log(np.maximum(1.0 - 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64))), 1e-4)) * scale
    np.testing.assert_allclose(losses.disc_reward(logits, scale), want, rtol=1e-4, atol=1e-6)
    assert want[:64].mean() > want[64:].mean()  # demo-like motion earns more than standing still


# --- learning on the toy env ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_amp_run():
    config = _toy_amp()
    env = ToyEnv()
    fns = make_train_fns(config, env)
    first = lambda tree: jax.tree.map(lambda x: np.asarray(x)[0], tree)
    state = fns.init(jax.random.PRNGKey(0))
    initial, history = first(state), []
    for _ in range(TOY_ITERATIONS):
        state, metrics = fns.step(state)
        history.append({k: float(np.asarray(v)[0]) for k, v in metrics.items()})
    return config, env, fns.networks, initial, first(state), history


def _speed_and_style(config, env, nets, policy, judge, num=256, steps=48, seed=5):
    """Deterministic rollouts of `policy`'s actor judged by `judge`'s discriminator: (speed, style reward)."""
    key = jax.random.PRNGKey(seed)
    clip = config.ppo.normalize_obs_clip
    z = jnp.zeros((num, 0))

    def body(s, _):
        obs = ppo.normalize(s.obs, policy.obs_norm, clip)
        s = jax.vmap(env.step)(s, jnp.clip(nets.actor_apply(policy.params["actor"], obs, z), -1.0, 1.0))
        amp = ppo.normalize(s.next_amp_obs.reshape(num, -1), judge.amp_norm, clip)
        logits = nets.disc_logit_apply(judge.params["disc"], amp)
        return s, (jnp.linalg.norm(s.vel, axis=-1), losses.disc_reward(logits, config.ase.disc_reward_scale))

    start = jax.vmap(env.reset)(jax.random.split(key, num))
    _, (speed, reward) = jax.jit(lambda s: jax.lax.scan(body, s, None, steps))(start)
    return float(speed[8:].mean()), float(reward[8:].mean())


@pytest.mark.timeout(300)
def test_amp_learns_to_move_like_the_demo_on_the_toy_env(toy_amp_run):
    config, env, nets, initial, final, history = toy_amp_run
    assert history[0]["disc_agent_accuracy"] < 0.6
    late = history[-1]
    assert late["disc_demo_accuracy"] > 0.9 and late["disc_agent_accuracy"] > 0.9, late
    assert all(m["skipped_updates"] == 0 for m in history)
    speed_before, reward_before = _speed_and_style(config, env, nets, initial, final)
    speed_after, reward_after = _speed_and_style(config, env, nets, final, final)
    assert speed_before < 0.2
    assert abs(speed_after - 1.0) < 0.25, speed_after  # the demo moves at unit speed
    assert reward_after > reward_before + 1.0, (reward_before, reward_after)


# --- a tiny AMP run on the humanoid: checkpoint, play, export --------------------------------------


@pytest.fixture(scope="module")
def tiny_amp_run(tmp_path_factory):
    from ase_jax.pretrain import train

    workdir = tmp_path_factory.mktemp("tiny_amp_run")
    train(load_config("amp_tiny", {"workdir": str(workdir), "total_steps": 32}), console=Console(file=io.StringIO()))
    return workdir


@pytest.mark.timeout(900)
def test_amp_checkpoint_round_trip_and_play(tiny_amp_run, tmp_path):
    from ase_jax import play
    from ase_jax.checkpoint import read_checkpoint
    from ase_jax.inference.pretrained_loading import load_pretrained

    _, step, arrays, layout, saved = read_checkpoint(tiny_amp_run)
    assert saved["ase"]["latent_dim"] == 0  # the checkpoint says it is plain AMP
    pretrained = load_pretrained(tiny_amp_run)
    assert pretrained.networks.latent_dim == 0 and "enc_layer" not in pretrained.params["disc"]["params"]
    # the saved parameters, not a fresh init
    saved_kernel = [v for k, v in arrays.items() if k.startswith(".params") and "actor" in k and "trunk" in k
                    and "hidden_0" in k and "kernel" in k]
    assert len(saved_kernel) == 1, sorted(arrays)[:10]
    np.testing.assert_array_equal(np.asarray(saved_kernel[0]).reshape(253, 64),  # (devices, in, out) as saved
                                  pretrained.params["actor"]["params"]["trunk"]["hidden_0"]["kernel"])
    qpos = latent_rollout(load_for_playback(tiny_amp_run), np.zeros((2, 6, 0), np.float32))
    assert qpos.shape[:2] == (2, 6) and np.all(np.isfinite(qpos))
    # an AMP policy takes no latent: asking for one is one clear error, exit status 1
    assert play.main([f"--checkpoint={tiny_amp_run}", "--latent=e0", f"--video={tmp_path / 'x.mp4'}"]) == 1


@pytest.mark.timeout(900)
def test_amp_export_matches_jax_and_has_no_latent_input(tiny_amp_run, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed (pip install -e '.[export]')")
    pytest.importorskip("onnx", reason="the export extra is not installed (pip install -e '.[export]')")
    from ase_jax import export
    from ase_jax.inference.mujoco_player import Simulation
    from ase_jax.inference.policy_loading import load_policy
    from ase_jax.inference.pretrained_loading import load_pretrained

    meta = export.export(tiny_amp_run, tmp_path)
    assert meta["llc"]["latent_dim"] == 0 and list(meta["llc"]["inputs"]) == ["obs"]
    assert json.loads((tmp_path / "policy.json").read_text()) == meta
    session = ort.InferenceSession(str(tmp_path / "llc.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["obs"]
    pretrained = load_pretrained(tiny_amp_run, purpose=None)
    rng = np.random.default_rng(0)
    mean, std = np.asarray(pretrained.obs_norm.mean), np.asarray(pretrained.obs_norm.std)
    obs = (mean + std * rng.normal(scale=3.0, size=(64, mean.shape[0]))).astype(np.float32)
    want = np.asarray(pretrained.action(jnp.asarray(obs), jnp.zeros((64, 0))))
    action, = session.run(["action"], {"obs": obs})
    np.testing.assert_allclose(action, want, atol=1e-5, rtol=0)
    # the C MuJoCo player runs the exported AMP policy (no latent fed)
    sim = Simulation(load_policy(tmp_path), seed=0)
    qpos, _ = sim.rollout(5, np.zeros(0))
    assert qpos.shape[0] == 5 and np.all(np.isfinite(qpos))


@pytest.mark.timeout(900)
def test_a_task_on_an_amp_llc_is_refused(tiny_amp_run):
    from ase_jax.errors import AseInputError
    from ase_jax.training_setup import load_llc

    config = load_config("task_tiny", {"name": "heading", "llc": str(tiny_amp_run)})
    with pytest.raises(AseInputError, match="plain AMP run .*--scratch"):
        load_llc(config)


@pytest.mark.timeout(60)
def test_a_plain_amp_run_is_not_pointed_at_skills():
    """The closing hints of pretrain and bench learn: skills and their diversity for ASE, the one
    policy for plain AMP."""
    from ase_jax import pretrain
    from ase_jax.learn_protocol import runner
    from ase_jax.run_loop.results import pretraining_next_steps

    for skill_steps in (pretrain.NEXT_STEPS, runner.NEXT_STEPS):
        amp = pretraining_next_steps(load_config("amp_tiny", {}), skill_steps)
        ase = pretraining_next_steps(load_config("tiny", {}), skill_steps)
        assert not any("skill" in line or "--grid" in line or "diversity" in line for line in amp)
        assert any("diversity" in line for line in ase) and any("--grid" in line for line in ase)
