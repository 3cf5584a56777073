"""The bundled clips in the ready stance, both feet planted: `idle` (a seamless loop),
`sword_swing` and `shield_block`."""

from __future__ import annotations

import numpy as np

from authoring.foot_tracks import FootPlant
from authoring.keyframes import interpolate_keys
from authoring.rotations import euler_quat

from .assembly import Builder, deg, frames
from .upper_body import GUARD, keyed_pose, sword_arm


def stance_plants(right_xy=(-0.09, -0.115), right_yaw=-22.0, left_xy=(0.11, 0.105), left_yaw=6.0):
    """The ready stance: left foot ahead, right foot back and turned out (flat origins, degrees)."""
    return [FootPlant(0.0, 1e9, right_xy, deg(right_yaw))], [FootPlant(0.0, 1e9, left_xy, deg(left_yaw))]


STANCE_PELVIS = np.array([-0.04, 0.005, 0.805])  # pelvis over the ready stance (a PD-held pose stays up)
STANCE_YAW = -12.0  # degrees: the body turned a little to the right, shield side forward


def idle(b: Builder):
    """4 s seamless loop: breathing, a slow weight shift between the feet, guard held ready."""
    period = 4.0
    t = frames(period)
    w = 2 * np.pi * t / period
    breath = np.sin(2 * w)  # two breaths per loop
    shift = np.sin(w)  # one weight shift per loop: towards the back (right) foot and back
    pelvis = STANCE_PELVIS + np.stack([-0.02 * shift, -0.03 * shift, -0.012 * (1 - np.cos(w)) / 2
                                       - 0.004 * breath], axis=-1)
    pelvis_q = euler_quat(deg(STANCE_YAW - 4 * shift), deg(2 + 0.8 * breath), deg(-2 * shift))
    keys = [
        (0.0, dict(torso=(8, 7, 0), head=(-6, -6, 0))),
        (1.0, dict(torso=(11, 9, -2), head=(-4, -8, 3), sword=(17, 15, 12, 74), wrist=(0, 48, 0),
                   shield=(37, 9, -70, 102))),
        (2.0, dict(torso=(8, 7, 0), head=(-10, -5, 0))),
        (3.0, dict(torso=(5, 8, 2), head=(-3, -7, -3), sword=(13, 14, 8, 67), wrist=(0, 42, 0),
                   shield=(33, 8, -70, 98))),
    ]
    upper = keyed_pose(t, keys, loop_period=period)
    rp, lp = stance_plants()
    feet = b.feet(t, rp, lp)
    return b.assemble("idle", t, pelvis, pelvis_q, upper, feet)


def sword_swing(b: Builder):
    """From the guard: wind up high over the right shoulder, a diagonal forehand slash down and
    across to the left with the weight shifting onto the front foot, follow-through, recover."""
    t = frames(4.0)
    sword = [  # (t, hand position, blade direction, elbow pole) in the torso frame
        (0.0, *GUARD),
        (0.5, *GUARD),
        (0.85, (0.12, -0.33, 0.18), (0.0, -0.1, 1.0), (-0.1, -0.15, -0.98)),  # raising
        (1.15, (-0.02, -0.30, 0.48), (-0.60, -0.10, -0.80), (0.66, -0.38, 0.64)),  # wind-up, blade behind
        (1.30, (0.15, -0.28, 0.50), (-0.74, -0.21, -0.64), (0.77, 0.0, 0.64)),  # hand leads, blade trails
        (1.42, (0.40, -0.20, 0.30), (0.20, -0.20, 0.95), (0.94, 0.0, -0.34)),  # blade whips over
        (1.52, (0.40, -0.06, 0.08), (0.60, 0.40, 0.70), (0.50, 0.0, -0.87)),  # the cut
        (1.68, (0.26, 0.0, -0.11), (0.30, 0.90, 0.30), (0.25, -0.43, -0.87)),  # follow-through
        (2.1, (0.25, -0.01, -0.09), (0.35, 0.88, 0.30), (0.25, -0.43, -0.87)),
        (2.6, (0.30, -0.18, 0.02), (0.35, 0.20, 0.95), (0.07, -0.07, -0.26)),  # blade up, clear of the shield
        (3.2, *GUARD),
        (4.0, *GUARD),
    ]
    keys = [
        (0.0, {}),
        (0.5, {}),
        (1.15, dict(torso=(-25, -4, 6), head=(14, -6, 0), shield=(30, 20, -60, 95))),  # wind-up
        (1.30, dict(torso=(-20, 0, 6), head=(12, -6, 0), shield=(30, 20, -60, 95))),
        (1.52, dict(torso=(15, 16, -4), head=(-6, -10, 0), shield=(50, 45, -40, 95))),  # the cut
        (1.68, dict(torso=(30, 20, -6), head=(-14, -12, 0), shield=(65, 55, -25, 90))),  # follow-through
        (2.1, dict(torso=(28, 18, -4), head=(-12, -10, 0), shield=(62, 52, -28, 92))),
        (2.6, dict(torso=(14, 11, -2), head=(-8, -8, 0), shield=(55, 45, -35, 95))),
        (3.2, {}),
        (4.0, {}),
    ]
    upper = keyed_pose(t, keys)
    upper.update(sword_arm(b, t, sword))
    # Weight: back onto the right foot during the wind-up, forward onto the left foot in the cut.
    k_t = [0.0, 0.5, 1.15, 1.48, 1.7, 2.2, 3.3, 4.0]
    k_xy = np.array([[0, 0], [0, 0], [-0.05, -0.035], [0.03, 0.02], [0.06, 0.04], [0.05, 0.035],
                     [0, 0], [0, 0]], np.float64) + STANCE_PELVIS[:2]
    k_z = np.array([0, 0, 0.0, -0.025, -0.035, -0.03, 0, 0]) + STANCE_PELVIS[2]
    k_yaw = np.array([0, 0, -12, 10, 18, 14, 0, 0]) + STANCE_YAW
    xy = interpolate_keys(k_t, k_xy, t)
    z = interpolate_keys(k_t, k_z, t)
    yaw = interpolate_keys(k_t, k_yaw, t)
    pitch = interpolate_keys(k_t, np.array([2, 2, 0, 6, 8, 7, 2, 2]), t)
    pelvis = np.concatenate([xy, z[:, None]], axis=-1)
    rp, lp = stance_plants()
    return b.assemble("sword_swing", t, pelvis, euler_quat(deg(yaw), deg(pitch), 0.0), upper, b.feet(t, rp, lp))


def shield_block(b: Builder):
    """Raises the shield into a high block in front of the face with a slight crouch, holds it
    (bracing, small adjustments), then lowers back to the guard."""
    t = frames(4.5)
    block = dict(torso=(14, 12, 0), head=(-10, -4, 0), shield=(30, 0, -45, 80, -60),
                 sword=(20, 30, -10, 80), wrist=(0, 60, -20))  # sword cocked to the right
    keys = [
        (0.0, {}),
        (0.6, {}),
        (1.05, dict(block, shield=(30, 0, -45, 74, -68))),  # snaps up a little past the hold
        (1.3, block),
        (2.2, dict(block, torso=(16, 14, 1), shield=(31, 3, -47, 82, -56))),  # bracing
        (3.0, dict(block, shield=(30, 0, -45, 79, -62))),
        (3.6, {}),
        (4.5, {}),
    ]
    upper = keyed_pose(t, keys)
    k_t = [0.0, 0.6, 1.05, 1.3, 2.2, 3.0, 3.6, 4.5]
    k_dz = np.array([0, 0, -0.05, -0.055, -0.05, -0.055, 0, 0])
    k_dx = np.array([0, 0, -0.03, -0.05, -0.055, -0.05, 0, 0])  # sit back against the raised shield
    k_yaw = np.array([0, 0, -8, -6, -5, -6, 0, 0]) + STANCE_YAW
    dz = interpolate_keys(k_t, k_dz, t)
    dx = interpolate_keys(k_t, k_dx, t)
    yaw = interpolate_keys(k_t, k_yaw, t)
    pitch = interpolate_keys(k_t, np.array([2, 2, 6, 6, 5, 6, 2, 2]), t)
    pelvis = STANCE_PELVIS + np.stack([dx, np.zeros_like(dx), dz], axis=-1)
    rp, lp = stance_plants()
    return b.assemble("shield_block", t, pelvis, euler_quat(deg(yaw), deg(pitch), 0.0), upper, b.feet(t, rp, lp))
