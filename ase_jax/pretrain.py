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

from ase_jax.agents.ase.train import make_train_fns
from ase_jax.character import load_character
from ase_jax.config import Config, config_from_args
from ase_jax.env import HumanoidEnv
from ase_jax.errors import AseInputError
from ase_jax.motions.dataset import load_dataset
from ase_jax.motions.library import build_motion_lib
from ase_jax.run_loop import TrainingDiverged, train_loop  # noqa: F401


def build(config: Config):
    character = load_character(config.character)
    dataset = load_dataset(config.resolve_path(config.motions), character)
    env = HumanoidEnv(config, character, build_motion_lib(dataset, character))
    return env, dataset


def train(config: Config, console: Console | None = None, max_iterations: int | None = None) -> dict:
    """Runs (or resumes) pre-training; returns the last logged metrics."""
    console = console or Console()
    env, dataset = build(config)
    console.print(f"{env.character.name}: {len(dataset.clips)} clips ({dataset.total_seconds:.1f} s) from "
                  f"{dataset.path}; {config.num_envs} envs on {jax.local_device_count()} "
                  f"{jax.devices()[0].platform} device(s)")
    return train_loop(config, make_train_fns(config, env), console, "pretrain", max_iterations)


def main(argv=None) -> int:
    console = Console()
    try:
        config = config_from_args(sys.argv[1:] if argv is None else argv)
        train(config, console)
    except AseInputError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
