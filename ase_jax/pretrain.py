"""`python -m ase_jax.pretrain [--config=NAME] [--key=value ...]`: ASE pre-training (stage 1).

Trains the low-level policy, value function, discriminator and skill encoder on a motion dataset
(the bundled motions by default). Writes TensorBoard scalars and `metrics.jsonl`, saves orbax
checkpoints into `--workdir` every `checkpoint_every` iterations and at the end, and resumes from
the latest checkpoint there when rerun.
"""

from __future__ import annotations

import sys

import jax
from rich.console import Console

from ase_jax import plan
from ase_jax.config import Config
from ase_jax.training_setup import compiled_train_fns, machine_default_config
from ase_jax.run_loop import run_command, train_loop
from ase_jax.run_loop.command import command_console
from ase_jax.run_loop.results import pretraining_next_steps


def train(config: Config, console: Console | None = None, max_iterations: int | None = None) -> dict:
    """Runs (or resumes) pre-training; returns the last logged metrics."""
    console = console or command_console()
    with console.status("building the environment and its fallen poses, compiling the first programs"):
        env, dataset, fns = compiled_train_fns(config)
    # On a device that reports its free memory: the training step compiled ahead of time, its memory
    # checked before the state is allocated (one line and exit 1 when num_envs does not fit), and
    # that compiled step trained with. One process only: a multi-process step spans every process.
    if config.run.memory_check and jax.process_count() == 1 and plan.free_device_memory() is not None:
        with console.status("compiling the training step and checking its memory against the device's"):
            fns = plan.compile_checked(config, env, fns)
    console.print(f"{env.character.name}: {len(dataset.clips)} clips ({dataset.total_seconds:.1f} s) from "
                  f"{dataset.path}; {config.ppo.num_envs} envs on {jax.local_device_count()} "
                  f"{jax.devices()[0].platform} device(s)")
    return train_loop(config, fns, console, "pretrain", max_iterations,
                      next_steps=pretraining_next_steps(config, NEXT_STEPS))


NEXT_STEPS = (
    "python -m ase_jax.play --checkpoint={workdir} --grid=4 --video={workdir}/grid.mp4    # four random skills",
    "python -m ase_jax.play --checkpoint={workdir} --latent=e0                            # one skill, in the viewer",
    "python -m ase_jax.evaluate diversity --checkpoint={workdir}                          # clips the skills cover",
    "python -m ase_jax.task --name=heading --llc={workdir}                                # reuse the skills",
)


CPU_CONFIG = "cpu"


def default_config_name(console: Console | None = None) -> str:
    """The config without --config: `default` (the reference's sizes), or `cpu` where JAX has no
    accelerator (said on `console`)."""
    name, note = machine_default_config("default", CPU_CONFIG, "64 characters, 256-wide networks")
    if note and console is not None:
        console.print(note, highlight=False)
    return name


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(train, argv, command="pretrain", default_config=default_config_name)


if __name__ == "__main__":
    sys.exit(main())
