"""The one command-line convention of every ase_jax command.

- `--help` (`-h`) lists every option and exits with status 0; `python -m ase_jax` lists the commands.
- Options are `--flag=value` or `--flag value`; floats as users type them (`1e-4`, `3E-5`); lists
  as `256,256` or `[256,256]`.
- A bad value, a missing or unknown option is one line `error: ...` on stderr and exit status 1
  (argparse's default, usage and exit status 2, is overridden); so is bad input found later
  (`AseInputError`).

Commands without a config (`play`, `evaluate`, `bench`, `motions`) declare their options on a
`Parser` and run through `run(parser, argv, body)`. The training commands (`pretrain`, `task`) take
config keys (`ase_jax.config`): their help is generated from the config dataclasses
(`config.help.config_help`) and printed by `ase_jax.run_loop.run_command`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from ase_jax.errors import AseInputError

HELP_FLAGS = ("-h", "--help")


class Parser(argparse.ArgumentParser):
    """argparse with the convention: one-line errors with exit status 1, no abbreviated flags,
    the description shown as written."""

    def __init__(self, prog: str | None = None, description: str | None = None, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(prog=prog, description=description, **kwargs)

    def error(self, message: str):
        message = " ".join(str(message).split())
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(1)


def subcommands(parser: argparse.ArgumentParser, dest: str = "command"):
    """Required subcommands; their parsers are `Parser`s too (same errors), each with its own --help."""
    return parser.add_subparsers(dest=dest, required=True, parser_class=Parser)


def add_subcommand(subparsers, name: str, help: str, description: str | None = None, **kwargs) -> Parser:
    """A subcommand whose --help shows `description` (its one-line `help` when not given)."""
    return subparsers.add_parser(name, help=help, description=description or help,
                                 formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
                                 **kwargs)


def error(message: str) -> int:
    """Prints `error: message` as one line on stderr; returns the exit status (1)."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def parse(parser: argparse.ArgumentParser, argv, known: bool = False):
    """The parsed options, or the exit status when parsing ends the command (0 after --help,
    1 after a bad option, already reported). With `known`, (options, the arguments left over),
    for commands that pass the rest on (config keys)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return parser.parse_known_args(argv) if known else parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)


def run(parser: argparse.ArgumentParser, argv, body: Callable[[argparse.Namespace], int | None]) -> int:
    """Parses `argv` (sys.argv[1:] when None) and runs `body(args)`; its return value (None: 0) is
    the exit status. An AseInputError from the body is one error line and status 1."""
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        return body(args) or 0
    except AseInputError as e:
        return error(e)


# Option types: argparse names the flag and the value in its error when these raise.

def _number_list(text: str, cast, example: str) -> tuple:
    parts = [p.strip() for p in str(text).strip().strip("[]()").split(",") if p.strip()]
    try:
        values = tuple(cast(p) for p in parts)
    except ValueError:
        values = ()
    if not values:
        raise argparse.ArgumentTypeError(f"expected a list of {example}, got {text!r}")
    return values


def int_list(text: str) -> tuple[int, ...]:
    """`256,256` or `[256,256]` -> (256, 256)."""
    return _number_list(text, int, "integers such as 256,256 or [256,256]")


def float_list(text: str) -> tuple[float, ...]:
    """`0,50,1e2` or `[0,50,1e2]` -> (0.0, 50.0, 100.0)."""
    return _number_list(text, float, "numbers such as 0,50,100")


def _positive(cast, what: str):
    """An option type: `cast(text)`, refused unless it is > 0 (argparse names the flag in the error)."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


positive_int = _positive(int, "a positive integer")
positive_float = _positive(float, "a positive number such as 10 or 1e-4")


def wants_help(argv) -> bool:
    return any(a in HELP_FLAGS for a in argv)


def boolean(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0."""
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
