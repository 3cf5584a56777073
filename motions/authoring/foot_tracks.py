"""Foot placements: where and when a foot is planted (`FootPlant`), and the world poses of a foot
body over time that follow (`foot_track`: flat stance, toe-off and heel-strike rolls, lifted
swing), with the sole exactly on the floor while the foot stands."""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from ase_jax import quat

from .keyframes import smoothstep
from .rotations import yaw_quat


def foot_box(model: mujoco.MjModel, foot_body: str):
    """(center, half_size) of the box geom of a foot body, in the foot frame (no geom rotation)."""
    bid = model.body(foot_body).id
    for g in range(model.ngeom):
        if model.geom_bodyid[g] == bid and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX:
            if not np.allclose(model.geom_quat[g], [1, 0, 0, 0]):
                raise ValueError(f"foot box of '{foot_body}' is rotated in its body; not supported")
            return np.array(model.geom_pos[g]), np.array(model.geom_size[g])
    raise ValueError(f"body '{foot_body}' has no box geom")


def foot_pose(model: mujoco.MjModel, foot_body: str, xy, yaw, pitch=0.0, lift=0.0):
    """World pose (pos (..., 3), quat (..., 4)) of a foot body from a ground placement.

    `xy` is where the foot *origin* would be if it stood flat (its sole on z = 0) with heading
    `yaw`. `pitch` > 0 raises the heel, rolling about the bottom front (toe) edge of the box;
    pitch < 0 raises the toes, rolling about the bottom back (heel) edge. `lift` then raises the
    whole foot, so the lowest point of the box is exactly at height `lift`.
    """
    center, half = foot_box(model, foot_body)
    xy = np.asarray(xy, np.float64)
    yaw, pitch, lift = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (yaw, pitch, lift)))
    sole = center[2] - half[2]  # z of the sole in the foot frame (negative)
    toe = center[0] + half[0]
    heel = center[0] - half[0]
    edge_x = np.where(pitch >= 0, toe, heel)
    q_yaw = yaw_quat(yaw)
    q = quat.mul(q_yaw, quat.from_axis_angle(np.broadcast_to([0.0, 1.0, 0.0], pitch.shape + (3,)), pitch))
    zeros = np.zeros_like(edge_x)
    flat_origin = np.concatenate([xy, (-sole + zeros)[..., None]], axis=-1)
    edge_local = np.stack([edge_x, zeros, sole + zeros], axis=-1)
    edge_world = flat_origin + quat.rotate(q_yaw, edge_local)  # on the floor
    pos = edge_world - quat.rotate(q, edge_local)
    pos[..., 2] += lift
    return pos, q


@dataclasses.dataclass(frozen=True)
class FootPlant:
    """A foot standing flat at `xy` (origin, as in `foot_pose`) with heading `yaw` from t0 to t1."""

    t0: float
    t1: float
    xy: tuple[float, float]
    yaw: float = 0.0


def foot_track(model, foot_body, plants: list[FootPlant], times, swing_height=0.08,
               toe_off_pitch=0.0, heel_strike_pitch=0.0, roll_time=0.12, swing_center=None):
    """World foot poses over `times` from a list of plants (stance phases) of one foot.

    Before the first plant and after the last the foot stands on them. Between two plants the foot
    swings: the flat placement moves with a quintic ease (no horizontal motion near the floor), the
    lowest point rises to `swing_height` on a sine arc, and the heading eases to the next plant's.
    With `toe_off_pitch` > 0 the heel rises during the last `roll_time` of a stance that ends in a
    swing (rolling about the fixed toe edge); with `heel_strike_pitch` < 0 the foot lands heel first
    and rolls flat during the first `roll_time` of the next stance (about the fixed heel edge).
    With `swing_center` (x, y) the swing moves on an arc about that point (angle and radius eased)
    instead of a straight line, e.g. around the other foot in a turn on the spot.
    Returns (pos (T, 3), quat (T, 4)) and a contact mask (T,) of frames where the foot stands.
    """
    t = np.asarray(times, np.float64)
    xy = np.zeros((len(t), 2))
    yaw = np.zeros(len(t))
    pitch = np.zeros(len(t))
    lift = np.zeros(len(t))
    contact = np.zeros(len(t), bool)
    for i, p in enumerate(plants):
        lo = -np.inf if i == 0 else p.t0
        hi = np.inf if i == len(plants) - 1 else p.t1
        m = (t >= lo) & (t <= hi)
        xy[m] = p.xy
        yaw[m] = p.yaw
        contact[m] = True
        if i > 0 and heel_strike_pitch:
            r = m & (t < p.t0 + roll_time)
            pitch[r] = heel_strike_pitch * (1.0 - smoothstep((t[r] - p.t0) / roll_time))
        if i < len(plants) - 1 and toe_off_pitch:
            r = m & (t > p.t1 - roll_time)
            pitch[r] = toe_off_pitch * smoothstep((t[r] - (p.t1 - roll_time)) / roll_time)
    for a, b in zip(plants[:-1], plants[1:]):
        if b.t0 <= a.t1:
            raise ValueError(f"plants overlap in time: {a} then {b}")
        m = (t > a.t1) & (t < b.t0)
        tau = (t[m] - a.t1) / (b.t0 - a.t1)
        s = smoothstep(tau)
        if swing_center is None:
            xy[m] = np.asarray(a.xy) + s[:, None] * (np.asarray(b.xy) - np.asarray(a.xy))
        else:
            c = np.asarray(swing_center, np.float64)
            ra, rb = np.asarray(a.xy) - c, np.asarray(b.xy) - c
            ang_a, ang_b = np.arctan2(ra[1], ra[0]), np.arctan2(rb[1], rb[0])
            ang_b = ang_a + (ang_b - ang_a + np.pi) % (2 * np.pi) - np.pi
            ang = ang_a + s * (ang_b - ang_a)
            rad = np.linalg.norm(ra) + s * (np.linalg.norm(rb) - np.linalg.norm(ra))
            xy[m] = c + rad[:, None] * np.stack([np.cos(ang), np.sin(ang)], axis=-1)
        yaw[m] = a.yaw + s * (b.yaw - a.yaw)
        pitch[m] = toe_off_pitch + smoothstep(tau * 1.6 - 0.3) * (heel_strike_pitch - toe_off_pitch) \
            if (toe_off_pitch or heel_strike_pitch) else 0.0
        lift[m] = swing_height * np.sin(np.pi * tau)
    pos, q = foot_pose(model, foot_body, xy, yaw, pitch, lift)
    return pos, q, contact
