"""Reading and writing BVH motion capture files as numpy arrays.

Reading uses `pybvh` (MIT, numpy only; `pip install -e .[bvh]`): it parses any rotation order per
joint and root channel blocks in any order (rotations before or after positions). What pybvh does not
model, it refuses with a message we pass on: a root without 3 translation channels, root translation
channels not in X, Y, Z order, and translation channels on non-root joints. `bvhio` was tried too:
it reads those, but loops forever on a truncated file (its line reader never sees the end of file).

Everything here stays in the file's own units and axes; `ase_jax.motions.retarget_source` converts.
Rotations are quaternions (w, x, y, z). A joint's local rotation is the product of its channels'
elementary rotations in the order the file lists them (`Zrotation Xrotation Yrotation` is
Rz Rx Ry), the BVH convention.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np

from ase_jax import quat
from ase_jax.errors import MotionFileError
from ase_jax.motions.kinematics import forward_kinematics

_AXES = {"X": np.array([1.0, 0.0, 0.0]), "Y": np.array([0.0, 1.0, 0.0]), "Z": np.array([0.0, 0.0, 1.0])}


@dataclasses.dataclass(frozen=True)
class BvhMotion:
    """One BVH file: the joint tree and its motion, in the file's units. End sites (the tips of the
    head, hands and toes) are not joints; only their rest positions are kept (`rest_extent`)."""

    path: str
    joint_names: tuple[str, ...]
    parent_indices: np.ndarray  # (J,) int, -1 for the root
    offsets: np.ndarray  # (J, 3) each joint's offset in its parent's frame
    root_translation: np.ndarray  # (T, 3)
    local_rotation: np.ndarray  # (T, J, 4) wxyz; [:, 0] is the root's rotation
    frame_time: float  # seconds
    end_site_parents: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))  # (E,)
    end_site_offsets: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3)))  # (E, 3)

    @property
    def num_frames(self) -> int:
        return self.root_translation.shape[0]

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def positions(self) -> np.ndarray:
        """Global joint positions (T, J, 3), in the file's units and axes."""
        _, pos = forward_kinematics(self.local_rotation, self.root_translation, self.parent_indices, self.offsets)
        return pos

    def rest_positions(self) -> np.ndarray:
        """Joint positions (J, 3) with every rotation at zero and the root at the origin."""
        rot = np.zeros((1, len(self.joint_names), 4))
        rot[..., 0] = 1.0
        _, pos = forward_kinematics(rot, np.zeros((1, 3)), self.parent_indices, self.offsets)
        return pos[0]

    def rest_extent(self) -> np.ndarray:
        """Rest positions (J + E, 3) of the joints and then the end sites (all rotations zero, so an
        end site is its parent joint plus its offset): the whole skeleton, head top and toe tips too."""
        joints = self.rest_positions()
        return np.concatenate([joints, joints[self.end_site_parents] + self.end_site_offsets])


def euler_to_quat(angles, order: str) -> np.ndarray:
    """Quaternions (..., 4) wxyz of Euler angles (..., 3) in radians, composed in `order`
    (e.g. "ZXY": Rz(angles[..., 0]) Rx(angles[..., 1]) Ry(angles[..., 2]))."""
    angles = np.asarray(angles, np.float64)
    q = np.zeros(angles.shape[:-1] + (4,))
    q[..., 0] = 1.0
    for k, axis in enumerate(order.upper()):
        q = quat.mul(q, quat.from_axis_angle(np.broadcast_to(_AXES[axis], angles.shape[:-1] + (3,)), angles[..., k]))
    return q


def quat_to_euler(q, order: str) -> np.ndarray:
    """Euler angles (..., 3) in radians, composed in `order` (three different axes), of
    quaternions (..., 4) wxyz: the inverse of `euler_to_quat`."""
    order = order.upper()
    i, j, k = ("XYZ".index(a) for a in order)
    if len({i, j, k}) != 3:
        raise ValueError(f"rotation order {order!r} must name three different axes")
    sign = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    w, x, y, z = (np.asarray(q, np.float64)[..., n] for n in range(4))
    m = np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)
    b = np.arcsin(np.clip(sign * m[..., i, k], -1.0, 1.0))
    a = np.arctan2(-sign * m[..., j, k], m[..., k, k])
    c = np.arctan2(-sign * m[..., i, j], m[..., i, i])
    return np.stack([a, b, c], axis=-1)


def _problem(error: Exception, path: Path) -> str:
    """pybvh's message without the file name (our error line names it once)."""
    text = " ".join(str(error).split())
    for name in (str(path), path.name):
        text = re.sub(rf"\s*(,\s*)?(in|from) (file )?{re.escape(name)}", "", text)
        text = text.replace(name, "the file")
    columns = re.match(r"the number of columns changed from (\d+) to (\d+) at row (\d+)", text)
    if columns:  # numpy's loadtxt, on the motion lines
        old, new, row = columns.groups()
        text = f"motion line {row} has {new} values instead of {old} (truncated or malformed)"
    elif "declares" in text and "data lines" in text:
        text += " (truncated?)"
    return text or type(error).__name__


def read_bvh(path) -> BvhMotion:
    """Reads and validates one BVH file; a MotionFileError naming the file and the problem otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MotionFileError(path, "file not found")
    if path.suffix.lower() != ".bvh":
        raise MotionFileError(path, "expected a .bvh file")
    try:
        import pybvh
    except ImportError:
        raise MotionFileError(path, "reading BVH needs pybvh: pip install -e '.[bvh]'") from None
    if path.suffix != ".bvh":  # pybvh insists on the lower-case suffix
        raise MotionFileError(path, "rename the file to end in .bvh (lower case)")
    try:
        text_head = path.read_bytes()[:64]
        if b"\x00" in text_head:
            raise MotionFileError(path, "not a text BVH file (binary data)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bvh = pybvh.read_bvh_file(path, world_up="+y", warn_on_world_up_disagreement=False)
    except MotionFileError:
        raise
    except Exception as e:  # noqa: BLE001 - the reader's errors are many types; each is bad input here
        raise MotionFileError(path, f"not a readable BVH file: {_problem(e, path)}") from None

    joints = [n for n in bvh.nodes if not n.is_end_site()]
    names = tuple(n.name for n in joints)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise MotionFileError(path, f"joint names appear more than once: {dup}")
    index = {id(n): i for i, n in enumerate(joints)}
    parents = np.array([-1 if n.parent is None else index[id(n.parent)] for n in joints], np.int64)
    offsets = np.array([n.offset for n in joints], np.float64)
    ends = [n for n in bvh.nodes if n.is_end_site() and n.parent is not None and id(n.parent) in index]
    end_parents = np.array([index[id(n.parent)] for n in ends], np.int64)
    end_offsets = np.array([n.offset for n in ends], np.float64).reshape(-1, 3)
    root = np.asarray(bvh.root_pos, np.float64)
    angles = np.asarray(bvh.joint_angles, np.float64)  # (T, J, 3) radians, in each joint's channel order
    frame_time = float(bvh.frame_time)
    if not np.isfinite(frame_time) or frame_time <= 0:
        raise MotionFileError(path, f"Frame Time must be a positive number of seconds, got {frame_time}")
    if root.shape[0] < 2:
        raise MotionFileError(path, f"a clip needs at least 2 frames, this one has {root.shape[0]}")
    for what, arr in (("offsets", np.concatenate([offsets, end_offsets])), ("root translation", root),
                      ("joint rotations", angles)):
        bad = ~np.isfinite(arr)
        if bad.any():
            where = f" (first at frame {int(np.argwhere(bad)[0][0])})" if arr.ndim > 1 and what != "offsets" else ""
            raise MotionFileError(path, f"NaN or infinite values in the {what}{where}")
    rotation = np.stack([euler_to_quat(angles[:, j], "".join(n.rot_channels)) for j, n in enumerate(joints)], axis=1)
    return BvhMotion(str(path), names, parents, offsets, root, rotation, frame_time, end_parents, end_offsets)


def write_bvh(path, joint_names, parent_indices, offsets, root_translation, local_rotation, fps: float,
              order: str = "ZXY", root_channels_first: str = "position", end_sites: dict | None = None) -> None:
    """Writes a BVH file: joints in the given order (parents first), local rotations (T, J, 4) wxyz
    as Euler angles in `order` (degrees), the root with X/Y/Z translation channels.
    `root_channels_first="rotation"` lists the root's rotation channels before its translation.
    end_sites: {leaf joint index: offset} of the End Sites (default: at their joint)."""
    end_sites = end_sites or {}
    parents = [int(p) for p in parent_indices]
    offsets = np.asarray(offsets, np.float64)
    angles = np.degrees(quat_to_euler(np.asarray(local_rotation, np.float64), order))  # (T, J, 3)
    root_translation = np.asarray(root_translation, np.float64)
    children = {j: [c for c, p in enumerate(parents) if p == j] for j in range(len(parents))}
    rot_ch = " ".join(f"{a}rotation" for a in order.upper())
    pos_ch = "Xposition Yposition Zposition"
    columns = []
    lines = ["HIERARCHY"]

    def emit(j, depth):
        pad = "  " * depth
        kind = "ROOT" if parents[j] < 0 else "JOINT"
        lines.append(f"{pad}{kind} {joint_names[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v:.6f}' for v in offsets[j])}")
        if parents[j] < 0:
            first_pos = root_channels_first == "position"
            lines.append(f"{pad}  CHANNELS 6 {pos_ch + ' ' + rot_ch if first_pos else rot_ch + ' ' + pos_ch}")
            columns.extend([root_translation, angles[:, j]] if first_pos else [angles[:, j], root_translation])
        else:
            lines.append(f"{pad}  CHANNELS 3 {rot_ch}")
            columns.append(angles[:, j])
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            end = np.asarray(end_sites.get(j, (0.0, 0.0, 0.0)), np.float64)
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {' '.join(f'{v:.6f}' for v in end)}",
                          f"{pad}  }}"])
        lines.append(f"{pad}}}")

    emit(parents.index(-1), 0)
    motion = np.concatenate(columns, axis=1)
    lines += ["MOTION", f"Frames: {motion.shape[0]}", f"Frame Time: {1.0 / fps:.10g}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in motion]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
