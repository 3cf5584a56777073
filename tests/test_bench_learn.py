"""`python -m ase_jax.bench learn` (the learning protocol), the CPU default of `pretrain`, and the
GPU evidence script's CPU dry run."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from ase_jax import bench_learn
from ase_jax.learn_protocol import curves
from ase_jax.config import load_config
from ase_jax.pretrain import CPU_CONFIG, default_config_name
from conftest import REPO_ROOT, TEST_CACHE_DIR

TINY_FLAGS = ["--config=tiny", "--samples=64", "--eval_every=1", "--eval_envs=4", "--eval_seconds=0.5",
              "--judge_latents=2", "--judge_episodes=2", "--video=false"]


# --- the summary of a curve --------------------------------------------------------------------


def test_plateau_is_where_a_curve_stays_within_ten_percent_of_its_best():
    rows = [{"env_steps": s, "eval/survival": v, "eval/pose_error": e}
            for s, v, e in [(0, 0.2, 9.0), (10, 0.5, 7.0), (20, 0.95, 5.0), (30, 0.85, 5.5), (40, 1.0, 4.0),
                            (50, 0.96, 4.1)]]
    summary = curves.improvement_summary(rows)
    # survival: gain 0.8, within 0.08 of 1.0 from step 40 on (0.85 at 30 breaks the run from 20)
    assert summary["eval/survival"] == {"start": 0.2, "end": 0.96, "best": 1.0, "samples_to_plateau": 40}
    # pose error improves downwards: gain 5, within 0.5 of 4.0 from step 40 on
    assert summary["eval/pose_error"]["samples_to_plateau"] == 40
    assert summary["eval/pose_error"]["best"] == 4.0


def test_a_curve_that_falls_back_from_its_best_has_no_plateau():
    rows = [{"env_steps": s, "eval/survival": v} for s, v in [(0, 0.2), (10, 1.0), (20, 0.3)]]
    entry = curves.improvement_summary(rows)["eval/survival"]
    assert entry["best"] == 1.0 and "samples_to_plateau" not in entry


def test_a_curve_that_never_improves_has_no_plateau():
    rows = [{"env_steps": s, "eval/survival": v} for s, v in [(0, 0.9), (10, 0.5), (20, 0.7)]]
    entry = curves.improvement_summary(rows)["eval/survival"]
    assert entry["best"] == 0.9 and "samples_to_plateau" not in entry


def test_reference_comparison_counts_samples_to_each_of_the_references_values():
    rows = [{"env_steps": n, "train/enc_reward_clipped": e, "train/diversity_loss": d, "train/episode_length": L}
            for n, e, d, L in [(1_000_000, 0.10, 0.9995, 40), (2_000_000, 0.25, 0.9990, 55), (3_000_000, 0.40, 0.9980, 60)]]
    comparison = curves.reference_comparison(rows)
    enc = comparison["enc_reward"]
    assert enc["ours_end"] == 0.40
    # the reference's 0.218 at 2.6e7 reached at 2e6 (13x fewer samples), its 0.362 at 5.3e7 at 3e6, 0.444 never
    assert [(r["our_samples"], r["fewer_samples_x"]) for r in enc["rows"][:3]] == [
        (2_000_000, 13.0), (3_000_000, 17.7), (None, None)]
    # the diversity loss improves downwards: 0.99885 (2.6e7) is first passed at 3e6, 0.99654 never
    assert [r["our_samples"] for r in comparison["diversity_loss"]["rows"][:2]] == [3_000_000, None]
    assert comparison["episode_length"]["rows"][0]["our_samples"] == 2_000_000


# --- the protocol end to end on the tiny config --------------------------------------------------


@pytest.fixture(scope="module")
def tiny_learn(tmp_path_factory):
    """A run of 64 samples in two calls (32 samples, then continued in the same folder to 64, as the
    GPU evidence script's two calls do)."""
    a = tmp_path_factory.mktemp("learn_a")
    assert bench_learn.main([*TINY_FLAGS, "--samples=32", f"--out={a}"]) == 0
    assert bench_learn.main([*TINY_FLAGS, f"--out={a}"]) == 0
    return a


# The fixture's three tiny runs (each compiling the training step and the evaluator with its judge)
# take about 10 minutes with an empty compilation cache on 2 loaded cores: the first test to use
# it gets the time.
@pytest.mark.timeout(1800)
def test_protocol_writes_every_curve_and_its_summary(tiny_learn):
    out = tiny_learn
    result = json.loads((out / "learn.json").read_text())
    lines = result["rows"]
    assert [r["env_steps"] for r in lines] == [0, 32, 64]
    assert result["samples"] == 64 and result["seed"] == 0 and result["protocol"]["ablation"] == "none"
    # a run folder: the training loop's metrics of each iteration (one per call here) and checkpoints
    trained = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in trained] == [32, 64] and "reward/disc" in trained[-1]
    assert sorted(int(p.name) for p in (out / "checkpoints").iterdir()) == [1, 2]
    assert [(s["start_iteration"], s["end_iteration"]) for s in result["segments"]] == [(0, 1), (1, 2)]
    for key in curves.CURVES:
        values = [r[key] for r in lines if key in r]
        assert values and np.all(np.isfinite(values)), key
    for row in lines:
        assert 0.0 <= row["eval/survival"] <= 1.0
        assert -1.0 <= row["eval/enc_similarity"] <= 1.0
        assert 1 <= row["eval/clips_covered"] <= 7
        assert row["eval/pose_error"] > 0
    assert "train/reward_disc" not in lines[0]  # before training there are no training metrics
    for row in lines:  # the skill judge: 2 latents, 1 held-out episode each
        assert row["judge/chance"] == 0.5 and row["judge/accuracy"] in (0.0, 0.5, 1.0) and row["judge/r2"] <= 1.0
    assert result["judge"]["iteration"] == 2 and len(result["judge"]["table"]) == 2
    assert set(result["summary"]) >= {"eval/survival", "train/diversity_loss", "eval/enc_similarity"}
    assert (out / "curves.png").stat().st_size > 10_000


# Heavy (a third tiny run, 3-5 minutes on CI's 2 cores): test_reliability's kill-and-resume keeps the
# training state's equality in every run; this adds the evaluations' rows.
@pytest.mark.heavy
@pytest.mark.timeout(1800)
def test_same_seed_gives_the_same_curves_in_one_call_or_resumed(tiny_learn, tmp_path):
    assert bench_learn.main([*TINY_FLAGS, f"--out={tmp_path}"]) == 0
    a, b = (json.loads((out / "learn.json").read_text())["rows"] for out in (tiny_learn, tmp_path))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "train_wall_s"} for r in rows]
    assert strip(a) == strip(b)


@pytest.mark.parametrize("ablation, off", [("no_sd", {"enc_reward_w", "enc_coef"}), ("no_div", {"diversity_coef"}),
                                           ("control", {"enc_reward_w", "diversity_coef"}), ("none", set())])
def test_an_ablation_turns_off_exactly_its_terms(ablation, off, monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(bench_learn, "run", lambda config, protocol, out, console, command: seen.update(
        ase=config.ase, ablation=protocol.ablation))
    assert bench_learn.main(["--config=tiny", f"--ablation={ablation}", f"--out={tmp_path}"]) == 0
    reference = load_config("tiny", {}).ase
    changed = {k for k in reference.__dataclass_fields__ if getattr(seen["ase"], k) != getattr(reference, k)}
    assert changed == off and all(getattr(seen["ase"], k) == 0.0 for k in off) and seen["ablation"] == ablation


@pytest.mark.parametrize("flags, words", [
    (["--ablation=no_skills"], "ablation"),
    (["--judge_latents=1"], "--judge_latents"),
    (["--judge_episodes=1"], "--judge_episodes"),
    (["--samples=0"], "--samples"),
    (["--eval_seconds=-1"], "--eval_seconds"),
    (["--num_envs=abc"], "num_envs"),
])
def test_bad_flags_are_one_clear_error(flags, words, tmp_path, capsys):
    assert bench_learn.main([*flags, f"--out={tmp_path / 'x'}"]) == 1
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_a_run_folder_is_not_an_output_folder(tmp_path, capsys):
    """A training run's checkpoints would be pruned by bench learn's saves: refused before anything runs."""
    (tmp_path / "checkpoints" / "7").mkdir(parents=True)
    (tmp_path / "metrics.jsonl").write_text('{"env_steps": 1}\n')
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert bench_learn.main([*TINY_FLAGS, f"--out={tmp_path}"]) == 1
    assert "checkpoints" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "metrics.jsonl").read_text() == '{"env_steps": 1}\n'


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("flag, words", [("--eval_envs=8", "eval_envs 4 -> 8"), ("--horizon=4", "ppo.horizon")])
def test_a_run_of_another_protocol_or_config_is_not_continued(tiny_learn, flag, words, capsys):
    out = tiny_learn
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert bench_learn.main([*TINY_FLAGS, flag, f"--out={out}"]) == 1
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_config_flags_take_the_value_after_a_space(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(bench_learn, "run", lambda config, protocol, out, console, command: seen.update(
        num_envs=config.ppo.num_envs, samples=protocol.samples))
    assert bench_learn.main(["--config=tiny", "--num_envs", "8", "--samples", "64", f"--out={tmp_path}"]) == 0
    assert seen == {"num_envs": 8, "samples": 64}


def test_diagnose_measures_the_latent_path_without_simulating(capsys):
    assert bench_learn.main(["--diagnose", "--config=tiny"]) == 0
    out = capsys.readouterr().out
    assert "mu(obs, z) - mu(obs, z')" in out and "minibatch     16" in out and "minibatch  16384" in out


def test_plot_of_a_folder_without_results_is_refused(tmp_path, capsys):
    assert bench_learn.main([f"--plot={tmp_path / 'c.png'}", str(tmp_path)]) == 1
    assert "learn.json" in capsys.readouterr().err


# --- the CPU default of python -m ase_jax.pretrain --------------------------------------------------


def test_pretrain_defaults_to_the_cpu_config_without_an_accelerator(monkeypatch):
    from ase_jax.run_loop import run_command

    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert default_config_name() == CPU_CONFIG
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    assert default_config_name() == "default"
    # an explicit --config wins: the default is not even asked for
    seen = []
    refuse = lambda console: pytest.fail("the default config was chosen over --config")
    assert run_command(lambda config, console: seen.append(config), ["--config=tiny"], "pretrain", refuse) == 0
    assert seen[0].ppo.num_envs == load_config("tiny", {}).ppo.num_envs


def test_an_installed_gpu_plugin_keeps_the_reference_default(monkeypatch):
    """Without JAX_PLATFORMS the choice comes from the installed jax plugins (none on this CPU machine)."""
    import importlib.metadata

    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    assert default_config_name() == CPU_CONFIG  # this machine has no CUDA/ROCm/TPU plugin
    plugin = importlib.metadata.EntryPoint("xla_cuda12", "jax_cuda12_plugin", "jax_plugins")
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None, **kw: [plugin] if group == "jax_plugins" else real(group=group, **kw))
    assert default_config_name() == "default"


def test_cpu_config_keeps_the_reference_algorithm():
    cpu, ref = load_config(CPU_CONFIG, {}), load_config("default", {})
    # What may differ: sizes and CPU costs; every loss weight, reward and optimiser setting is the reference's.
    sized = {"num_envs", "minibatch_size", "actor_units", "critic_units", "amp_minibatch_size", "replay_buffer_size",
             "style_units", "disc_units", "num_fall_states", "self_collision"}
    for section in ("env", "ppo", "ase"):
        a, b = getattr(cpu, section), getattr(ref, section)
        for key in a.__dataclass_fields__:
            if key not in sized:
                assert getattr(a, key) == getattr(b, key), f"{section}.{key}"
    assert cpu.ppo.num_envs * cpu.ppo.horizon < 65536  # below the run loop's "sized for a GPU" note


# --- the GPU evidence script, dry run -----------------------------------------------------------


def evidence(out, *options, run, timeout=1150, **environ):
    env = dict(os.environ, PYTHON=sys.executable, JAX_COMPILATION_CACHE_DIR=str(TEST_CACHE_DIR),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5", EVIDENCE_RUN=str(run), **environ)
    proc = subprocess.run(["bash", str(REPO_ROOT / "tools/gpu/evidence.sh"), str(out), *options], env=env,
                          capture_output=True, text=True, timeout=timeout)
    log = (out / "evidence.log").read_text() if (out / "evidence.log").is_file() else proc.stdout + proc.stderr
    return proc, log


@pytest.fixture
def evidence_run(tmp_path):
    """The run folder; the background work, if a failing test left it running, is stopped after."""
    run = tmp_path / "run"
    yield run
    pid_file = run / "background" / "pid"
    if pid_file.is_file():
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass


# Heavy (7-10 minutes on CI's 2 cores: three calls, each a process that compiles the step and the
# evaluator, and two videos): run it before a lease with `python -m pytest -m heavy -k evidence`.
@pytest.mark.heavy
@pytest.mark.timeout(1500)
def test_evidence_dry_run_calls_follow_and_resume_the_background_work(tmp_path, evidence_run):
    """The GPU script's two calls at tiny sizes, with the stages the GPU's calls run. Call 1 starts
    the work in the background and follows it to its end (2 iterations here, then the e0/e3 video).
    Then, as if the work had been killed, call 2 resumes the run from its checkpoint and returns at
    once while the work goes on (4 iterations); call 3 follows that work to its end and gets the
    e0/e3 video; a fourth call finds the work ended and returns its files."""
    from ase_jax import render

    run, first, second, third = evidence_run, tmp_path / "call1", tmp_path / "call2", tmp_path / "call3"
    proc, log = evidence(first, "--dry-run", run=run, EVIDENCE_SAMPLES="64")
    files = sorted(p.name for p in first.iterdir())
    expected = {"evidence.log", "learn.json", "metrics.jsonl", "curves.png"}
    if render.gl_problem() is None:
        expected.add("e0_e3" + render.video_suffix())
    assert expected <= set(files), (files, log[-3000:])
    assert len(files) <= 8 and all((first / f).stat().st_size <= 16 * 2**20 for f in files)
    assert proc.returncode == 0, log[-3000:]
    assert "runs in the background" in log and "the background work ended (exit 0)" in log
    assert "=== bench all" not in log and "=== diversity" not in log  # --all's stages only
    learn = json.loads((first / "learn.json").read_text())
    assert learn["rows"][-1]["env_steps"] == 64
    assert "=== summary" in log and "failed" not in log.split("=== summary")[-1]

    (run / "background" / "status").unlink()  # as if the machine had killed the work
    proc, log = evidence(second, "--dry-run", "--continue", run=run, EVIDENCE_FOLLOW="0")
    assert proc.returncode == 0 and "resuming the run from its checkpoint" in log, log[-3000:]
    assert "still running after 0 s" in log and "--continue within 30 s" in log

    proc, log = evidence(third, "--dry-run", "--continue", run=run)
    assert proc.returncode == 0, log[-3000:]
    assert "following the background work" in log and "resumed from" in log and "=== summary" in log
    learn = json.loads((third / "learn.json").read_text())
    assert [r["env_steps"] for r in learn["rows"]] == [0, 32, 64, 96, 128]
    assert [(s["start_iteration"], s["end_iteration"]) for s in learn["segments"]] == [(0, 2), (2, 4)]
    if render.gl_problem() is None:
        assert (third / ("e0_e3" + render.video_suffix())).is_file()

    proc, log = evidence(tmp_path / "call4", "--dry-run", "--continue", run=run, timeout=60)
    assert proc.returncode == 0 and "had ended (exit 0)" in log  # a call after the end: the files as they are


@pytest.mark.heavy
@pytest.mark.timeout(1500)
def test_evidence_dry_run_all_tries_every_stage(tmp_path):
    """--all, in the foreground: bench all, the pre-training with its grid video, the e0/e3 video and
    diversity, each file small enough for the device tool to bring back (heavy: bench all alone
    compiles six programs, about 6 minutes here)."""
    from ase_jax import render

    out = tmp_path / "out"
    proc, log = evidence(out, "--dry-run", "--all", run=tmp_path / "run", EVIDENCE_SAMPLES="64")
    files = sorted(p.name for p in out.iterdir())
    expected = {"evidence.log", "bench_all.json", "learn.json", "metrics.jsonl", "curves.png", "diversity.png"}
    if render.gl_problem() is None:
        expected |= {"grid" + render.video_suffix(), "e0_e3" + render.video_suffix()}
    assert expected <= set(files), (files, log[-3000:])
    assert len(files) <= 8 and all((out / f).stat().st_size <= 16 * 2**20 for f in files)
    assert proc.returncode == 0, log[-3000:]
    learn = json.loads((out / "learn.json").read_text())
    assert learn["diversity"]["num_latents"] == 2 and learn["rows"][-1]["env_steps"] == 64
    bench = json.loads((out / "bench_all.json").read_text())
    assert "4" in bench["sizes"] and bench["sizes"]["4"]["train"]["env_steps_per_s"] > 0
    assert "=== summary" in log and "failed" not in log.split("=== summary")[-1]


def test_evidence_continue_without_a_run_stops_at_once(tmp_path):
    proc, log = evidence(tmp_path / "out", "--dry-run", "--continue", run=tmp_path / "none", timeout=60)
    assert proc.returncode == 1 and "no run to continue" in log


def test_evidence_first_call_keeps_an_earlier_run(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    proc, log = evidence(tmp_path / "out", "--dry-run", run=tmp_path / "run", timeout=60)
    assert proc.returncode == 1 and "--continue" in log and (tmp_path / "run" / "checkpoints").is_dir()


def test_evidence_refuses_an_unknown_option(tmp_path):
    proc = subprocess.run(["bash", str(REPO_ROOT / "tools/gpu/evidence.sh"), str(tmp_path), "--dryrun"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "--dry-run" in proc.stderr and "--continue" in proc.stderr
