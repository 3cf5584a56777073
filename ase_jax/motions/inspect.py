"""`python -m ase_jax.motions inspect PATH`: a table of a dataset's clips and their FK round trip."""

from __future__ import annotations

import dataclasses
import json
import sys

from rich.console import Console
from rich.table import Table

from ase_jax import cli
from ase_jax.character import CHARACTERS, Character, load_character
from ase_jax.errors import AseInputError, MotionFileError
from ase_jax.motions.convert import convert_clip, fk_error
from ase_jax.motions.dataset import read_dataset_entries
from ase_jax.motions.npy_format import load_clip

# Above this round-trip error a clip is flagged: its conversion to simulator states is wrong.
FK_ERROR_LIMIT_CM = 2.0


@dataclasses.dataclass(frozen=True)
class ClipReport:
    name: str
    frames: int
    fps: float
    seconds: float
    weight: float  # normalised
    fk_error_cm: float  # max over frames and bodies


def character_for_skeleton(node_names, path) -> Character:
    """The registered character whose body names match a clip's skeleton."""
    for name in CHARACTERS:
        character = load_character(name)
        if character.body_names == tuple(node_names):
            return character
    raise MotionFileError(path, f"no registered character has this skeleton ({len(node_names)} bodies: "
                                f"{list(node_names)}); known characters: {sorted(CHARACTERS)}")


def dataset_character(path, character: str | Character | None = None) -> Character:
    """The character to use for a clip or dataset: `character` (a name or a loaded one), else the
    registered one whose skeleton matches the first clip's."""
    if isinstance(character, Character):
        return character
    if character:
        return load_character(character)
    first = load_clip(read_dataset_entries(path)[0].path)
    return character_for_skeleton(first.skeleton.node_names, first.path)


def inspect_dataset(path, character: str | None = None) -> tuple[Character, list[ClipReport]]:
    entries = read_dataset_entries(path)
    total_weight = sum(e.weight for e in entries)
    char = dataset_character(path, character)
    reports = []
    for entry in entries:
        clip = load_clip(entry.path)
        states = convert_clip(clip, char)
        reports.append(ClipReport(states.name, clip.num_frames, clip.fps, clip.length,
                                  entry.weight / total_weight, float(fk_error(states, char).max() * 100)))
    return char, reports


def run_inspect(args) -> int:
    console = Console(width=None if sys.stdout.isatty() else 120)
    try:
        char, reports = inspect_dataset(args.path, args.character)
    except AseInputError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 1
    if args.json:
        print(json.dumps({"character": char.name, "clips": [dataclasses.asdict(r) for r in reports],
                          "total_seconds": sum(r.seconds for r in reports)}))
        return 0
    table = Table(title=f"{args.path}  (character: {char.name})")
    table.add_column("clip", no_wrap=True)
    for col, justify in ( ("frames", "right"), ("fps", "right"), ("seconds", "right"),
                         ("weight", "right"), ("FK error (cm)", "right")):
        table.add_column(col, justify=justify)
    for r in reports:
        style = "red" if r.fk_error_cm >= FK_ERROR_LIMIT_CM else ""
        table.add_row(r.name, str(r.frames), f"{r.fps:.2f}", f"{r.seconds:.2f}", f"{r.weight:.5f}",
                      f"{r.fk_error_cm:.3g}", style=style)
    total = sum(r.seconds for r in reports)
    worst = max(r.fk_error_cm for r in reports)
    table.add_section()
    table.add_row(f"{len(reports)} clips", str(sum(r.frames for r in reports)), "",
                  f"{total:.1f} ({total / 60:.2f} min)", f"{sum(r.weight for r in reports):.3f}", f"max {worst:.3g}")
    console.print(table)
    bad = [r.name for r in reports if r.fk_error_cm >= FK_ERROR_LIMIT_CM]
    if bad:
        console.print(f"[red]{len(bad)} clips have FK round-trip errors of {FK_ERROR_LIMIT_CM} cm or more: {bad}")
        return 1
    console.print(f"All FK round-trip errors are below {FK_ERROR_LIMIT_CM} cm.")
    return 0


def add_inspect_parser(subparsers) -> None:
    p = cli.add_subcommand(subparsers, "inspect", description=__doc__,
                           help="list the clips of a .npy clip or .yaml dataset and check their conversion")
    p.add_argument("path", help="a motion clip (.npy) or a dataset (.yaml)")
    p.add_argument("--character", default=None, choices=sorted(CHARACTERS),
                   help="character to convert for (default: the one whose skeleton matches)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_inspect)
