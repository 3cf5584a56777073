"""Motion datasets: a single clip, or a YAML list of clips with sampling weights.

The YAML format is the reference's (`dataset_reallusion_sword_shield.yaml`):

    motions:
      - file: "RL_Avatar_Atk_2xCombo01_Motion.npy"
        weight: 0.00724638

Paths are relative to the YAML file. Weights are normalised to sum to 1 when loaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import yaml

from ase_jax.character import Character
from ase_jax.errors import MotionFileError
from ase_jax.motions.convert import ClipStates, convert_clip
from ase_jax.motions.npy_format import load_clip


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    path: Path
    weight: float


def read_dataset_entries(path) -> list[DatasetEntry]:
    """The clip files and raw weights a dataset names (a .npy is a dataset of one clip)."""
    path = Path(path)
    if not path.exists():
        raise MotionFileError(path, "file not found")
    if path.suffix == ".npy":
        return [DatasetEntry(path, 1.0)]
    if path.suffix not in (".yaml", ".yml"):
        raise MotionFileError(path, "expected a .npy clip or a .yaml dataset")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise MotionFileError(path, f"not valid YAML: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("motions"), list):
        raise MotionFileError(path, "expected a top-level 'motions:' list of {file, weight} entries")
    if not doc["motions"]:
        raise MotionFileError(path, "the dataset is empty ('motions:' lists no clips)")
    entries = []
    for i, item in enumerate(doc["motions"]):
        if not isinstance(item, dict) or "file" not in item:
            raise MotionFileError(path, f"entry {i} needs a 'file' key, got {item!r}")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not np.isfinite(weight):
            raise MotionFileError(path, f"entry {i} ({item['file']}): weight must be a number, got {weight!r}")
        if weight < 0:
            raise MotionFileError(path, f"entry {i} ({item['file']}): weight must be >= 0, got {weight}")
        clip_path = path.parent / str(item["file"])
        if not clip_path.is_file():
            raise MotionFileError(path, f"entry {i}: clip file {clip_path} not found")
        entries.append(DatasetEntry(clip_path, float(weight)))
    if sum(e.weight for e in entries) <= 0:
        raise MotionFileError(path, "all weights are 0; at least one clip needs a positive weight")
    return entries


@dataclasses.dataclass(frozen=True)
class MotionDataset:
    path: Path
    clips: tuple[ClipStates, ...]
    weights: np.ndarray  # (C,) normalised

    @property
    def total_seconds(self) -> float:
        return float(sum(c.length for c in self.clips))


def load_dataset(path, character: Character) -> MotionDataset:
    """Loads and converts every clip of a dataset for `character` (errors name the bad file)."""
    entries = read_dataset_entries(path)
    clips = tuple(convert_clip(load_clip(e.path), character) for e in entries)
    weights = np.array([e.weight for e in entries], np.float64)
    return MotionDataset(Path(path), clips, weights / weights.sum())
