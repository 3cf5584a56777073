"""What a finished run prints: where its results are, and the commands that look at them, each as it
runs when pasted on this machine."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

from rich.console import Console

from ase_jax.config.schema import Config
from ase_jax.run_loop.progress import clock


# What to look at after a plain AMP pre-training (latent_dim 0): one policy, no latents to pick, no
# skills for a task to reuse.
AMP_NEXT_STEPS = (
    "python -m ase_jax.play --checkpoint={workdir} --video={workdir}/amp.mp4          # the policy",
    "python -m ase_jax.export --checkpoint={workdir} --out={workdir}/export           # ONNX + policy.json",
)


def pretraining_next_steps(config: Config, skill_steps: tuple[str, ...]) -> tuple[str, ...]:
    """The commands printed at the end of a pre-training: a command's `skill_steps` for ASE, the
    policy's for plain AMP; each as it runs when pasted on this machine (`runs_here`)."""
    return tuple(runs_here(line) for line in (AMP_NEXT_STEPS if config.ase.latent_dim == 0 else skill_steps))


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def runs_here(line: str) -> str:
    """A suggested command line ("COMMAND   # comment", "{workdir}" for the run folder) as it runs
    on this machine: `play` without `--video` opens MuJoCo's viewer, so where there is no display it
    writes a video instead; `export` needs onnx, so where it is missing the line installs it first.
    (Task lines need nothing: `task` picks a CPU-sized config where there is no accelerator.)"""
    from ase_jax.render import has_display  # here: importing render chooses MuJoCo's GL backend

    command, mark, comment = line.partition("#")
    width = len(command)
    command = command.rstrip()
    if " -m ase_jax.play " in command and "--video" not in command and not has_display():
        command += " --video={workdir}/play.mp4"
        comment = comment.replace("in the viewer", "as a video (no display here for the viewer)")
    if " -m ase_jax.export " in command and not (installed("onnx") and installed("onnxruntime")):
        command = "pip install onnx onnxruntime && " + command
    return f"{command:<{width - 1}} {mark}{comment}" if mark else command


def tensorboard_hint(workdir) -> str:
    """How to look at a run's TensorBoard scalars (tensorboardX writes them; viewing them needs the
    tensorboard package, which is not a dependency)."""
    view = f"tensorboard --logdir {shlex.quote(str(workdir))}"
    return view if installed("tensorboard") else f"pip install tensorboard, then {view}"


def print_results(console: Console, workdir: Path, checkpoints: Path, done: int, samples: int, took_s: float,
                  compiled_s: float | None, next_steps: tuple[str, ...]) -> None:
    """The lines a run that went to its end finishes with: iterations and samples, where the time went,
    where the results are and the `next_steps` ("{workdir}" stands for the run folder)."""
    console.print(f"done: {done} iterations ({samples:,} samples); checkpoints in {checkpoints}",
                  highlight=False, soft_wrap=True)
    if compiled_s is not None:
        console.print(f"time: {clock(took_s)} = {clock(compiled_s)} until the first iteration ran (compiling the "
                      f"training step) + {clock(took_s - compiled_s)} training", highlight=False, soft_wrap=True)
    console.print(f"results in {workdir}: metrics.jsonl, TensorBoard scalars ({tensorboard_hint(workdir)}), "
                  "run_info.json, checkpoints/", highlight=False, soft_wrap=True)
    if next_steps:
        console.print("look at them:", highlight=False)
        for line in next_steps:
            console.print("  " + line.format(workdir=shlex.quote(str(workdir))), highlight=False, soft_wrap=True)
