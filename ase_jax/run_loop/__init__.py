"""The host side of training, shared by `ase_jax.pretrain` and `ase_jax.task`.

- `command.py`: `run_command`, the body of a training command (flags, `--help`, one-line errors).
- `loop.py`: `train_loop`, the iterations with logs, checkpoints, resume and the divergence stop.
- `stop.py`: a clean stop on SIGINT or SIGTERM, and the line that says how to resume.
- `progress.py`: the progress bar, or plain lines where there is no terminal.
- `run_files.py`: run_info.json and the metrics log, cut back to the checkpoint a run resumes from.
- `results.py`: what a finished run prints, the next commands included.

The package hands on the two names the commands call.
"""

from ase_jax.run_loop.command import run_command
from ase_jax.run_loop.loop import train_loop

__all__ = ["run_command", "train_loop"]
