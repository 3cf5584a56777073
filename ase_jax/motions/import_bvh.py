"""`python -m ase_jax.motions import FILE.bvh [...] --out=DIR`: BVH motion capture -> clips for a character.

Each file is read, its skeleton matched to the character by a joint map (built-in maps for our own
skeleton, CMU/mocapbank, LAFAN1 and Mixamo names are detected; `--map=FILE` for others), turned
Z-up and into metres, resampled to the clip rate (30 fps, as the bundled clips), retargeted by
inverse kinematics in the character's proportions and within its joint limits, and put on the floor
(docs/motions_import.md). Written into DIR: NAME.npy (the clip, the format `motions inspect`, `play`
and training read), NAME.report.json (the numbers printed for it) and dataset.yaml listing the clips
(equal weights unless --weights), ready for `python -m ase_jax.pretrain --motions=DIR/dataset.yaml`.

A clip whose mean key-body error is above --max_error_cm is flagged: its report is written, the clip
is not (unless --force). A file that cannot be imported (malformed or truncated BVH, no root
translation, NaNs, frame time 0, a skeleton no map fits) gets one error line and nothing written;
the others are still imported, and the command exits with status 1.

With --track each written clip is also simulated as `python -m ase_jax.motions track` does (C MuJoCo,
the env's PD drive, root driven along the clip; a few seconds per clip): one more line per clip and
a `track` entry in its report, saying how well the physical character can follow it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from ase_jax import cli
from ase_jax.character import CHARACTERS, Character, load_character
from ase_jax.errors import AseInputError, MotionFileError
from ase_jax.motions import bvh_maps, retarget
from ase_jax.motions.bvh import read_bvh
from ase_jax.motions.clip_from_qpos import qpos_to_clip
from ase_jax.motions.convert import convert_clip
from ase_jax.motions.npy_format import save_clip
from ase_jax.motions.retarget_report import ClipReport, measure

CLIP_FPS = 30.0  # the rate of the bundled clips and of the Reallusion set
MAX_MEAN_ERROR_CM = 5.0


@dataclasses.dataclass(frozen=True)
class ImportOptions:
    character: str = "sword_shield"
    map: str | None = None  # a map file or built-in map name; None: detect
    up: str | None = None  # "+y", "z", ...; None: detect
    scale: float | None = None  # metres per file unit; None: detect
    fps: float = CLIP_FPS
    max_error_cm: float = MAX_MEAN_ERROR_CM


def retarget_file(path, character: Character, options: ImportOptions):
    """(clip, report) of one BVH file; a MotionFileError for bad input. Writes nothing."""
    start = time.perf_counter()
    motion = read_bvh(path)
    joint_map = bvh_maps.resolve_map(options.map, motion.joint_names, path)
    targets, orientations, info = retarget.source_targets(motion, joint_map, character, options.fps,
                                                          up=options.up, unit_scale=options.scale)
    if targets["pelvis"].shape[0] < 2:
        raise MotionFileError(path, f"the clip is shorter than one frame at {options.fps:g} fps")
    try:
        import mink
    except ImportError:
        raise AseInputError("retargeting needs mink: pip install -e '.[bvh]'") from None
    try:
        result = retarget.solve(character, targets, orientations)
    except mink.MinkError as e:
        raise MotionFileError(path, f"inverse kinematics failed ({type(e).__name__}: {' '.join(str(e).split())})") from None
    qpos = retarget.ground(character, result.qpos)
    if not np.all(np.isfinite(qpos)):
        raise MotionFileError(path, "retargeting gave non-finite joint angles")
    clip = qpos_to_clip(character, qpos, options.fps, path=str(path))
    convert_clip(clip, character)  # the motion library's conversion must accept it
    report = measure(character, qpos, options.fps, result.point_names, result.point_error,
                     source=str(path), clip=None, map=joint_map.name, up=info.up, unit_scale=info.unit_scale,
                     source_height_m=round(info.height_m, 4), proportion_scale=round(info.proportion_scale, 4),
                     source_fps=info.fps, import_seconds=0.0,
                     rest_pose_difference_deg=round(info.rest_pose_difference_deg, 2),
                     rotations_matched=info.rotations_matched)
    if report.mean_error_cm > options.max_error_cm:
        report.flagged = True
        report.flag_reasons.append(f"mean key-body error {report.mean_error_cm:.2f} cm > {options.max_error_cm:g} cm")
    report.import_seconds = round(time.perf_counter() - start, 3)
    return clip, report


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def write_dataset(path: Path, clip_files: list[str], weights: list[float]) -> None:
    total = sum(weights)
    doc = {"motions": [{"file": f, "weight": float(w / total)} for f, w in zip(clip_files, weights)]}
    header = "# Written by `python -m ase_jax.motions import`; paths are relative to this file.\n"
    _write_atomic(path, lambda p: p.write_text(header + yaml.safe_dump(doc, sort_keys=False)))


TRACK_FIELDS = ("joint_error_deg", "joint_error_p95_deg", "key_body_error_cm", "key_body_error_p95_cm",
                "saturated_share")


def track_summary(clip_path, character: Character) -> dict:
    """`motions track`'s figures of one written clip (C MuJoCo, the env's PD drive and limits)."""
    from ase_jax.motions.track import track_dataset

    _, _, total = track_dataset(clip_path, character)
    return {f: round(float(getattr(total, f)), 4) for f in TRACK_FIELDS}


def track_line(path, track: dict) -> str:
    return (f"{path}: tracked by the simulated character: joint error {track['joint_error_deg']:.1f} deg (p95 "
            f"{track['joint_error_p95_deg']:.1f}), key-body error {track['key_body_error_cm']:.1f} cm (p95 "
            f"{track['key_body_error_p95_cm']:.1f}), a drive at its torque limit on "
            f"{100 * track['saturated_share']:.0f}% of physics steps")


def import_files(files, out_dir, options: ImportOptions, weights=None, force: bool = False, echo=print,
                 error=None, track: bool = False) -> tuple[list[ClipReport], int]:
    """Imports every file into out_dir; returns (reports of the files that got one, number of
    files that failed or were flagged and not written). track: also simulate each written clip
    (`track_summary`) into its report."""
    error = error or (lambda message: cli.error(message))
    character = load_character(options.character)
    if weights is not None and len(weights) != len(files):
        raise AseInputError(f"--weights lists {len(weights)} values for {len(files)} files")
    out_dir = Path(out_dir)
    reports, written, written_weights, failed, names = [], [], [], 0, set()
    for k, file in enumerate(files):
        name = Path(file).stem
        try:
            if name in names:
                raise MotionFileError(file, f"another file of this import is also named '{name}'; rename one")
            names.add(name)
            clip, report = retarget_file(file, character, options)
        except AseInputError as e:
            error(str(e))
            failed += 1
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        clip_path = out_dir / f"{name}.npy"
        if report.flagged and not force:
            failed += 1
            echo(f"{file}: FLAGGED, not written ({'; '.join(report.flag_reasons)}; --force writes it): "
                 f"{report.summary()}")
        else:
            report.clip = str(clip_path)
            _write_atomic(clip_path, lambda p: save_clip(p, clip))
            written.append(clip_path.name)
            written_weights.append(1.0 if weights is None else float(weights[k]))
            echo(f"{file} -> {clip_path}{' (flagged, written with --force)' if report.flagged else ''}: "
                 f"{report.summary()}")
            if track:
                report.track = track_summary(clip_path, character)
                echo(track_line(clip_path, report.track))
        report_path = out_dir / f"{name}.report.json"
        _write_atomic(report_path, lambda p: p.write_text(json.dumps(dataclasses.asdict(report), indent=1) + "\n"))
        reports.append(report)
    if written:
        if sum(written_weights) <= 0:
            raise AseInputError("--weights: the written clips' weights are all 0")
        write_dataset(out_dir / "dataset.yaml", written, written_weights)
        echo(f"wrote {out_dir / 'dataset.yaml'} ({len(written)} clips): "
             f"python -m ase_jax.pretrain --motions={out_dir / 'dataset.yaml'}")
    return reports, failed


def _weights(text: str) -> tuple[float, ...]:
    import argparse

    try:
        values = tuple(float(v) for v in str(text).strip("[]").split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(not np.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative numbers such as 1,2,1, got {text!r}")
    return values


def _up(text: str) -> str:
    import argparse

    value = str(text).strip().lower()
    if value in ("y", "z", "x"):
        value = "+" + value
    if value not in ("+y", "-y", "+z", "-z", "+x", "-x"):
        raise argparse.ArgumentTypeError(f"expected y or z (or +y, -z, ...), got {text!r}")
    return value


def run_import(args) -> int:
    options = ImportOptions(character=args.character, map=args.map, up=args.up, scale=args.scale, fps=args.fps,
                            max_error_cm=args.max_error_cm)
    if args.map is not None and args.map not in bvh_maps.BUILTIN_MAPS:
        bvh_maps.load_map(args.map)  # a bad map file is one error before any file is read
    reports, failed = import_files(args.files, args.out, options, weights=args.weights, force=args.force,
                                   track=args.track)
    if failed:
        print(f"{failed} of {len(args.files)} files not imported (see above)", file=sys.stderr)
        return 1
    return 0


def add_import_parser(subparsers) -> None:
    p = cli.add_subcommand(subparsers, "import", description=__doc__,
                           help="import BVH motion capture: retarget onto a character, write clips + dataset.yaml")
    p.add_argument("files", nargs="+", help="BVH files")
    p.add_argument("--out", required=True, help="folder for the clips, their reports and dataset.yaml")
    p.add_argument("--character", default="sword_shield", choices=sorted(CHARACTERS),
                   help="character to retarget onto (default sword_shield)")
    p.add_argument("--map", default=None,
                   help=f"joint map: a YAML file or a built-in map {sorted(bvh_maps.BUILTIN_MAPS)} "
                        "(default: detected from the joint names)")
    p.add_argument("--up", type=_up, default=None, help="the file's up axis, y or z (default: from the rest pose)")
    p.add_argument("--scale", type=cli.positive_float, default=None,
                   help="metres per file unit, e.g. 0.01 for cm (default: from the skeleton's height)")
    p.add_argument("--fps", type=cli.positive_float, default=CLIP_FPS,
                   help=f"clip rate to resample to (default {CLIP_FPS:g}, the bundled clips' rate)")
    p.add_argument("--weights", type=_weights, default=None,
                   help="sampling weight per file, in the order given (default: equal)")
    p.add_argument("--max_error_cm", type=cli.positive_float, default=MAX_MEAN_ERROR_CM,
                   help=f"flag a clip whose mean key-body error is above this (default {MAX_MEAN_ERROR_CM:g})")
    p.add_argument("--force", action="store_true", help="write flagged clips too")
    p.add_argument("--track", action="store_true",
                   help="also simulate each written clip as `motions track` does (seconds per clip) and "
                        "report how well the physical character follows it")
    p.set_defaults(func=run_import)
