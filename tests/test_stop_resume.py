"""Stopping and resuming a training run: Ctrl-C (SIGINT) and SIGTERM stop at an iteration boundary
with a checkpoint there and one line saying how to resume; a run killed (-9) between checkpoints
resumes with metrics.jsonl cut back to its checkpoint, so that no iteration is logged twice."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
from rich.console import Console

from ase_jax.checkpoint import read_checkpoint
from ase_jax.config import load_config
from ase_jax.training_setup import compiled_train_fns
from ase_jax.pretrain import train
from ase_jax.run_loop import train_loop
from ase_jax.run_loop.stop import TrainingStopped
from conftest import REPO_ROOT, TEST_CACHE_DIR

PER_ITERATION = 32  # samples of one iteration of the tiny config (4 envs x 8 steps)


def _config(workdir, **overrides):
    return load_config("tiny", {"workdir": str(workdir), **overrides})


def _logged_iterations(workdir) -> list[int]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["env_steps"] // PER_ITERATION for line in lines]


def _checkpoints(workdir) -> list[int]:
    folder = workdir / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


@pytest.mark.timeout(600)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_at_the_iteration_boundary_with_a_checkpoint_there(tmp_path, signum):
    """The signal arrives during iteration 3 (from the progress hook); checkpoints are due every 100
    iterations, so the one at 3 is the stop's."""
    # pytest-xdist's workers ignore SIGINT, and the loop leaves an ignored signal ignored (as a
    # shell's background job needs): give this process Python's own SIGINT handler, as a terminal does.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _stop_and_resume(tmp_path, signum)
    finally:
        signal.signal(signal.SIGINT, before)


def _stop_and_resume(tmp_path, signum):
    config = _config(tmp_path, total_steps=10 * PER_ITERATION, checkpoint_every=100)
    _, _, fns = compiled_train_fns(config)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def send_during_iteration_3(done, state, metrics):
        if done == 3:
            os.kill(os.getpid(), signum)

    console = Console(file=io.StringIO(), width=400)
    with pytest.raises(TrainingStopped) as stopped:
        train_loop(config, fns, console, "pretrain", progress_fn=send_during_iteration_3)
    assert stopped.value.code == 128 + signum  # 130, 143: the shell's statuses for these signals
    last_line = console.file.getvalue().strip().splitlines()[-1]
    assert last_line == stopped.value.message
    assert last_line.startswith(f"pretrain: stopped by {signal.Signals(signum).name} after iteration 3 of 10; "
                                f"checkpoint {tmp_path.resolve() / 'checkpoints' / '3'}; ")
    assert _checkpoints(tmp_path) == [3]
    assert read_checkpoint(tmp_path / "checkpoints" / "3")[1] == 3
    assert _logged_iterations(tmp_path) == [1, 2, 3]
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the loop's handlers are gone

    console = Console(file=io.StringIO(), width=400)
    train(_config(tmp_path, total_steps=5 * PER_ITERATION, checkpoint_every=100), console=console)
    assert "resumed from" in console.file.getvalue() and "(iteration 3)" in console.file.getvalue()
    assert _logged_iterations(tmp_path) == [1, 2, 3, 4, 5]


def _start(workdir, env, iterations):
    cmd = [sys.executable, "-m", "ase_jax.pretrain", "--config=tiny", f"--workdir={workdir}",
           f"--total_steps={iterations * PER_ITERATION}", "--checkpoint_every=10"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return cmd, proc


def _wait_for(proc, condition, what: str, seconds: float = 900.0) -> None:
    """Polls `condition` until it holds (a run starts in a minute, or several on a loaded 2-core CPU)."""
    deadline = time.time() + seconds
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}: {proc.stdout.read()[-3000:]}"
        assert time.time() < deadline, f"no {what} after {seconds} s"
        time.sleep(0.05)


@pytest.mark.timeout(600)
def test_a_resume_cuts_back_the_rows_logged_after_its_checkpoint(tmp_path):
    """A run that logged iterations 11 and 12 but died before their checkpoint (its last one is 10):
    the resumed run moves those two rows aside, then logs 11, 12, ... once."""
    train(_config(tmp_path, total_steps=12 * PER_ITERATION, checkpoint_every=10), console=Console(file=io.StringIO()))
    shutil.rmtree(tmp_path / "checkpoints" / "12")  # the final checkpoint, as if killed before it was written
    assert _checkpoints(tmp_path) == [10] and _logged_iterations(tmp_path) == list(range(1, 13))

    console = Console(file=io.StringIO(), width=400)
    train(_config(tmp_path, total_steps=14 * PER_ITERATION, checkpoint_every=10), console=console)
    out = console.file.getvalue()
    assert "(iteration 10)" in out and "moved the 2 row(s) logged after iteration 10" in out, out
    assert _logged_iterations(tmp_path) == list(range(1, 15))
    discarded = [json.loads(line)["env_steps"] // PER_ITERATION
                 for line in (tmp_path / "metrics.jsonl.discarded-1").read_text().splitlines()]
    assert discarded == [11, 12]


# Heavy (two cold starts of the command, 3-4 minutes on CI): the same as the two tests above, through
# the command line with a real kill -9 and SIGTERM.
@pytest.mark.heavy
@pytest.mark.timeout(2000)
def test_kill_between_checkpoints_then_resume_then_sigterm(tmp_path):
    """kill -9 after checkpoint 10 but before 20: metrics.jsonl holds iterations past 10. The
    resumed run moves those rows aside (nothing lost) and logs 11, 12, ... once; SIGTERM then ends
    it with status 143 and one line naming the checkpoint at the iteration it reached."""
    # A kill -9 can leave a compilation cache entry half written: the runs get a copy of the session's.
    private_cache = tmp_path / "jax_cache"
    if TEST_CACHE_DIR.is_dir():
        shutil.copytree(TEST_CACHE_DIR, private_cache)
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(private_cache), JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    workdir = tmp_path / "run"
    metrics = workdir / "metrics.jsonl"
    rows = lambda: metrics.read_text().count("\n") if metrics.is_file() else 0  # complete lines

    _, proc = _start(workdir, env, 200)
    try:
        _wait_for(proc, lambda: _checkpoints(workdir) == [10] and rows() >= 12, "checkpoint 10 and two more rows")
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed_at = _logged_iterations(workdir)
    assert _checkpoints(workdir) == [10] and killed_at[:10] == list(range(1, 11)) and len(killed_at) > 10, killed_at

    cmd, proc = _start(workdir, env, 200)
    try:  # once the resumed run has cut metrics.jsonl back and logged three more rows
        _wait_for(proc, lambda: (workdir / "metrics.jsonl.discarded-1").is_file() and rows() >= 13,
                  "three rows after the resume")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    assert proc.returncode == 143, out[-3000:]
    flat = " ".join(out.split())  # rich wraps long lines at the pipe's 80 columns
    assert "resumed from" in flat and "(iteration 10)" in flat
    assert f"moved the {len(killed_at) - 10} row(s) logged after iteration 10" in flat
    stopped = out.strip().splitlines()[-1]
    assert stopped.startswith("pretrain: stopped by SIGTERM after iteration "), out[-3000:]
    iteration = int(stopped.split("after iteration ")[1].split()[0])
    assert iteration >= 13
    assert f"checkpoint {workdir.resolve() / 'checkpoints' / str(iteration)}; " in stopped
    assert stopped.endswith(f"resume with: {shlex.join(cmd)}")
    assert read_checkpoint(workdir / "checkpoints" / str(iteration))[1] == iteration

    # every iteration logged once, in order, up to the checkpoint; the rows cut back are kept
    assert _logged_iterations(workdir) == list(range(1, iteration + 1))
    discarded = [json.loads(line)["env_steps"] // PER_ITERATION
                 for line in (workdir / "metrics.jsonl.discarded-1").read_text().splitlines()]
    assert discarded == killed_at[10:]
