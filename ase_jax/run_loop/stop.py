"""A clean stop of training on a signal: SIGINT (Ctrl-C) or SIGTERM (`kill`, a scheduler) ends the run
at the next iteration boundary, with a checkpoint there, and one line that says how to resume."""

from __future__ import annotations

import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path

from ase_jax import distributed


class TrainingStopped(SystemExit):
    """Training was asked to stop (SIGINT: Ctrl-C; SIGTERM: `kill`, a scheduler) and did, at an
    iteration boundary with a checkpoint there. A SystemExit whose code is the shell's for the
    signal (130, 143), so that a command ends with it and no traceback; `message` is the line that
    said where the run stands and how to resume it."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + signum)
        self.signum, self.message = signum, message


class StopRequests:
    """While entered (in the main thread), SIGINT and SIGTERM do not end the process: `signum` records
    the first, and the loop stops at its next iteration boundary. The first one also gives both
    signals back their default action, so a second ends the process at once without saving (the
    checkpoints already written are whole: orbax renames a checkpoint folder into place when it is
    complete). A signal the process ignores (SIG_IGN, e.g. SIGINT of a background job) stays ignored.

    Python runs a signal's handler between bytecodes of the main thread, so a signal that arrives
    while a compiled step runs (or compiles) is acted on when that step returns."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                previous = signal.getsignal(sig)
                if previous is not signal.SIG_IGN:
                    self._previous[sig] = signal.SIG_DFL if previous is None else previous
                    signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = self.signum or signum
        for sig in self._previous:
            signal.signal(sig, signal.SIG_DFL)

    def requested(self) -> bool:
        """Whether this process (or, in a multi-process run, any of them: a collective that all
        call once per iteration, so that they stop at the same one) was asked to stop."""
        return distributed.any_process(self.signum is not None)

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def resume_command() -> str | None:
    """The command line that started this process, as it was typed, when it is an ase_jax command
    (`python -m ase_jax.pretrain ...`, `python -m ase_jax task ...`, an installed script); None in a
    notebook or a test."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name.startswith("ase_jax"):
        return shlex.join(getattr(sys, "orig_argv", [sys.executable, "-m", spec.name, *sys.argv[1:]]))
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if script.startswith(("ase-jax", "ase_jax")):
        return shlex.join([script if shutil.which(script) == sys.argv[0] else sys.argv[0], *sys.argv[1:]])
    return None


def stopped_message(signum: int, label: str, done: int, total: int, checkpoint: Path | None, workdir: Path) -> str:
    """The one line a stopped run ends with: the signal, the iteration, the checkpoint, how to resume."""
    name = signal.Signals(signum).name
    again = resume_command()
    how = f"resume with: {again}" if again else f"train again with the same config and workdir {workdir} to resume"
    if checkpoint is None:
        return f"{label}: stopped by {name} before the first checkpoint; nothing saved. {how.replace('resume', 'start')}"
    return f"{label}: stopped by {name} after iteration {done} of {total}; checkpoint {checkpoint}; {how}"
