"""What a training run writes beside its checkpoints: `run_info.json` (its config, the versions and
devices it ran with) and its metrics log, cut back to the checkpoint it resumes from."""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path

import jax
from rich.console import Console

from ase_jax import run_log
from ase_jax.config.schema import Config, to_dict
from ase_jax.run_log import RunLogger

PACKAGES = ("jax", "jaxlib", "mujoco", "mujoco-mjx", "brax", "flax", "optax", "orbax-checkpoint", "numpy")


def run_info(config: Config) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"config": to_dict(config), "versions": versions, "python": platform.python_version(),
            "devices": [str(d) for d in jax.local_devices()], "processes": jax.process_count(),
            "global_devices": jax.device_count()}


def write_run_info(workdir: Path, config: Config) -> None:
    (workdir / "run_info.json").write_text(json.dumps(run_info(config), indent=2, default=str))


class _NoLogger:
    """The metrics logger of the processes other than 0 in a multi-process run."""

    def log(self, step: int, metrics: dict) -> None:
        pass

    def close(self) -> None:
        pass


def open_metrics_log(workdir: Path, start: int, steps_per_iteration: int, console: Console, primary: bool):
    """The logger of a run that starts (or resumes) at iteration `start`: on process 0 a RunLogger,
    after the rows of metrics.jsonl logged after that iteration are moved aside (`run_log.cut_back`,
    said on `console`) and hidden from TensorBoard; elsewhere one that logs nothing."""
    if not primary:
        return _NoLogger()
    moved, aside = run_log.cut_back(workdir, start * steps_per_iteration)
    if moved:
        console.print(f"{workdir / run_log.METRICS_FILE}: moved the {moved} row(s) logged after iteration {start} "
                      f"(which this run does again) to {aside}", highlight=False, soft_wrap=True)
    return RunLogger(workdir, purge_after=start * steps_per_iteration if start or moved else None)
