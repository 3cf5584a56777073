"""Reading and writing ASE/poselib `SkeletonMotion` clips (`.npy`) with plain numpy.

A clip file is `np.save` of a dict (docs/reference.md §1.1). Tensors are stored as
`{'arr': ndarray, 'context': {'dtype': str}}`. Rotations are *local* and ordered (x, y, z, w);
index 0 is the root's global rotation. No poselib classes are needed to read it.
"""

from __future__ import annotations

import collections
import dataclasses
import pickle
import zipfile
from pathlib import Path

import numpy as np

from ase_jax.errors import MotionFileError

_REQUIRED_KEYS = ("rotation", "root_translation", "global_velocity", "global_angular_velocity",
                  "skeleton_tree", "fps")


@dataclasses.dataclass(frozen=True)
class Skeleton:
    node_names: tuple[str, ...]
    parent_indices: np.ndarray  # (B,) int, -1 for the root
    local_translation: np.ndarray  # (B, 3) offsets of each body in its parent's frame

    @property
    def num_bodies(self) -> int:
        return len(self.node_names)


@dataclasses.dataclass(frozen=True)
class RawClip:
    """The arrays of one clip file, as stored (float64, quaternions xyzw)."""

    path: str
    fps: float
    skeleton: Skeleton
    local_rotation: np.ndarray  # (T, B, 4) xyzw; [:, 0] is the root's global rotation
    root_translation: np.ndarray  # (T, 3)
    global_velocity: np.ndarray  # (T, B, 3) world linear velocity of each body
    global_angular_velocity: np.ndarray  # (T, B, 3) world angular velocity of each body

    @property
    def num_frames(self) -> int:
        return self.local_rotation.shape[0]

    @property
    def length(self) -> float:
        """Duration in seconds, (T - 1) / fps as the reference defines it."""
        return (self.num_frames - 1) / self.fps


def _tensor(d, key, path):
    value = d[key]
    if isinstance(value, dict) and "arr" in value:
        value = value["arr"]
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MotionFileError(path, f"'{key}' is not a numeric array ({e})") from None


def load_clip(path) -> RawClip:
    """Loads and validates one clip; raises MotionFileError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise MotionFileError(path, "file not found")
    try:
        obj = np.load(path, allow_pickle=True)
        if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
            obj = obj.item()
    except (ValueError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile,
            AttributeError, ModuleNotFoundError, ImportError) as e:
        raise MotionFileError(path, f"not a readable .npy motion clip (corrupt or truncated?): "
                                    f"{type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        raise MotionFileError(path, f"expected a pickled SkeletonMotion dict, got {type(obj).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in obj]
    if missing:
        raise MotionFileError(path, f"missing keys {missing} (is this an ASE/poselib SkeletonMotion?)")
    if not obj.get("is_local", True):
        raise MotionFileError(path, "rotations are global (is_local=False); expected local rotations")

    tree = obj["skeleton_tree"]
    try:
        names = tuple(str(n) for n in tree["node_names"])
        parents = _tensor(tree, "parent_indices", path).astype(np.int64)
        offsets = _tensor(tree, "local_translation", path)
    except (KeyError, TypeError) as e:
        raise MotionFileError(path, f"skeleton_tree is incomplete ({e})") from None
    num_bodies = len(names)
    if parents.shape != (num_bodies,) or offsets.shape != (num_bodies, 3):
        raise MotionFileError(path, f"skeleton_tree has {num_bodies} names but parent_indices "
                                    f"{parents.shape} and local_translation {offsets.shape}")

    fps = obj["fps"]
    try:
        fps = float(np.asarray(fps))
    except (TypeError, ValueError):
        raise MotionFileError(path, f"fps is not a number: {fps!r}") from None
    if not np.isfinite(fps) or fps <= 0:
        raise MotionFileError(path, f"fps must be a positive number, got {fps}")

    rot = _tensor(obj, "rotation", path)
    root = _tensor(obj, "root_translation", path)
    vel = _tensor(obj, "global_velocity", path)
    ang = _tensor(obj, "global_angular_velocity", path)
    if rot.ndim != 3 or rot.shape[1:] != (num_bodies, 4):
        raise MotionFileError(path, f"rotation has shape {rot.shape}, expected (T, {num_bodies}, 4)")
    num_frames = rot.shape[0]
    if num_frames < 2:
        raise MotionFileError(path, f"a clip needs at least 2 frames, this one has {num_frames}")
    for key, arr, shape in (("root_translation", root, (num_frames, 3)),
                            ("global_velocity", vel, (num_frames, num_bodies, 3)),
                            ("global_angular_velocity", ang, (num_frames, num_bodies, 3))):
        if arr.shape != shape:
            raise MotionFileError(path, f"{key} has shape {arr.shape}, expected {shape}")
    for key, arr in (("rotation", rot), ("root_translation", root), ("global_velocity", vel),
                     ("global_angular_velocity", ang), ("local_translation", offsets)):
        if not np.all(np.isfinite(arr)):
            raise MotionFileError(path, f"{key} contains NaN or infinite values")
    norm_err = np.abs(np.linalg.norm(rot, axis=-1) - 1.0).max()
    if norm_err > 1e-3:
        raise MotionFileError(path, f"rotations are not unit quaternions (max |norm - 1| = {norm_err:.3g})")
    return RawClip(str(path), fps, Skeleton(names, parents, offsets), rot / np.linalg.norm(rot, axis=-1, keepdims=True),
                   root, vel, ang)


def _wrap(arr: np.ndarray) -> dict:
    return {"arr": arr, "context": {"dtype": str(arr.dtype)}}


def save_clip(path, clip: RawClip) -> None:
    """Writes a clip in the poselib `SkeletonMotion` layout that `load_clip` (and ASE) read."""
    sk = clip.skeleton
    tree = collections.OrderedDict(
        node_names=list(sk.node_names),
        parent_indices=_wrap(np.asarray(sk.parent_indices, np.int64)),
        local_translation=_wrap(np.asarray(sk.local_translation, np.float32)),
    )
    obj = collections.OrderedDict(
        rotation=_wrap(np.asarray(clip.local_rotation, np.float64)),
        root_translation=_wrap(np.asarray(clip.root_translation, np.float64)),
        global_velocity=_wrap(np.asarray(clip.global_velocity, np.float64)),
        global_angular_velocity=_wrap(np.asarray(clip.global_angular_velocity, np.float64)),
        skeleton_tree=tree,
        is_local=True,
        fps=float(clip.fps),
    )
    obj["__name__"] = "SkeletonMotion"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.save(path, obj, allow_pickle=True)
