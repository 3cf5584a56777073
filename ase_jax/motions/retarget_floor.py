"""Step 4 of retargeting (docs/motions_import.md): the clip on the floor.

Where the source's feet rest (slow, at the height of the lowest foot nearby), the character's
resting foot is put on the floor, frame by frame; the shift is interpolated between rest frames,
smoothed, and raised wherever a part of the character would be below the floor. A clip whose feet
never rest is shifted as one piece, its lowest foot point on the floor.
"""

from __future__ import annotations

import numpy as np

from ase_jax.character import Character
from ase_jax.motions.geom_heights import foot_geoms, lowest_points

# A source foot rests on the floor at a frame where its slowest mapped point (ankle, toe) moves slower
# than REST_SPEED_M_S and its lowest one is within REST_HEIGHT_M of the lowest foot point within
# REST_WINDOW_S before or after; the floor shift between rest frames is smoothed over FLOOR_SMOOTHING_S.
REST_SPEED_M_S = 0.3
REST_HEIGHT_M = 0.05
REST_WINDOW_S = 0.5
FLOOR_SMOOTHING_S = 0.2


def _window_min(x: np.ndarray, half: int) -> np.ndarray:
    padded = np.pad(x, half, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).min(axis=-1)


def foot_rest_frames(targets: dict, fps: float) -> dict:
    """{"right_foot": (T,) bool, "left_foot": ...}: where the source's feet rest on the floor (module
    constants), from the targets (the source in the character's proportions): slow, and as low as
    the feet go nearby."""
    low, speed = [], []
    for side in ("right", "left"):
        points = [targets[f"{side}_foot"]] + ([targets[f"{side}_toe"]] if f"{side}_toe" in targets else [])
        low.append(np.min([p[:, 2] for p in points], axis=0))
        speed.append(np.min([np.linalg.norm(np.gradient(p, axis=0), axis=-1) * fps for p in points], axis=0))
    low, speed = np.stack(low, axis=1), np.stack(speed, axis=1)
    floor = _window_min(low.min(axis=1), max(1, int(round(REST_WINDOW_S * fps))))
    rest = (speed < REST_SPEED_M_S) & (low < floor[:, None] + REST_HEIGHT_M)
    return {"right_foot": rest[:, 0], "left_foot": rest[:, 1]}


def ground_shift(character: Character, qpos: np.ndarray, rest: dict | None, fps: float) -> np.ndarray:
    """(T,) vertical shift per frame that puts the resting feet (`rest`: `foot_rest_frames`) on the
    floor: at a rest frame the lowest resting foot touches it; between rest frames the shift is
    interpolated (held before the first and after the last), smoothed over FLOOR_SMOOTHING_S, and
    raised where any part of the character would be below the floor. Without rest frames: one shift,
    the clip's lowest foot point on the floor."""
    feet, lowest = lowest_points(character, qpos)
    rest = None if rest is None else np.stack([rest[name] for name in foot_geoms(character)], axis=1)
    if rest is None or not rest.any():
        return np.full(qpos.shape[0], -feet.min())
    frames = np.flatnonzero(rest.any(axis=1))
    at_rest = -np.where(rest[frames], feet[frames], np.inf).min(axis=1)
    shift = np.interp(np.arange(qpos.shape[0]), frames, at_rest)
    half = int(round(FLOOR_SMOOTHING_S * fps / 2))
    if half > 0:
        shift = np.convolve(np.pad(shift, half, mode="edge"), np.full(2 * half + 1, 1 / (2 * half + 1)), "valid")
    return np.maximum(shift, -lowest)


def ground(character: Character, qpos: np.ndarray, rest: dict | None = None, fps: float = 30.0) -> np.ndarray:
    """The clip shifted vertically by `ground_shift`: feet on the floor where the source's rest."""
    qpos = qpos.copy()
    qpos[:, 2] += ground_shift(character, qpos, rest, fps)
    return qpos
