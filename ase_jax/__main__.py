"""`python -m ase_jax`: the commands of ase_jax, one line each.

`python -m ase_jax COMMAND ...` runs `python -m ase_jax.COMMAND ...`; every command answers --help.
"""

from __future__ import annotations

import difflib
import importlib
import sys

from ase_jax import cli

# name -> (module, one line). Every module has main(argv) -> exit status.
COMMANDS: dict[str, tuple[str, str]] = {
    "pretrain": ("ase_jax.pretrain", "pre-train the low-level policy on motion data (ASE: skills from mocap)"),
    "task": ("ase_jax.task", "train a high-level controller for a task on a frozen pre-trained policy"),
    "play": ("ase_jax.play", "watch a trained policy (a skill latent, a grid, an interpolation, a task): "
                             "viewer or mp4"),
    "evaluate": ("ase_jax.evaluate", "skill diversity of a run; learning curves of several runs side by side"),
    "bench": ("ase_jax.bench", "benchmarks: env and training steps/s, compile times, the learning protocol"),
    "motions": ("ase_jax.motions", "motion data: inspect, track, download and play clips and datasets"),
    "export": ("ase_jax.export", "a trained policy as ONNX files plus a JSON description"),
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: python -m ase_jax COMMAND [--help] [OPTIONS ...]", "",
             "ASE (Adversarial Skill Embeddings) in JAX + MuJoCo MJX. Commands (each also runs as",
             "python -m ase_jax.COMMAND; COMMAND --help lists its options):", ""]
    lines += [f"  {name:<{width}}  {line}" for name, (_, line) in COMMANDS.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in cli.HELP_FLAGS:
        print(usage(), end="")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return cli.error(f"python -m ase_jax: unknown command '{name}'{hint} (commands: {', '.join(COMMANDS)})")
    module = COMMANDS[name][0]
    if name == "motions":
        module += ".__main__"
    return importlib.import_module(module).main(rest)


if __name__ == "__main__":
    sys.exit(main())
