"""`python -m ase_jax.motions {inspect,track,download,play,import} ...`: tools for motion data.

`python -m ase_jax.motions SUBCOMMAND --help` lists a subcommand's options."""

from __future__ import annotations

import sys

from ase_jax import cli
from ase_jax.motions.download import add_download_parser
from ase_jax.motions.import_bvh import add_import_parser
from ase_jax.motions.inspect import add_inspect_parser
from ase_jax.motions.play import add_play_parser
from ase_jax.motions.track import add_track_parser


def main(argv=None) -> int:
    parser = cli.Parser(prog="python -m ase_jax.motions", description=__doc__)
    subparsers = cli.subcommands(parser)
    add_inspect_parser(subparsers)
    add_track_parser(subparsers)
    add_download_parser(subparsers)
    add_play_parser(subparsers)
    add_import_parser(subparsers)
    return cli.run(parser, argv, lambda args: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
