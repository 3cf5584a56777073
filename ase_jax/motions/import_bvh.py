"""`python -m ase_jax.motions import FILE.bvh [...] --out=DIR`: BVH motion capture -> clips for a character.

Each file is read, its skeleton matched to the character by a joint map (built-in maps for our own
skeleton, CMU/mocapbank, LAFAN1 and Mixamo names are detected; `--map=FILE` for others), turned
Z-up and into metres, resampled to the clip rate (30 fps, as the bundled clips), retargeted by
inverse kinematics in the character's proportions and within its joint limits, and put on the floor
(docs/motions_import.md). Written into DIR: NAME.npy (the clip, the format `motions inspect`, `play`
and training read), NAME.report.json (the numbers printed for it) and dataset.yaml listing the clips
(equal weights unless --weights), ready for `python -m ase_jax.pretrain --motions=DIR/dataset.yaml`.

Each clip gets a verdict (docs/motions_import.md, "The verdict"): it is flagged when the retargeting
error is above --max_error_cm, when two of the character's bodies are in each other (the shield in
the torso, say) on most frames, or when the simulated character cannot follow it (each clip is
tracked as `python -m ase_jax.motions track` does: C MuJoCo, the env's PD drive, root driven along
the clip; a few seconds per clip, --no_track to skip). A flagged clip's report says the likely cause
and the flag to try (--avoid_self_collision, --character=amp_humanoid, stronger drives); its report
is written, the clip is not (unless --force). A file that cannot be imported (malformed or
truncated BVH, no root translation, NaNs, frame time 0, a skeleton no map fits) gets one error line
and nothing written; the others are still imported, and the command exits with status 1.

An existing DIR is added to: its dataset.yaml keeps its clips and gains the new ones. A clip of the
same name is refused unless --force, and a DIR whose clips are for another character is refused
(a dataset is for one character): import into another --out.
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
from ase_jax.motions import bvh_maps, retarget_floor, retarget_ik, retarget_source
from ase_jax.motions.bvh import read_bvh
from ase_jax.motions.clip_from_qpos import qpos_to_clip
from ase_jax.motions.convert import convert_clip
from ase_jax.motions.dataset import MotionDataset, read_dataset_entries
from ase_jax.motions.inspect import character_for_skeleton
from ase_jax.motions.npy_format import load_clip, save_clip
from ase_jax.motions.retarget_report import (MAX_TRACK_KEY_BODY_CM, MAX_TRACK_SATURATED_SHARE, ClipReport, judge,
                                             measure)

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
    prefix: str | None = None  # what stands before every joint name; None: found from the file
    avoid_self_collision: bool = False  # the IK keeps the character's parts apart
    track: bool = True  # simulate the clip for the verdict (`track_summary`)


def retarget_file(path, character: Character, options: ImportOptions):
    """(clip, report) of one BVH file, the report with its verdict (`judge`); a MotionFileError for
    bad input. Writes nothing."""
    start = time.perf_counter()
    motion = read_bvh(path)
    joint_map = bvh_maps.resolve_map(options.map, motion.joint_names, path, options.prefix)
    targets, orientations, info = retarget_source.source_targets(motion, joint_map, character, options.fps,
                                                                 up=options.up, unit_scale=options.scale)
    if targets["pelvis"].shape[0] < 2:
        raise MotionFileError(path, f"the clip is shorter than one frame at {options.fps:g} fps")
    try:
        import mink
    except ImportError:
        raise AseInputError("retargeting needs mink: pip install -e '.[bvh]'") from None
    try:
        result = retarget_ik.solve(character, targets, orientations,
                                   avoid_self_collision=options.avoid_self_collision)
    except mink.MinkError as e:
        raise MotionFileError(path, f"inverse kinematics failed ({type(e).__name__}: {' '.join(str(e).split())})") from None
    rest = retarget_floor.foot_rest_frames(targets, options.fps)
    qpos = retarget_floor.ground(character, result.qpos, rest, options.fps)
    if not np.all(np.isfinite(qpos)):
        raise MotionFileError(path, "retargeting gave non-finite joint angles")
    clip = qpos_to_clip(character, qpos, options.fps, path=str(path))
    states = convert_clip(clip, character)  # the motion library's conversion must accept it
    report = measure(character, qpos, options.fps, result.point_names, result.point_error,
                     source=str(path), clip=None, map=joint_map.name, up=info.up, unit_scale=info.unit_scale,
                     source_height_m=round(info.height_m, 4), proportion_scale=round(info.proportion_scale, 4),
                     source_fps=info.fps, import_seconds=0.0,
                     rest_pose_difference_deg=round(info.rest_pose_difference_deg, 2),
                     rotations_matched=info.rotations_matched, joint_prefix=joint_map.prefix)
    if options.track:
        report.track = track_summary(states, character)
    judge(report, options.max_error_cm)
    report.import_seconds = round(time.perf_counter() - start, 3)
    return clip, report


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def existing_dataset(out_dir: Path, character: Character) -> list[dict]:
    """The entries of DIR/dataset.yaml (as written there; [] when there is none), after checking that
    it reads as a dataset and that DIR holds no clip of another character. An AseInputError, before
    anything is written, otherwise."""
    path = out_dir / "dataset.yaml"
    entries, clips = [], {}
    if path.exists():
        clips = {e.path.resolve(): e.path for e in read_dataset_entries(path)}
        entries = yaml.safe_load(path.read_text())["motions"]
    if out_dir.is_dir():
        clips.update({p.resolve(): p for p in sorted(out_dir.glob("*.npy"))})
    for clip_path in clips.values():
        skeleton = load_clip(clip_path).skeleton  # a broken clip: its own error line
        try:
            other = character_for_skeleton(skeleton.node_names, clip_path).name
        except MotionFileError:
            other = "no registered character"
        if other != character.name:
            raise AseInputError(f"{out_dir}: holds clips for {other} ({Path(clip_path).name}), not {character.name}; "
                                f"a dataset is for one character: import into another --out")
    return entries


def _listed_name(entry: dict) -> str | None:
    """The clip file name a dataset entry names in the dataset's own folder (None: elsewhere)."""
    file = Path(str(entry["file"]))
    return file.name if file.parent == Path(".") else None


def write_dataset(path: Path, entries: list[dict], clip_files: list[str], weights: list[float]) -> tuple[int, int]:
    """DIR/dataset.yaml: the existing `entries` kept (in their order, at their relative weights) and
    `clip_files` added (one that is already listed keeps its place); a new clip's weight is its
    `weights` value times the existing entries' mean weight (1 without any), so equal weights stay
    equal. Returns (clips added, clips kept)."""
    entries = [dict(e) for e in entries]
    base = float(np.mean([e.get("weight", 1.0) for e in entries])) if entries else 1.0
    listed = {_listed_name(e): e for e in entries}
    added = 0
    for f, w in zip(clip_files, weights):
        if f in listed:
            listed[f]["weight"] = float(w) * base
        else:
            entries.append({"file": f, "weight": float(w) * base})
            added += 1
    total = sum(float(e.get("weight", 1.0)) for e in entries)
    if total <= 0:
        raise AseInputError("--weights: the written clips' weights are all 0")
    for e in entries:
        e["weight"] = float(e.get("weight", 1.0)) / total
    header = "# Written by `python -m ase_jax.motions import`; paths are relative to this file.\n"
    _write_atomic(path, lambda p: p.write_text(header + yaml.safe_dump({"motions": entries}, sort_keys=False)))
    return added, len(entries) - added


TRACK_FIELDS = ("joint_error_deg", "joint_error_p95_deg", "key_body_error_cm", "key_body_error_p95_cm",
                "saturated_share")


def track_summary(states, character: Character) -> dict:
    """`motions track`'s figures of one clip (C MuJoCo, the env's PD drive and limits), from its
    converted states (`convert_clip`) or a written .npy. Where they pass the verdict's thresholds,
    `without_self_collision` adds the figures with the body parts passing through each other: what
    tells collisions (then good) from drives (still bad) as the cause."""
    from ase_jax.motions.track import track_dataset, track_motions

    if isinstance(states, (str, Path)):
        _, _, total = track_dataset(states, character)
        return {f: round(float(getattr(total, f)), 4) for f in TRACK_FIELDS}
    dataset = MotionDataset(Path(states.path), (states,), np.ones(1))
    _, total = track_motions(dataset, character)
    out = {f: round(float(getattr(total, f)), 4) for f in TRACK_FIELDS}
    if out["key_body_error_cm"] > MAX_TRACK_KEY_BODY_CM or out["saturated_share"] > MAX_TRACK_SATURATED_SHARE:
        _, free = track_motions(dataset, character, self_collision=False)
        out["without_self_collision"] = {f: round(float(getattr(free, f)), 4) for f in TRACK_FIELDS}
    return out


def track_line(path, track: dict) -> str:
    return (f"{path}: tracked by the simulated character: joint error {track['joint_error_deg']:.1f} deg (p95 "
            f"{track['joint_error_p95_deg']:.1f}), key-body error {track['key_body_error_cm']:.1f} cm (p95 "
            f"{track['key_body_error_p95_cm']:.1f}), a drive at its torque limit on "
            f"{100 * track['saturated_share']:.0f}% of physics steps")


def _flagged_lines(file, report: ClipReport, written: bool) -> list[str]:
    head = "FLAGGED, written with --force" if written else "FLAGGED, not written"
    lines = [f"{file}: {head}: {'; '.join(report.flag_reasons)}"]
    lines += [f"  likely cause: {a}" for a in report.advice]
    if not written:
        lines.append("  --force writes it as it is")
    return lines


def import_files(files, out_dir, options: ImportOptions, weights=None, force: bool = False, echo=print,
                 error=None) -> tuple[list[ClipReport], int]:
    """Imports every file into out_dir (added to its dataset.yaml); returns (reports of the files
    that got one, number of files that failed, were refused or were flagged and not written)."""
    error = error or (lambda message: cli.error(message))
    character = load_character(options.character)
    if weights is not None and len(weights) != len(files):
        raise AseInputError(f"--weights lists {len(weights)} values for {len(files)} files")
    out_dir = Path(out_dir)
    entries = existing_dataset(out_dir, character)
    listed = {_listed_name(e) for e in entries}
    reports, written, written_weights, failed, names = [], [], [], 0, set()
    for k, file in enumerate(files):
        name = Path(file).stem
        try:
            if name in names:
                raise MotionFileError(file, f"another file of this import is also named '{name}'; rename one")
            names.add(name)
            if not force and ((out_dir / f"{name}.npy").exists() or f"{name}.npy" in listed):
                raise MotionFileError(file, f"{out_dir / (name + '.npy')} is there already (an earlier import); "
                                            f"--force replaces it, or rename the file")
            clip, report = retarget_file(file, character, options)
        except AseInputError as e:
            error(str(e))
            failed += 1
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        clip_path = out_dir / f"{name}.npy"
        if report.flagged and not force:
            failed += 1
            for line in _flagged_lines(file, report, written=False):
                echo(line)
            echo(f"  {report.summary()}")
        else:
            report.clip = str(clip_path)
            _write_atomic(clip_path, lambda p: save_clip(p, clip))
            written.append(clip_path.name)
            written_weights.append(1.0 if weights is None else float(weights[k]))
            if report.flagged:
                for line in _flagged_lines(file, report, written=True):
                    echo(line)
            echo(f"{file} -> {clip_path}: {report.summary()}")
        if report.track is not None:
            echo(track_line(file, report.track))
        report_path = out_dir / f"{name}.report.json"
        _write_atomic(report_path, lambda p: p.write_text(json.dumps(dataclasses.asdict(report), indent=1) + "\n"))
        reports.append(report)
    if written:
        added, kept = write_dataset(out_dir / "dataset.yaml", entries, written, written_weights)
        echo(f"wrote {out_dir / 'dataset.yaml'} ({added} clip{'s' if added != 1 else ''} added, {kept} kept): "
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
                            max_error_cm=args.max_error_cm, prefix=args.prefix,
                            avoid_self_collision=args.avoid_self_collision, track=args.track)
    if args.map is not None and args.map not in bvh_maps.BUILTIN_MAPS:
        bvh_maps.load_map(args.map)  # a bad map file is one error before any file is read
    reports, failed = import_files(args.files, args.out, options, weights=args.weights, force=args.force)
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
    p.add_argument("--prefix", default=None,
                   help="what stands before every joint name in the file, e.g. 'mixamorig:' (default: found "
                        "before the map's root joint name)")
    p.add_argument("--avoid_self_collision", action="store_true",
                   help="keep the character's own parts apart in the IK (the shield out of the torso, ...); "
                        "slower, and the points they keep away are off their targets")
    p.add_argument("--force", action="store_true",
                   help="write flagged clips too, and replace clips of the same name in --out")
    p.add_argument("--track", dest="track", action="store_true", default=True,
                   help="simulate each clip as `motions track` does, for the verdict (the default)")
    p.add_argument("--no_track", dest="track", action="store_false",
                   help="skip the simulation (a few seconds per clip); the verdict is then without it")
    p.set_defaults(func=run_import)
