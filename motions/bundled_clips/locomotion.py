"""The bundled clips that walk or step: `walk_forward`, `walk_backward` (a steady gait over whole
strides), `turn_left` and `sidestep_left` (steps from a stance, the pelvis over the feet)."""

from __future__ import annotations

import numpy as np

from ase_jax import quat
from authoring.foot_tracks import FootPlant
from authoring.keyframes import interpolate_keys
from authoring.rotations import euler_quat, yaw_quat

from .assembly import Builder, deg, frames
from .upper_body import READY, upper_pose


def _walk(b: Builder, name, seconds, speed, period, step_width=0.085, duty=0.6, bob=0.02,
          height=0.82, sway=0.025, yaw_amp=5.0, lean=4.0, toe_off=25.0, heel_strike=-12.0, swing=0.07,
          arm_swing=8.0):
    """A steady gait (constant speed along x; negative speed walks backwards), seamless over whole
    strides: the clip covers an integer number of periods and starts at left heel strike."""
    t = frames(seconds)
    n_periods = seconds / period
    if abs(n_periods - round(n_periods)) > 1e-6:
        raise ValueError(f"{name}: {seconds} s is not a whole number of {period} s strides")
    backwards = speed < 0
    t_mid = duty * period / 2  # mid-stance of a stance that starts at 0

    def plants(phase, y, yaw):
        out = []
        for k in range(-2, int(round(n_periods)) + 3):
            t0 = phase + k * period
            out.append(FootPlant(t0, t0 + duty * period, (speed * (t0 + t_mid) - 0.015, y), deg(yaw)))
        return out

    left = plants(0.0, step_width, 4.0)
    right = plants(period / 2, -step_width, -4.0)
    if backwards:  # toe lands first and the heel leaves last: no heel-strike / toe-off rolls
        toe_off, heel_strike = 0.0, 0.0
    feet = b.feet(t, right, left, swing_height=swing, toe_off_pitch=deg(toe_off),
                  heel_strike_pitch=deg(heel_strike))
    w = 2 * np.pi * (t - t_mid) / period  # 0 at left mid-stance
    pelvis = np.stack([speed * t, sway * np.cos(w), height + bob * np.cos(2 * w)], axis=-1)
    w_hs = 2 * np.pi * t / period  # 0 at left heel strike
    sign = -1.0 if backwards else 1.0
    pelvis_q = euler_quat(deg(-sign * yaw_amp * np.cos(w_hs)), deg(lean + 1.0 * np.cos(2 * w)),
                            deg(3.0 * np.cos(w)))
    upper = upper_pose(
        torso=(sign * 0.7 * yaw_amp * np.cos(w_hs), 2.0, -2.5 * np.cos(w)),
        head=(-0.2 * sign * yaw_amp * np.cos(w_hs), -4.0 - lean, 0.5 * np.cos(w)),
        sword=(15 + sign * arm_swing * np.cos(w_hs), 14, 10, 72 - 4 * np.cos(w_hs)),
        wrist=(0, 45, 0),
        shield=(35 - 0.4 * sign * arm_swing * np.cos(w_hs), 9, -70, 100))
    return b.assemble(name, t, pelvis, pelvis_q, upper, feet)


def walk_forward(b: Builder):
    return _walk(b, "walk_forward", seconds=4.2, speed=1.15, period=1.05)


def walk_backward(b: Builder):
    return _walk(b, "walk_backward", seconds=4.4, speed=-0.6, period=1.1, height=0.815, bob=0.008,
                 sway=0.02, yaw_amp=3.0, lean=6.0, swing=0.06, arm_swing=4.0)


def _stepping(b: Builder, name, t, steps, right0, left0, upper, height=0.80, dip=0.01, weight_shift=0.45,
              swing_center=None):
    """Steps from a stance. `right0` / `left0` = (flat foot origin xy, yaw in degrees) at the start;
    `steps` = [(foot, t_lift, t_land, xy, yaw_deg)]. The pelvis stays over the middle of the feet,
    shifts towards the standing foot during each swing (by `weight_shift` of the way), dips by
    `dip` and turns with the feet."""
    starts = {"right": [(-1e9, right0[0], right0[1])], "left": [(-1e9, left0[0], left0[1])]}
    lifts = {"right": [], "left": []}
    for foot, t_lift, t_land, xy, yaw in steps:
        lifts[foot].append(t_lift)
        starts[foot].append((t_land, xy, yaw))
    plants = {foot: [FootPlant(t0, (lifts[foot] + [1e9])[i], xy, deg(yaw))
                     for i, (t0, xy, yaw) in enumerate(starts[foot])] for foot in starts}
    feet = b.feet(t, plants["right"], plants["left"], swing_height=0.06, swing_center=swing_center)

    def placed(foot, time):
        p = [pl for pl in plants[foot] if pl.t0 <= time][-1]
        return np.asarray(p.xy), p.yaw

    def center(time):
        (r, ry), (l, ly) = placed("right", time), placed("left", time)
        yaw = np.arctan2(np.sin(ry) + np.sin(ly), np.cos(ry) + np.cos(ly))
        mid = 0.5 * (r + l) + quat.rotate(yaw_quat(yaw), np.array([0.015, 0.0, 0.0]))[:2]
        return mid, yaw

    keys = []  # (time, xy, yaw, z)
    mid, yaw = center(-1.0)
    keys.append((t[0], mid, yaw, height))
    last_land = -np.inf
    for foot, t_lift, t_land, _, _ in steps:
        other = "left" if foot == "right" else "right"
        mid0, yaw0 = center(t_lift - 1e-6)
        mid1, yaw1 = center(t_land + 1e-6)
        stance, _ = placed(other, t_lift)
        if t_lift - last_land >= 0.4:  # time to settle in the middle before this step
            keys.append((t_lift - 0.2, mid0, yaw0, height))
        keys.append((t_lift, mid0 + 0.7 * weight_shift * (stance - mid0), yaw0, height - 0.4 * dip))
        keys.append((0.5 * (t_lift + t_land), mid0 + weight_shift * (stance - mid0) + 0.3 * (mid1 - mid0),
                     0.5 * (yaw0 + yaw1), height - dip))
        keys.append((t_land, mid1 + 0.4 * weight_shift * (stance - mid1), yaw1, height - 0.6 * dip))
        last_land = t_land
    mid, yaw = center(t[-1])
    keys.append((min(last_land + 0.4, t[-1]), mid, yaw, height))
    if keys[-1][0] < t[-1]:
        keys.append((t[-1], mid, yaw, height))
    key_t = np.array([k[0] for k in keys])
    if np.any(np.diff(key_t) <= 0):
        raise ValueError(f"{name}: steps overlap or are too close together ({key_t.round(2).tolist()})")
    xy = interpolate_keys(key_t, np.array([k[1] for k in keys]), t)
    yaw = interpolate_keys(key_t, np.unwrap(np.array([k[2] for k in keys])), t)
    z = interpolate_keys(key_t, np.array([k[3] for k in keys]), t)
    pelvis = np.concatenate([xy, z[:, None]], axis=-1)
    return b.assemble(name, t, pelvis, euler_quat(yaw, deg(4.0), 0.0), upper, feet)


def turn_left(b: Builder):
    """A stepping turn on the spot, 180 degrees to the left in five steps, guard up."""
    t = frames(4.2)
    w = 0.125  # half the distance between the feet

    def at(psi, side):
        return tuple(quat.rotate(yaw_quat(deg(psi)), np.array([0.0, side * w, 0.0]))[:2])

    steps = [("left", 0.50, 0.95, at(50, 1), 50 + 5),
             ("right", 1.10, 1.55, at(95, -1), 95 - 5),
             ("left", 1.70, 2.15, at(145, 1), 145 + 5),
             ("right", 2.30, 2.75, at(180, -1), 180 - 5),
             ("left", 2.90, 3.30, at(180, 1), 180 + 5)]
    upper = upper_pose(**{**READY, "torso": (4, 8, 0), "head": (6, -6, 0)})
    return _stepping(b, "turn_left", t, steps, (at(0, -1), -5.0), (at(0, 1), 5.0), upper,
                     swing_center=(0.0, 0.0), height=0.82, weight_shift=0.35)


def sidestep_left(b: Builder):
    """Three guarded side steps to the left (left foot leads, right foot closes)."""
    t = frames(4.0)
    steps = []
    y_r, y_l = -0.1, 0.1
    t0 = 0.4
    for k in range(3):
        steps.append(("left", t0, t0 + 0.42, (0.0, y_l + 0.28), 5.0))
        y_l += 0.28
        steps.append(("right", t0 + 0.58, t0 + 0.98, (0.0, y_r + 0.28), -5.0))
        y_r += 0.28
        t0 += 1.1
    upper = upper_pose(**{**READY, "torso": (0, 8, 0), "head": (-2, -6, 0)})
    return _stepping(b, "sidestep_left", t, steps, ((0.0, -0.1), -5.0), ((0.0, 0.1), 5.0), upper,
                     height=0.795, weight_shift=0.5)
