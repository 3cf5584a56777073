"""The BVH import figures of BENCHMARKS.md ("BVH import"): time per second of motion and retargeting
errors, on BVH files made from the bundled clips (tests/test_bvh_import.py's round trip and its
other skeleton: other names, longer legs, shorter arms, cm, Y up, 60 fps).

    python tools/bvh_import_figures.py [--out=/tmp/bvh_figures] [--track]

--track adds `motions track`'s figures of each imported clip (C MuJoCo, a few seconds per clip) and
of the original bundled clip beside it: how well the physical character follows the import.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from ase_jax import quat  # noqa: E402
from ase_jax.character import load_character  # noqa: E402
from ase_jax.motions.bvh import write_bvh  # noqa: E402
from ase_jax.motions.convert import convert_clip  # noqa: E402
from ase_jax.motions.import_bvh import ImportOptions, import_files, track_summary  # noqa: E402
from ase_jax.motions.npy_format import load_clip  # noqa: E402
from test_bvh_import import _key_body_error_cm, _other_skeleton_bvh  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="/tmp/bvh_figures")
    parser.add_argument("--track", action="store_true", help="also simulate the imported and original clips")
    args = parser.parse_args()
    out = Path(args.out)
    char = load_character("sword_shield")
    rows = []
    for clip_path in sorted((ROOT / "motions" / "bundled").glob("*.npy")):
        clip = load_clip(clip_path)
        sk = clip.skeleton
        bvh = out / "src" / f"{clip_path.stem}.bvh"
        bvh.parent.mkdir(parents=True, exist_ok=True)
        write_bvh(bvh, sk.node_names, sk.parent_indices, sk.local_translation, clip.root_translation,
                  quat.from_xyzw(clip.local_rotation), clip.fps)
        rows.append((bvh, clip, None))
    other, points = _other_skeleton_bvh(out / "src" / "other_skeleton.bvh", char, frames=127)
    map_file = out / "src" / "other_map.yaml"
    map_file.write_text(yaml.safe_dump({"name": "other", "points": points}))
    rows.append((out / "src" / "other_skeleton.bvh", other, str(map_file)))

    print(f"{'clip':18s} {'seconds':>7s} {'import s':>8s} {'s/s':>5s} {'mean err cm':>11s} {'max err cm':>10s} "
          f"{'key bodies vs original cm':>25s} {'limit frames':>12s} {'skate cm/s':>10s} {'self-pen frames':>15s}")
    results = []
    for bvh, clip, map_file in rows:
        start = time.perf_counter()
        (report,), _ = import_files([bvh], out / "clips", ImportOptions(map=map_file, track=False), force=True,
                                   echo=lambda s: None)
        seconds = time.perf_counter() - start
        if args.track:
            report.track = track_summary(out / "clips" / f"{bvh.stem}.npy", char)
            original_npy = ROOT / "motions" / "bundled" / f"{bvh.stem}.npy"
            original_track = track_summary(original_npy if original_npy.is_file() else
                                           ROOT / "motions" / "bundled" / "walk_forward.npy", char)
        imported = convert_clip(load_clip(out / "clips" / f"{bvh.stem}.npy"), char).qpos
        original = convert_clip(clip, char).qpos[:imported.shape[0]]
        key = _key_body_error_cm(char, original, imported)
        skate = max(v["mean"] or 0.0 for v in report.foot_skating_cm_s.values())  # None: never on the floor
        print(f"{bvh.stem:18s} {report.seconds:7.2f} {seconds:8.2f} {seconds / report.seconds:5.2f} "
              f"{report.mean_error_cm:11.3f} {report.max_error_cm:10.3f} {key:25.2f} {report.joint_limit_frames:12d} "
              f"{skate:10.2f} {report.self_penetration_frames:15d}")
        results.append({"clip": bvh.stem, "seconds": report.seconds, "import_seconds": seconds,
                        "mean_error_cm": report.mean_error_cm, "max_error_cm": report.max_error_cm,
                        "key_bodies_vs_original_cm": key, "joint_limit_frames": report.joint_limit_frames,
                        "foot_skating_cm_s": skate, "self_penetration_frames": report.self_penetration_frames})
        if args.track:
            results[-1].update(track=report.track, original_track=original_track)
            print(f"{'':18s} tracked: joint err {report.track['joint_error_deg']:.2f} deg (p95 "
                  f"{report.track['joint_error_p95_deg']:.2f}), key-body err {report.track['key_body_error_cm']:.2f} cm "
                  f"(p95 {report.track['key_body_error_p95_cm']:.2f}), at torque limit "
                  f"{100 * report.track['saturated_share']:.1f}%; original clip: {original_track['joint_error_deg']:.2f} "
                  f"deg, {original_track['key_body_error_cm']:.2f} cm, {100 * original_track['saturated_share']:.1f}%")
    total = sum(r["seconds"] for r in results)
    print(f"total: {total:.1f} s of motion imported in {sum(r['import_seconds'] for r in results):.1f} s "
          f"({sum(r['import_seconds'] for r in results) / total:.2f} s per second of motion)")
    (out / "figures.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
