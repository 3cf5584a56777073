"""The skill judge (ase_jax/inference/skill_judge.py, `python -m ase_jax.evaluate judge`, bench
learn's judge/... rows): the decoder on features that do and do not carry the latent, the split,
the per-latent motion in closed form, the rollout's plan, and the command end to end."""

import json

import jax
import numpy as np
import pytest

from ase_jax.inference import skill_judge
from ase_jax.inference.skill_judge import decode, latent_table, plan_episodes, root_motion, split_episodes


def _latents(n, d, seed=0):
    z = np.random.default_rng(seed).normal(size=(n, d))
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


def _episodes(n, k):
    latent_index, episode_index = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(k), indexing="ij"))
    return latent_index, episode_index


def _score(features, latent_index, episode_index, latents):
    train, fold = split_episodes(episode_index)
    return decode(features, latent_index, latents, train, fold)


# --- the decoder -------------------------------------------------------------------------------


def test_a_latent_written_linearly_into_noisy_features_is_decoded():
    """Features = A z + noise (noise as large as the signal per window, 40 features): the held-out
    episodes are decoded well above chance, and every one of them is classified right."""
    rng = np.random.default_rng(1)
    n, k, w, d, f = 8, 4, 5, 6, 40
    latents = _latents(n, d)
    latent_index, episode_index = _episodes(n, k)
    mix = rng.normal(size=(d, f))
    signal = latents[latent_index] @ mix  # (E, F)
    features = signal[:, None, :] + rng.normal(scale=signal.std(), size=(n * k, w, f)) + 3.0
    out = _score(features, latent_index, episode_index, latents)
    assert out["r2"] > 0.7 and out["cosine"] > 0.85, out
    assert out["accuracy"] == 1.0 and out["chance"] == 1 / 8
    assert out["test_episodes"] == out["train_episodes"] == 16


def test_features_that_do_not_depend_on_the_latent_score_chance():
    """Pure noise features: R^2 at most about 0, cosine about 0, accuracy near 1/N (80 held-out
    episodes: 3 standard errors of a binomial at 1/8 is 0.11)."""
    rng = np.random.default_rng(2)
    n, k, w, d, f = 8, 20, 4, 6, 30
    latents = _latents(n, d, seed=3)
    latent_index, episode_index = _episodes(n, k)
    out = _score(rng.normal(size=(n * k, w, f)), latent_index, episode_index, latents)
    assert out["r2"] < 0.02 and abs(out["cosine"]) < 0.1, out
    assert abs(out["accuracy"] - 1 / 8) < 0.11, out
    assert out["ridge_penalty"] == skill_judge.RIDGE_GRID[-1]  # cross-validation finds nothing to fit


def test_the_split_keeps_every_latent_in_both_halves():
    latent_index, episode_index = _episodes(5, 4)
    train, fold = split_episodes(episode_index)
    for i in range(5):
        mine = latent_index == i
        assert train[mine].sum() == 2 and (~train[mine]).sum() == 2
        assert sorted(fold[mine & train]) == [0, 1]  # each cross-validation fold sees every latent too
    odd_train, _ = split_episodes(_episodes(3, 3)[1])
    assert odd_train.sum() == 6  # 3 episodes: 2 fitted on, 1 scored per latent


def test_scores_come_from_held_out_episodes_only():
    """The latent is in the training episodes' features but the held-out episodes are noise: a
    judge that scored on training episodes would find it; this one finds chance. The other way
    round (nothing to learn from, signal in the held-out half: a judge fitted on held-out episodes
    would find it) also scores about chance. The held-out episodes of one latent are alike here, so
    a latent is classified right or wrong as a whole: the trials are the 32 latents, not the
    episodes (chance 1/32, 3 standard errors of a binomial 0.09)."""
    rng = np.random.default_rng(4)
    n, k, w, d, f = 32, 6, 4, 16, 30
    latents = _latents(n, d, seed=5)
    latent_index, episode_index = _episodes(n, k)
    signal = (latents[latent_index] @ rng.normal(size=(d, f)))[:, None, :] + rng.normal(scale=0.1, size=(n * k, w, f))
    noise = rng.normal(scale=signal.std(), size=signal.shape)
    train, _ = split_episodes(episode_index)
    held_out_noise = np.where(train[:, None, None], signal, noise)
    assert _score(signal, latent_index, episode_index, latents)["accuracy"] == 1.0
    for features in (held_out_noise, np.where(train[:, None, None], noise, signal)):
        out = _score(features, latent_index, episode_index, latents)
        assert out["accuracy"] < 1 / 32 + 0.09 and out["r2"] < 0.05, out


# --- what a user sees ----------------------------------------------------------------------------


def test_speed_and_turning_of_a_root_on_a_circle():
    """A root going round a circle of radius r at angular rate w, facing along it: every step's path
    is the chord 2 r sin(w dt / 2) and its heading turns by w dt (across the +-pi wrap). At step 120
    the episode ends and the next starts on another circle 10 m away: that step is skipped."""
    r, w, dt, t, reset = 1.5, 0.8, 1 / 30, 200, 120
    steps = np.arange(t)
    angle = np.where(steps < reset, w * dt * steps, 2.0 + w * dt * (steps - reset))
    centre = np.where(steps[:, None] < reset, [0.0, 0.0], [10.0, 0.0])
    heading = angle + np.pi / 2
    pos = np.concatenate([centre + r * np.stack([np.cos(angle), np.sin(angle)], -1), np.full((t, 1), 0.9)], -1)
    rot = np.stack([np.cos(heading / 2), 0 * heading, 0 * heading, np.sin(heading / 2)], -1)
    root = np.concatenate([pos, rot], -1)[:, None]  # (T, 1, 7)
    done = np.zeros((t, 1))
    done[reset] = 1
    path, turn, seconds = root_motion(root, done, dt)
    assert seconds[0] == pytest.approx((t - 2) * dt)
    assert path[0] / seconds[0] == pytest.approx(2 * r * np.sin(w * dt / 2) / dt, rel=1e-9)
    assert turn[0] / seconds[0] == pytest.approx(w, rel=1e-9)
    mirrored = root.copy()
    mirrored[..., 1] *= -1  # the same circles clockwise: heading turns the other way
    mirrored[..., 4:6] = 0
    mirrored[..., 6] = np.sin(-heading / 2)[:, None]
    assert root_motion(mirrored, done, dt)[1][0] / seconds[0] == pytest.approx(-w, rel=1e-9)


def test_the_nearest_clip_is_named_only_where_the_pose_is_close():
    """Two latents, 2 episodes each, 4 measured transitions per episode: latent 0 is close half of
    the time, mostly to clip b; latent 1 is never close, so no clip is named for it."""
    plan = plan_episodes(jax.random.PRNGKey(0), 2, 2, 3, steps=20, dt=0.1, noise_std=0.05)
    distance = np.array([[0.5, 2.0, 3.0, 3.0], [0.2, 2.0, 3.0, 3.0], [0.9, 0.4, 1.5, 1.2], [2.0, 2.0, 1.1, 1.3]])
    clip = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    root = np.zeros((4, 4, 7))
    root[..., 3] = 1
    root[:, 0, 0] = 0.1 * np.arange(4)  # latent 0's first episode walks 0.1 m a step (1 m/s), the other stands
    records = {"distance": distance, "clip": clip, "root": root, "done": np.zeros((4, 4)),
               "fell": np.array([True, False, False, False])}
    table = latent_table(records, plan, ["a", "b"])
    assert table[0] == {"latent": 0, "speed_m_s": pytest.approx(0.5), "turn_rad_s": 0.0, "fell": 0.5,
                        "close_share": 0.5, "nearest_clip": "b", "nearest_clip_share": 0.75}
    assert table[1]["nearest_clip"] == skill_judge.NONE_CLOSE and table[1]["close_share"] == 0.0
    assert table[1]["nearest_clip_share"] is None and table[1]["speed_m_s"] == 0.0


# --- the rollout's plan ----------------------------------------------------------------------------


def test_the_plan_and_its_noise_are_fixed_by_the_seed():
    plan = plan_episodes(jax.random.PRNGKey(3), 4, 3, 8, steps=180, dt=1 / 30, noise_std=0.05)
    assert plan.measure_from == 30 and plan.window == 30 and plan.num_windows == 5
    assert plan.episode_latents.shape == (12, 8) and np.allclose(np.linalg.norm(plan.latents, axis=-1), 1.0)
    assert list(plan.latent_index) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] and list(plan.episode_index[:3]) == [0, 1, 2]
    again = plan_episodes(jax.random.PRNGKey(3), 4, 3, 8, steps=180, dt=1 / 30, noise_std=0.05)
    assert np.array_equal(again.latents, plan.latents)
    np.testing.assert_array_equal(again.noise(7, (12, 5)), plan.noise(7, (12, 5)))
    # a short episode settles for a fifth of it and has one window
    short = plan_episodes(jax.random.PRNGKey(3), 2, 2, 8, steps=15, dt=1 / 30, noise_std=0.05)
    assert (short.measure_from, short.window, short.num_windows) == (3, 12, 1)


def test_the_judges_characters_act_with_the_policys_noise():
    """Around the action function's output, the noise has the plan's std, and differs between
    steps and between the episodes of one latent (so that they are not copies of each other)."""
    from types import SimpleNamespace

    plan = plan_episodes(jax.random.PRNGKey(0), 2, 50, 4, steps=60, dt=1 / 30, noise_std=0.05)
    policy = skill_judge.judge_policy(lambda obs, z: obs[:, :6] * 0 + z.sum(-1, keepdims=True), plan)
    state = SimpleNamespace(obs=np.zeros((100, 10), np.float32))
    (_, a0, z), (_, a1, _) = policy((), state, 0), policy((), state, 1)
    np.testing.assert_array_equal(z, plan.episode_latents)
    noise0 = np.asarray(a0) - plan.episode_latents.sum(-1, keepdims=True)
    assert noise0.shape == (100, 6) and abs(noise0.std() / 0.05 - 1) < 0.1 and abs(noise0.mean()) < 0.01
    assert not np.allclose(a0, a1) and not np.allclose(a0[0], a0[1])  # other steps, other episodes: other draws
    np.testing.assert_array_equal(policy((), state, 0)[1], a0)  # the same step: the same draw


@pytest.mark.parametrize("latents, episodes, words", [(1, 4, "--num_latents=1"), (4, 1, "--episodes=1")])
def test_too_few_latents_or_episodes_are_refused(latents, episodes, words):
    from ase_jax.errors import AseInputError

    with pytest.raises(AseInputError, match=words):
        plan_episodes(jax.random.PRNGKey(0), latents, episodes, 4, steps=60, dt=1 / 30, noise_std=0.05)


# --- the command on a tiny run ---------------------------------------------------------------------


@pytest.mark.timeout(1500)
def test_evaluate_judge_on_a_tiny_run(tiny_pretrained_run, tmp_path, capsys):
    from ase_jax.evaluate import main

    argv = ["judge", f"--checkpoint={tiny_pretrained_run}", "--num_latents=3", "--episodes=2", "--seconds=0.5",
            f"--out={tmp_path}"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "judge.json").read_text())
    assert f"wrote {tmp_path / 'judge.json'}" in out and "accuracy" in out
    assert result["latents"] == 3 and result["episodes"] == 2 and result["test_episodes"] == 3
    assert result["chance"] == pytest.approx(1 / 3) and 0.0 <= result["accuracy"] <= 1.0
    assert np.isfinite([result["r2"], result["cosine"]]).all() and result["r2"] <= 1.0
    assert [row["latent"] for row in result["table"]] == [0, 1, 2]
    for row in result["table"]:
        assert row["speed_m_s"] >= 0 and 0 <= row["close_share"] <= 1 and np.isfinite(row["turn_rad_s"])
    # the same seed gives the same figures
    assert main(argv) == 0
    assert json.loads((tmp_path / "judge.json").read_text()) == result


@pytest.mark.timeout(120)
def test_evaluate_judge_on_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    from ase_jax.evaluate import main

    missing = tmp_path / "no_such_run"
    assert main(["judge", f"--checkpoint={missing}", "--num_latents=2", "--episodes=2"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err, err
    assert not missing.exists()
