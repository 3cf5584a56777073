"""`python -m ase_jax.task --name=TASK --llc=RUN [--scratch] [--config=task] [--key=value ...]`.

Stage 2 of ASE: trains a high-level controller for a task (heading, location, reach, strike, getup)
on top of a frozen pre-trained low-level controller (`--llc`: a `python -m ase_jax.pretrain` run
folder or one of its checkpoints). `--scratch` trains a plain policy on the same task without the
skill embedding instead (the paper's baseline). Same conventions as pre-training: configs in
`configs/` (default `task`), `--key=value` overrides, progress bar, TensorBoard, metrics.jsonl,
checkpoints in `--workdir`, resume on rerun.
"""

from __future__ import annotations

import dataclasses
import sys

import jax
from rich.console import Console

from ase_jax.agents.ase.policy import Pretrained, load_pretrained
from ase_jax.agents.hlc.train import make_hlc_train_fns
from ase_jax.character import load_character
from ase_jax.config import Config
from ase_jax.env import HumanoidEnv
from ase_jax.errors import AseInputError
from ase_jax.run_loop import run_command, train_loop
from ase_jax.tasks import make_task

# Config values the low-level controller was trained with and the task env must share.
LLC_SHARED_KEYS = ("character", "latent_dim", "physics_steps_per_control_step", "demo_history")


def load_llc(config: Config) -> Pretrained:
    if not config.llc:
        raise AseInputError("task training needs --llc=RUN_FOLDER (a python -m ase_jax.pretrain run), or --scratch")
    try:
        llc = load_pretrained(config.llc)
    except AseInputError as e:
        raise AseInputError(f"--llc={config.llc}: {e}") from None
    for key in LLC_SHARED_KEYS:
        mine, theirs = getattr(config, key), getattr(llc.config, key)
        if mine != theirs:
            raise AseInputError(f"--llc={config.llc}: the low-level controller was trained with {key}={theirs!r}, "
                                f"but this run has {key}={mine!r}; they must agree")
    return llc


def build(config: Config):
    """(config with the task's own overrides, env, frozen LLC or None for --scratch)."""
    task = make_task(config.task)
    config = dataclasses.replace(config, **getattr(task, "config_overrides", {}))
    llc = None if config.scratch else load_llc(config)
    character = llc.env.character if llc is not None else load_character(config.character)
    return config, HumanoidEnv(config, character, None, task), llc


def train(config: Config, console: Console | None = None, max_iterations: int | None = None) -> dict:
    console = console or Console()
    config, env, llc = build(config)
    what = "from scratch (no skill embedding)" if llc is None else f"on the frozen LLC {config.llc} (step {llc.step})"
    console.print(f"task [bold]{config.task}[/] {what}: {config.num_envs} envs on {jax.local_device_count()} "
                  f"{jax.devices()[0].platform} device(s)")
    return train_loop(config, make_hlc_train_fns(config, env, llc), console, f"task {config.task}", max_iterations,
                      control_steps_per_sample=1 if llc is None else config.llc_steps)


def _translate(argv: list[str]) -> list[str]:
    out = []
    for arg in argv:
        if arg.startswith("--name="):
            arg = "--task=" + arg.split("=", 1)[1]
        elif arg == "--scratch":
            arg = "--scratch=true"
        out.append(arg)
    if not any(a.startswith("--config=") for a in out):
        out.insert(0, "--config=task")
    return out


def main(argv=None) -> int:
    return run_command(train, _translate(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
