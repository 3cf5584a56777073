"""Generates the bundled default motion clips (`motions/bundled/`) from hand-written keyframes.

    python motions/make_bundled.py [--out DIR]

Needs scipy besides ase_jax (`pip install -e .[authoring]`, or `pip install scipy`); next to this
script are the keyframe and IK toolkit it is built from (`motions/authoring/`) and the clips
themselves, one function each (`motions/bundled_clips/`).

These clips are authored for this project (every number in them was written here, none is taken
from a motion-capture file), so the training pipeline works offline without the non-commercially
licensed Reallusion data. They are small, deterministic and physically plausible for the
sword-and-shield character in `humanoid_xml/sword_shield_humanoid.xml`:

* The legs are solved with inverse kinematics from explicit foot plants
  (`authoring.foot_tracks.foot_track`, `authoring.two_bone_ik.leg_ik`): a planted foot does not
  move at all, and its sole touches the floor (the lowest point of the foot box is at z = 0, or
  rolls about its toe / heel edge at push-off and landing). The pelvis moves smoothly over the
  feet; no flight phases.
* The upper body comes from keyframed joint poses (exp maps and hinge angles, interpolated with a
  monotone cubic, looping clips seamlessly), written with a small vocabulary of arm / spine angles
  (`bundled_clips.upper_body`).
* Stored velocities are computed as poselib did for the ASE data (`authoring.skeleton_clip.make_clip`).

Each clip is checked with MuJoCo kinematics (`authoring.clip_measures.measure_clip`) before it is
written; the script fails if a clip puts a geom below the floor, lets a standing foot slide, leaves
both feet off the floor, exceeds a joint range, or overlaps body parts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
# Run as a script or loaded by path (the tests): make ase_jax and the sibling packages (authoring,
# bundled_clips) importable.
for _path in (REPO_ROOT, HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402

from ase_jax.character import load_character  # noqa: E402
from ase_jax.motions.npy_format import save_clip  # noqa: E402
from authoring.clip_measures import ClipMeasures, measure_clip  # noqa: E402
from bundled_clips.assembly import Builder  # noqa: E402
from bundled_clips.locomotion import sidestep_left, turn_left, walk_backward, walk_forward  # noqa: E402
from bundled_clips.stance_clips import idle, shield_block, sword_swing  # noqa: E402

CHARACTER = "sword_shield"  # humanoid_xml/sword_shield_humanoid.xml
DEFAULT_OUT = REPO_ROOT / "motions" / "bundled"

# Clip name -> sampling weight in dataset.yaml (normalised to sum to 1 when written).
WEIGHTS = {
    "idle": 0.16,
    "walk_forward": 0.20,
    "walk_backward": 0.10,
    "sidestep_left": 0.08,
    "turn_left": 0.12,
    "sword_swing": 0.18,
    "shield_block": 0.16,
}

# Limits the generator enforces (the tests check the same quantities with their own code); the legs'
# reach is bundled_clips.assembly.MAX_LEG_EXTENSION.
MAX_FOOT_SLIDE = 0.005  # m a touching foot corner may travel
MIN_GEOM_Z = -0.002  # m
MAX_LOWER_FOOT_Z = 0.002  # m: in every frame the lower foot touches the floor
MAX_SELF_PENETRATION = 0.01  # m


CLIPS = {
    "idle": idle,
    "walk_forward": walk_forward,
    "walk_backward": walk_backward,
    "sidestep_left": sidestep_left,
    "turn_left": turn_left,
    "sword_swing": sword_swing,
    "shield_block": shield_block,
}


def check(name, m: ClipMeasures):
    problems = []
    if m.min_geom_z < MIN_GEOM_Z:
        problems.append(f"a geom reaches {m.min_geom_z * 100:.1f} cm below the floor")
    if m.lowest_non_foot_z < 0.02:
        problems.append(f"a non-foot geom comes within {m.lowest_non_foot_z * 100:.1f} cm of the floor")
    if m.max_lowest_foot_z > MAX_LOWER_FOOT_Z:
        problems.append(f"both feet off the floor (lower foot at {m.max_lowest_foot_z * 100:.1f} cm)")
    if m.max_foot_slide > MAX_FOOT_SLIDE:
        problems.append(f"a standing foot slides {m.max_foot_slide * 100:.1f} cm")
    if m.max_self_penetration > MAX_SELF_PENETRATION:
        problems.append(f"self-penetration {m.max_self_penetration * 100:.1f} cm ({m.self_penetration_pair})")
    if m.max_joint_limit_excess > 1e-6:
        problems.append(f"joint '{m.max_joint_limit_joint}' exceeds its range by {np.rad2deg(m.max_joint_limit_excess):.1f} deg")
    if problems:
        raise RuntimeError(f"clip '{name}' is not plausible: " + "; ".join(problems))


def main(out_dir=DEFAULT_OUT, verbose=True) -> dict:
    """Writes every clip and dataset.yaml into `out_dir`; returns {name: ClipMeasures}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    character = load_character(CHARACTER)
    builder = Builder(character.model)
    measures = {}
    for name, fn in CLIPS.items():
        clip = fn(builder)
        m = measure_clip(character, clip)
        check(name, m)
        measures[name] = m
        save_clip(out_dir / f"{name}.npy", clip)
        if verbose:
            print(f"{name:14s} {m.num_frames:4d} frames {m.seconds:5.2f} s  root speed {m.root_speed:5.2f} m/s  "
                  f"min geom z {m.min_geom_z * 100:+.2f} cm  foot slide {m.max_foot_slide * 1000:.2f} mm  "
                  f"self-pen {m.max_self_penetration * 1000:.1f} mm")
    total = sum(WEIGHTS[n] for n in CLIPS)
    lines = ["# Bundled default clips, authored from keyframes by motions/make_bundled.py",
             "# (regenerate with `python motions/make_bundled.py`). Weights sum to 1.",
             "motions:"]
    for n in CLIPS:
        lines += [f'  - file: "{n}.npy"', f"    weight: {WEIGHTS[n] / total:.8g}"]
    (out_dir / "dataset.yaml").write_text("\n".join(lines) + "\n")
    return measures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: motions/bundled)")
    args = parser.parse_args()
    main(args.out)
