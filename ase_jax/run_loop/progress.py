"""The progress of training's iterations on its console: a live bar on a terminal, a plain line now
and then elsewhere; and the run's clock."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

PLAIN_PROGRESS_S = 30.0


def clock(seconds: float | None) -> str:
    return "-" if seconds is None else f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"


def plain_progress_line(label: str, done: int, total: int, per_iteration: int, elapsed_s: float, metrics: dict) -> str:
    """One line of progress for logs: iteration, samples, samples/s, elapsed, ETA and a few metrics."""
    sps = metrics.get("perf/env_steps_per_s")
    eta = (total - done) * per_iteration / sps if sps else None
    shown = {"disc reward": "reward/disc", "enc reward": "reward/enc", "episode length": "episode/length",
             "task reward": "reward/task"}
    values = "  ".join(f"{name} {metrics[key]:.3g}" for name, key in shown.items() if key in metrics)
    return (f"{label}: iteration {done}/{total}  {done * per_iteration:,} samples  "
            f"{'-' if sps is None else f'{sps:,.0f}'} samples/s  elapsed {clock(elapsed_s)}  ETA {clock(eta)}  {values}")


class IterationProgress:
    """While entered: the iterations `start` .. `total` of a run on `console`. The first iteration
    compiles the whole training step (minutes on a CPU for the reference sizes): the bar says so, with
    the elapsed time ticking, until it returns (`compiled`). Where there is no terminal (nohup, a batch
    scheduler, CI, `| tee`) the live bar prints nothing: a plain line every PLAIN_PROGRESS_S instead,
    as rl_games does. `elapsed()` is the time since it was made."""

    def __init__(self, console: Console, label: str, start: int, total: int, steps_per_iteration: int):
        self.console, self.label, self.start, self.total = console, label, start, total
        self.steps_per_iteration = steps_per_iteration
        self.bar = Progress(TextColumn(f"[bold]{label}"), TextColumn("{task.fields[phase]}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total} it"),
                            TextColumn("{task.fields[sps]} samples/s"), TimeElapsedColumn(), TextColumn("ETA"),
                            TimeRemainingColumn(), console=console, transient=False)
        self.plain = not console.is_terminal
        self.started = self.last_plain = time.perf_counter()

    def __enter__(self) -> "IterationProgress":
        self.bar.__enter__()
        self.task = self.bar.add_task("train", total=self.total, completed=self.start, sps="-",
                                      phase="[yellow]compiling the training step[/]")
        if self.plain:
            self.console.print(f"{self.label}: compiling the training step (minutes on a CPU), then "
                               f"{self.total - self.start} iterations of {self.steps_per_iteration:,} samples",
                               highlight=False, soft_wrap=True)
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def compiled(self) -> None:
        """The first iteration returned: the training step is compiled."""
        self.bar.update(self.task, phase="")

    def rate(self, samples_per_s: float) -> None:
        self.bar.update(self.task, sps=f"{samples_per_s:,.0f}")

    def advance(self, done: int, metrics: dict, last_one: bool) -> None:
        """Iteration `done` is over; `metrics` are the last logged ones."""
        self.bar.update(self.task, completed=done)
        now = time.perf_counter()
        if self.plain and (now - self.last_plain >= PLAIN_PROGRESS_S or last_one):
            self.last_plain = now
            self.console.print(plain_progress_line(self.label, done, self.total, self.steps_per_iteration,
                                                   now - self.started, metrics), highlight=False, soft_wrap=True)
