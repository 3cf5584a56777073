"""Metrics of a training run: TensorBoard scalars and a `metrics.jsonl` line per log step."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from tensorboardX import SummaryWriter

METRICS_FILE = "metrics.jsonl"


class RunLogger:
    def __init__(self, workdir: Path, purge_after: int | None = None):
        """`purge_after`: a resumed run's last saved env step; TensorBoard hides the scalars that
        an earlier process logged after it (tensorboardX's purge_step), as `cut_back` moves them out
        of metrics.jsonl."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.workdir / METRICS_FILE, "a")
        self._tb = SummaryWriter(str(self.workdir / "tensorboard"),
                                 purge_step=None if purge_after is None else purge_after + 1)

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


def cut_back(workdir: Path, last_env_steps: int) -> tuple[int, Path | None]:
    """Takes out of `workdir`'s metrics.jsonl the rows logged after env step `last_env_steps` (the
    checkpoint a run resumes from): a process stopped after its last checkpoint logged iterations
    that the resumed run does again, and the curve would double back. A line that is not a row (cut
    short by a kill) goes too. The rows taken out are kept, in order, in `metrics.jsonl.discarded-N`
    (the first N free), then metrics.jsonl is replaced at once (a temporary file renamed over it), so
    a kill at any moment loses no row. Returns (lines taken out, their file), (0, None) when there is
    nothing to take out (the file is then left as it is)."""
    path = Path(workdir) / METRICS_FILE
    if not path.is_file():
        return 0, None
    kept, dropped = [], []
    for line in path.read_text().splitlines(keepends=True):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            keep = int(row["env_steps"]) <= last_env_steps
        except (ValueError, TypeError, KeyError):
            keep = False
        (kept if keep else dropped).append(line if line.endswith("\n") else line + "\n")
    if not dropped:
        return 0, None
    n = 1
    while (aside := path.with_name(f"{METRICS_FILE}.discarded-{n}")).exists():
        n += 1
    _write_atomically(aside, "".join(dropped))
    _write_atomically(path, "".join(kept))
    return len(dropped), aside


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
