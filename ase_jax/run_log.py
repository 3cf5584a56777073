"""Metrics of a training run: TensorBoard scalars and a `metrics.jsonl` line per log step."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tensorboardX import SummaryWriter


class RunLogger:
    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.workdir / "metrics.jsonl", "a")
        self._tb = SummaryWriter(str(self.workdir / "tensorboard"))

    def log(self, step: int, metrics: dict) -> None:
        clean = {k: float(v) for k, v in metrics.items()}
        self._jsonl.write(json.dumps({"env_steps": int(step), **{k: (v if math.isfinite(v) else str(v))
                                                                   for k, v in clean.items()}}) + "\n")
        self._jsonl.flush()
        for k, v in clean.items():
            self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        self._jsonl.close()
        self._tb.close()
