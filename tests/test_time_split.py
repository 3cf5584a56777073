"""tools/gpu/time_split.sh, the GPU call that measures where the training iteration's time goes
(BENCHMARKS.md, "How the GPU figures are taken"), dry-run on this CPU at the tiny config: its
stages run, write their JSON and say so, and a bad option stops it before anything runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "tools/gpu/time_split.sh"


def run(out, *options, timeout=1500):
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["bash", str(SCRIPT), str(out), *options], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)


# Heavy: about 10 minutes with an empty compilation cache on CI's 2 cores (bench all compiles six
# programs, the bfloat16 stage the training step once more); run it before a lease.
@pytest.mark.heavy
@pytest.mark.timeout(1600)
def test_dry_run_measures_the_split_and_bfloat16(tmp_path):
    proc = run(tmp_path, "--stages=split,bf16,warp", "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    split = json.loads((tmp_path / "split.json").read_text())
    row = split["sizes"]["4"]
    # the parts of the iteration: C MuJoCo at its own size, bare physics, the env, the iteration and its rollout
    assert row["mujoco_c"]["num_envs"] == 2
    assert row["bare_mjx_step"]["env_steps_per_s"] > 0 and row["env"]["env_steps_per_s"] > 0
    assert 0 < row["train"]["rollout_share"] < 1 and row["train"]["top_ops"]
    bf16 = json.loads((tmp_path / "bf16.json").read_text())
    assert bf16["env_steps_per_s"] > 0
    assert "time_split: split exit 0" in proc.stdout and "time_split: bf16 exit 0" in proc.stdout
    try:
        import warp  # noqa: F401
    except ImportError:
        assert "warp skipped: warp-lang is not installed" in proc.stdout


@pytest.mark.heavy
@pytest.mark.timeout(3000)
def test_dry_run_every_stage(tmp_path):
    proc = run(tmp_path, "--stages=split,bf16,precision,warp", "--dry-run", timeout=2900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "precision_highest.json").exists()


def test_an_unknown_option_stops_it(tmp_path):
    proc = run(tmp_path, "--stagez=split", timeout=60)
    assert proc.returncode == 2 and "unknown option --stagez=split" in proc.stderr
    assert not any(tmp_path.iterdir())
