"""`python -m ase_jax.task --name=TASK --llc=RUN [--scratch] [--config=task] [--key=value ...]`.

Stage 2 of ASE: trains a high-level controller for a task (heading, location, reach, strike, getup)
on top of a frozen pre-trained low-level controller (`--llc`: a `python -m ase_jax.pretrain` run
folder or one of its checkpoints). `--scratch` trains a plain policy on the same task without the
skill embedding instead (the paper's baseline). Same conventions as pre-training: configs in
`configs/` (default `task`, or `task_cpu` where JAX has no accelerator; the config must be a task
config), `--key=value` overrides, progress bar, TensorBoard, metrics.jsonl, checkpoints in
`--workdir`, resume on rerun. Each checkpoint holds the frozen LLC it was trained with, and its
config.
"""

from __future__ import annotations

import sys

import jax
from rich.console import Console

from ase_jax.agents.hlc.train import make_hlc_train_fns
from ase_jax.config.schema import Config, to_dict
from ase_jax.inference.task_policy import LLC_CONFIG_KEY
from ase_jax.training_setup import build_task, machine_default_config
from ase_jax.run_loop import run_command, train_loop
from ase_jax.run_loop.command import command_console


def train(config: Config, console: Console | None = None, max_iterations: int | None = None) -> dict:
    console = console or command_console()
    config, env, llc = build_task(config)
    what = ("from scratch (no skill embedding)" if llc is None
            else f"on the frozen LLC {config.task.llc} (step {llc.step})")
    console.print(f"task [bold]{config.task.name}[/] {what}: {config.ppo.num_envs} envs on "
                  f"{jax.local_device_count()} {jax.devices()[0].platform} device(s)")
    saved = to_dict(config)
    if llc is not None:
        saved[LLC_CONFIG_KEY] = to_dict(llc.config)
    return train_loop(config, make_hlc_train_fns(config, env, llc), console, f"task {config.task.name}",
                      max_iterations, control_steps_per_sample=1 if llc is None else config.task.llc_steps,
                      saved_config=saved,
                      next_steps=("python -m ase_jax.play --checkpoint={workdir} --video={workdir}/task.mp4    # the task policy",
                                  "python -m ase_jax.evaluate compare {workdir} OTHER_RUN                   # its curve beside another's"))


CPU_CONFIG = "task_cpu"


def default_config_name(console: Console | None = None) -> str:
    """The config without --config: `task` (the reference's sizes), or `task_cpu` where JAX has no
    accelerator, as pre-training picks `cpu` there (said on `console`)."""
    name, note = machine_default_config("task", CPU_CONFIG, "64 characters, 256-wide networks")
    if note and console is not None:
        console.print(note, highlight=False)
    return name


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_command(train, argv, command="task", default_config=default_config_name)


if __name__ == "__main__":
    sys.exit(main())
