"""Which source skeleton joint drives which point of our characters (docs/motions_import.md).

Retargeting matches *points*: the origin of a character body (where its joint is) or a point fixed
on a body (`head_top`, the toes). A map names, for each point, the source joint at the same place:

    name: my_rig            # optional
    prefix: "rig:"          # optional, put in front of every joint name below
    points:
      pelvis: Hips
      torso: Spine
      ...
    same_frames: false      # optional; true: the source joints' axes are our bodies' (then their
                            # rotations are matched too, not only their positions)

Built-in maps cover our own skeleton (what `write_bvh` makes of a clip), CMU / mocapbank naming
(Hips, Chest, LeftHip, LeftKnee, ...), LAFAN1 (Hips, Spine, LeftUpLeg, LeftLeg, LeftFoot, ...) and
Mixamo (the LAFAN1 names, toes `LeftToeBase`); `detect_map` picks the one whose required joints a
file has (of several, the one matching most points).

A rig often puts a name prefix before every joint (`mixamorig:Hips`, `Bip01_Hips`): a map is matched
with each prefix that stands before its root joint's name in the file (so `--map=cmu` reads CMU
names with a `mixamorig:` prefix), or with the one `--prefix` gives.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import yaml

from ase_jax.errors import MotionFileError


@dataclasses.dataclass(frozen=True)
class Point:
    """A point of the character that a source joint drives."""

    name: str
    body: str  # the character body it is fixed to
    local: tuple[float, float, float]  # position in that body's frame
    parent: str | None  # the point its bone starts from (None: the root)
    required: bool = True


def _limb(side: str, hand_body: str):
    return (Point(f"{side}_upper_arm", f"{side}_upper_arm", (0, 0, 0), "torso"),
            Point(f"{side}_lower_arm", f"{side}_lower_arm", (0, 0, 0), f"{side}_upper_arm"),
            Point(f"{side}_hand", hand_body, (0, 0, 0), f"{side}_lower_arm"),
            Point(f"{side}_thigh", f"{side}_thigh", (0, 0, 0), "pelvis"),
            Point(f"{side}_shin", f"{side}_shin", (0, 0, 0), f"{side}_thigh"),
            Point(f"{side}_foot", f"{side}_foot", (0, 0, 0), f"{side}_shin"),
            Point(f"{side}_toe", f"{side}_foot", (0.12, 0.0, -0.045), f"{side}_foot", required=False))


def character_points() -> tuple[Point, ...]:
    """The points of our characters (both have these bodies; the hands are bodies of their own)."""
    return (Point("pelvis", "pelvis", (0, 0, 0), None),
            Point("torso", "torso", (0, 0, 0), "pelvis"),
            Point("head", "head", (0, 0, 0), "torso"),
            Point("head_top", "head", (0, 0, 0.175), "head", required=False),
            *_limb("right", "right_hand"), *_limb("left", "left_hand"))


def _sides(template: dict, left: str, right: str) -> dict:
    out = {}
    for point, joint in template.items():
        if point.startswith("SIDE_"):
            out[point.replace("SIDE_", "right_")] = joint.replace("SIDE", right)
            out[point.replace("SIDE_", "left_")] = joint.replace("SIDE", left)
        else:
            out[point] = joint
    return out


@dataclasses.dataclass(frozen=True)
class JointMap:
    name: str
    points: dict  # point name -> source joint name
    # The source joints' frames are the character bodies' frames (same rest pose and axes, up to
    # the up axis): their rotations become orientation targets too (our own skeleton's map).
    same_frames: bool = False
    prefix: str = ""  # what stands before every joint name in the file (found, `--prefix`, or the map file's)

    def with_prefix(self, prefix: str) -> "JointMap":
        """The map with `prefix` put before every joint name."""
        if not prefix:
            return self
        return dataclasses.replace(self, points={p: prefix + j for p, j in self.points.items()},
                                   prefix=prefix + self.prefix)

    def missing(self, joint_names) -> list[str]:
        """Source joints of required points that `joint_names` lacks ("point (joint)")."""
        have = set(joint_names)
        required = {p.name for p in character_points() if p.required}
        return [f"{p} ({j})" for p, j in self.points.items() if p in required and j not in have]


BUILTIN_MAPS: dict[str, JointMap] = {
    "ase": JointMap("ase", {p.name: p.body for p in character_points() if not p.name.endswith(("_top", "_toe"))},
                    same_frames=True),
    "cmu": JointMap("cmu", _sides({
        "pelvis": "Hips", "torso": "Chest", "head": "Neck", "head_top": "Head",
        "SIDE_upper_arm": "SIDEShoulder", "SIDE_lower_arm": "SIDEElbow", "SIDE_hand": "SIDEWrist",
        "SIDE_thigh": "SIDEHip", "SIDE_shin": "SIDEKnee", "SIDE_foot": "SIDEAnkle", "SIDE_toe": "SIDEToe",
    }, "Left", "Right")),
    "lafan1": JointMap("lafan1", _sides({
        "pelvis": "Hips", "torso": "Spine", "head": "Neck", "head_top": "Head",
        "SIDE_upper_arm": "SIDEArm", "SIDE_lower_arm": "SIDEForeArm", "SIDE_hand": "SIDEHand",
        "SIDE_thigh": "SIDEUpLeg", "SIDE_shin": "SIDELeg", "SIDE_foot": "SIDEFoot", "SIDE_toe": "SIDEToe",
    }, "Left", "Right")),
}
# Mixamo: LAFAN1's names with the toes at ToeBase; the rig's prefix (`mixamorig:`, `mixamorig1:`, ...)
# is found in the file like any other.
BUILTIN_MAPS["mixamo"] = JointMap("mixamo", {
    p: j if j not in ("LeftToe", "RightToe") else j + "Base" for p, j in BUILTIN_MAPS["lafan1"].points.items()})

SHOWN_NAMES = 3  # an error lists this many names of a longer list, then how many more


def name_list(names) -> str:
    """The first few names and how many more: one short line however long the list."""
    names = [str(n) for n in names]
    head = ", ".join(names[:SHOWN_NAMES])
    return head + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


def found_prefixes(joint_map: JointMap, joint_names) -> list[str]:
    """"" and every prefix that stands before the map's root joint name in `joint_names` (the
    rig's namespace, e.g. `mixamorig:` of `mixamorig:Hips`), shortest first."""
    root = joint_map.points["pelvis"]
    found = {n[: -len(root)] for n in joint_names if n != root and n.endswith(root)}
    return [""] + sorted(found, key=len)


def _fit(joint_map: JointMap, joint_names, prefix: str | None) -> tuple[JointMap | None, list[str]]:
    """(the map with the first prefix under which the file has all its required joints, or None;
    otherwise the fewest joints it lacks under any prefix tried)."""
    prefixes = [prefix] if prefix is not None else found_prefixes(joint_map, joint_names)
    fewest = None
    for p in prefixes:
        candidate = joint_map.with_prefix(p)
        missing = candidate.missing(joint_names)
        if not missing:
            return _restrict(candidate, joint_names), []
        fewest = missing if fewest is None or len(missing) < len(fewest) else fewest
    return None, fewest


def _restrict(joint_map: JointMap, joint_names) -> JointMap:
    """The map without optional points whose joints the file lacks."""
    have = set(joint_names)
    required = {p.name for p in character_points() if p.required}
    return dataclasses.replace(joint_map, points={p: j for p, j in joint_map.points.items() if p in required or j in have})


def detect_map(joint_names, path, prefix: str | None = None) -> JointMap:
    """The built-in map whose required joints all appear in `joint_names` (with a prefix found
    there, or `prefix`), of several the one matching most points; otherwise one short error naming
    what the closest built-in map lacks."""
    fits, closest = [], None
    for joint_map in BUILTIN_MAPS.values():
        fitted, missing = _fit(joint_map, joint_names, prefix)
        if fitted is not None:
            fits.append(fitted)
        elif closest is None or len(missing) < len(closest[1]):
            closest = (joint_map, missing)
    if fits:
        return max(fits, key=lambda m: len(m.points))  # max keeps the first of equals (BUILTIN_MAPS' order)
    joint_map, missing = closest
    with_prefix = f" with the prefix '{prefix}'" if prefix else ""
    raise MotionFileError(path, f"unknown skeleton: no built-in map fits{with_prefix} (closest: '{joint_map.name}', "
                                f"which lacks the required joints {name_list(missing)}); pass --map=FILE "
                                f"(docs/motions_import.md) or --prefix. The file's {len(joint_names)} joints: "
                                f"{name_list(joint_names)}")


def load_map(path) -> JointMap:
    """A map from a YAML file (see the module docstring), or a built-in map by name."""
    if str(path) in BUILTIN_MAPS:
        return BUILTIN_MAPS[str(path)]
    path = Path(path)
    if not path.is_file():
        raise MotionFileError(path, f"map file not found (built-in maps: {sorted(BUILTIN_MAPS)})")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise MotionFileError(path, f"not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("points"), dict):
        raise MotionFileError(path, "expected a 'points:' mapping of character point -> source joint name")
    known = {p.name for p in character_points()}
    unknown = sorted(set(map(str, doc["points"])) - known)
    if unknown:
        raise MotionFileError(path, f"unknown character points {unknown}; known: {sorted(known)}")
    prefix = str(doc.get("prefix", "") or "")
    points = {str(p): str(j) for p, j in doc["points"].items() if j is not None}
    missing = sorted({p.name for p in character_points() if p.required} - set(points))
    if missing:
        raise MotionFileError(path, f"the map lacks required points {missing}")
    same_frames = doc.get("same_frames", False)
    if not isinstance(same_frames, bool):
        raise MotionFileError(path, f"same_frames must be true or false, got {same_frames!r}")
    return JointMap(str(doc.get("name", path.stem)), points, same_frames).with_prefix(prefix)


def resolve_map(map_arg, joint_names, path, prefix: str | None = None) -> JointMap:
    """The map to use for a file: `--map` (checked against the file's joints, with a prefix found
    there or `prefix`) or the detected one."""
    if map_arg is None:
        return detect_map(joint_names, path, prefix)
    joint_map = load_map(map_arg)
    fitted, missing = _fit(joint_map, joint_names, prefix)
    if fitted is None:
        with_prefix = f" with the prefix '{prefix}'" if prefix else ""
        raise MotionFileError(path, f"the map '{joint_map.name}'{with_prefix} names joints this file lacks: "
                                    f"{name_list(missing)}; the file's {len(joint_names)} joints: "
                                    f"{name_list(joint_names)}")
    return fitted


def point_offsets(points, model) -> dict:
    """Rest-pose (qpos0) world positions of the points, for bone lengths: {name: (3,)}."""
    import mujoco

    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    out = {}
    for p in points:
        b = model.body(p.body).id
        out[p.name] = data.xpos[b] + data.xmat[b].reshape(3, 3) @ np.asarray(p.local, np.float64)
    return out
