"""`python -m ase_jax.motions {inspect,track,download,play} ...`: tools for motion data."""

from __future__ import annotations

import argparse
import sys

from ase_jax.motions.download import add_download_parser
from ase_jax.motions.inspect import add_inspect_parser
from ase_jax.motions.play import add_play_parser
from ase_jax.motions.track import add_track_parser


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ase_jax.motions", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_inspect_parser(subparsers)
    add_track_parser(subparsers)
    add_download_parser(subparsers)
    add_play_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
