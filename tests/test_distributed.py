"""Training over two processes with JAX's multi-process runtime (ase_jax.distributed), on one machine.

Two `python -m ase_jax.pretrain --config=tiny` processes on 127.0.0.1 with one CPU device each
(collectives through gloo) against one process with two host devices: the same iteration on the
same data, one copy of the logs and checkpoints, resumable by the single process. Plus the failures
that must not hang: a process that never comes, and processes that disagree.

Each subprocess compiles the training step for its layout (minutes on a 2-core CPU the first time;
the shared persistent cache, `tests/conftest.py`, makes later runs load it instead).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import REPO_ROOT, TEST_CACHE_DIR

TIMEOUT = 900  # seconds for one group of processes: compiles on a busy 2-core CPU with a cold cache


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int = 1) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(TEST_CACHE_DIR),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5", PYTHONUNBUFFERED="1")
    env.pop("XLA_FLAGS", None)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _run_together(commands: list[list[str]], timeout: float, env: dict | None = None) -> list[tuple[int, str, str]]:
    """Starts the commands at once and waits for all; kills every one still running on a timeout
    or an error, so that no process outlives the test."""
    procs = []
    try:
        for command in commands:
            procs.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env or _env(), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        deadline = time.monotonic() + timeout
        outputs = [p.communicate(timeout=max(1.0, deadline - time.monotonic())) for p in procs]
        return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


def _pretrain(workdir, port: int, process_id: int, *flags: str, num_processes: int = 2) -> list[str]:
    return [sys.executable, "-m", "ase_jax.pretrain", "--config=tiny", f"--workdir={workdir}",
            f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={num_processes}",
            f"--process_id={process_id}", *flags]


def _check_ok(results):
    for i, (rc, out, err) in enumerate(results):
        assert rc == 0, f"process {i} exited {rc}:\n{out[-3000:]}\n{err[-5000:]}"


def _saved_state(workdir, step) -> dict:
    from ase_jax.checkpoint.checkpointer import Checkpointer

    ckpt = Checkpointer(workdir, 5)
    try:
        return dict(ckpt.manager.restore(step)["state"])
    finally:
        ckpt.close()


SINGLE_PROCESS = textwrap.dedent("""
    import io, sys
    import jax
    from rich.console import Console
    from ase_jax.config import load_config
    from ase_jax.pretrain import train
    assert jax.process_count() == 1 and jax.local_device_count() == 2, jax.devices()
    quiet = Console(file=io.StringIO())
    # One iteration from scratch over 2 devices of one process ...
    train(load_config("tiny", {"workdir": sys.argv[1], "total_steps": 32}), console=quiet)
    # ... then the two-process run's checkpoint resumed for a second iteration (same compiled step).
    train(load_config("tiny", {"workdir": sys.argv[2], "total_steps": 64}), console=quiet)
    print("SINGLE_PROCESS_OK")
""")


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """(workdir, [(rc, stdout, stderr)] x 2, seconds) of a one-iteration two-process tiny run."""
    workdir = tmp_path_factory.mktemp("two_processes")
    port = _free_port()
    start = time.perf_counter()
    results = _run_together([_pretrain(workdir, port, i, "--total_steps=32", "--coordinator_timeout=120")
                             for i in (0, 1)], TIMEOUT)
    seconds = time.perf_counter() - start
    print(f"two-process tiny run: {seconds:.0f} s")
    return workdir, results, seconds


# Heavy (about 8 minutes on CI's 2 cores: two processes and a third with two devices, each compiling
# its own step); tests/test_pretrain.py's two-device run stays in every run.
@pytest.mark.heavy
def test_two_processes_train_like_one_process_with_two_devices(two_process_run, tmp_path):
    workdir, results, _ = two_process_run
    _check_ok(results)
    # Process 0 alone logs: one metrics.jsonl line per iteration, one run_info.json, one progress bar.
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [line["env_steps"] for line in lines] == [32]
    assert np.isfinite(lines[0]["loss/total"])
    info = json.loads((workdir / "run_info.json").read_text())
    assert info["processes"] == 2 and info["global_devices"] == 2
    assert "done: 1 iterations" in results[0][1] and "done:" not in results[1][1]
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1"]
    two_process = _saved_state(workdir, 1)  # copied before the resume below adds a step

    # One process with two devices: the same first iteration, and it resumes the two-process checkpoint.
    single = tmp_path / "single"
    rc, out, err = _run_together([[sys.executable, "-c", SINGLE_PROCESS, str(single), str(workdir)]], TIMEOUT,
                                 env=_env(devices=2))[0]
    assert rc == 0 and "SINGLE_PROCESS_OK" in out, out[-3000:] + err[-5000:]
    one_process = _saved_state(single, 1)
    assert one_process.keys() == two_process.keys()
    params = [k for k in one_process if k.startswith(".params")]
    assert params
    for k in one_process:  # parameters, optimiser, normalisers, every device's envs, replay and keys
        np.testing.assert_allclose(two_process[k], one_process[k], rtol=1e-4, atol=1e-5, err_msg=k)
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2"]
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [line["env_steps"] for line in lines] == [32, 64]


def test_missing_process_is_a_clear_error_not_a_hang(tmp_path):
    start = time.perf_counter()
    (rc, out, err), = _run_together([_pretrain(tmp_path, _free_port(), 0, "--coordinator_timeout=10")], 120)
    seconds = time.perf_counter() - start
    assert rc == 1, (rc, out[-2000:], err[-3000:])
    message = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(message) == 1 and "coordinator" in message[0] and "coordinator_timeout=10" in message[0], err[-3000:]
    assert seconds < 60, seconds
    assert not (tmp_path / "metrics.jsonl").exists()


def test_processes_that_disagree_stop_with_an_error(tmp_path):
    """Caught before anything is compiled: the check runs right after the processes connect."""
    port = _free_port()
    results = _run_together([_pretrain(tmp_path, port, 0, "--coordinator_timeout=60"),
                             _pretrain(tmp_path, port, 1, "--coordinator_timeout=60", "--disc_coef=2")], 180)
    for rc, out, err in results:
        assert rc == 1, (rc, out[-2000:], err[-3000:])
        assert "disagree: config differs in ase.disc_coef (process 0: 5.0, process 1: 2.0)" in err, err[-3000:]


def test_bad_flags_are_refused_without_connecting(tmp_path):
    (rc, _, err), = _run_together([_pretrain(tmp_path, _free_port(), 2)], 120)
    assert rc == 1 and "process_id=2 must be in 0 .. num_processes - 1 = 1" in err, err[-3000:]
    (rc, _, err), = _run_together([[sys.executable, "-m", "ase_jax.pretrain", "--config=tiny",
                                    f"--workdir={tmp_path}", "--num_processes=2"]], 120)
    assert rc == 1 and "needs --coordinator_address" in err, err[-3000:]
