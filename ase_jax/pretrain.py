"""`python -m ase_jax.pretrain [--config=NAME] [--key=value ...]`: ASE pre-training (stage 1).

Until the training loop lands (issue 6), this loads the character and the motion dataset, builds the
motion library on the default device and draws jitted reference-state and demo-history batches from
it, reporting what it did.
"""

from __future__ import annotations

import sys
import time

import jax
from rich.console import Console

from ase_jax.character import load_character
from ase_jax.config import config_from_args
from ase_jax.errors import AseInputError
from ase_jax.motions import library as ml
from ase_jax.motions.dataset import load_dataset


def main(argv=None) -> int:
    console = Console()
    try:
        config = config_from_args(sys.argv[1:] if argv is None else argv)
        character = load_character(config.character)
        dataset = load_dataset(config.resolve_path(config.motions), character)
    except AseInputError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False)
        return 1
    console.print(f"character [bold]{character.name}[/]: {character.num_bodies} bodies, "
                  f"{character.num_actions} actuated DoF ({character.xml_path.name})")
    console.print(f"motions: {len(dataset.clips)} clips, {dataset.total_seconds:.1f} s from {dataset.path}")
    lib = ml.build_motion_lib(dataset, character)
    sample = jax.jit(lambda key: (ml.sample_states(lib, key, config.num_envs)[2],
                                  ml.sample_demo_history(lib, key, config.num_envs, config.demo_history)))
    start = time.perf_counter()
    init_states, demo = jax.block_until_ready(sample(jax.random.PRNGKey(config.seed)))
    console.print(f"sampled {config.num_envs} reference states {tuple(init_states.qpos.shape)} and demo histories "
                  f"{tuple(demo.qpos.shape)} on {jax.devices()[0].platform} in {time.perf_counter() - start:.2f} s")
    console.print("[yellow]The training loop is not implemented yet (see the pre-training issue); "
                  "this run checked the character and the motion data.[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
