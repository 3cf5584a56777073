"""Generates the bundled default motion clips (`motions/bundled/`) from hand-written keyframes.

    python motions/make_bundled.py [--out DIR]

Needs scipy besides ase_jax (`pip install -e .[authoring]`, or `pip install scipy`); the keyframe and
IK toolkit it is built from is `motions/authoring/`, next to this script.

These clips are authored for this project (every number below was written here, none is taken
from a motion-capture file), so the training pipeline works offline without the non-commercially
licensed Reallusion data. They are small, deterministic and physically plausible for the
sword-and-shield character in `humanoid_xml/sword_shield_humanoid.xml`:

* The legs are solved with inverse kinematics from explicit foot plants (`authoring.foot_track`,
  `authoring.leg_ik`): a planted foot does not move at all, and its sole touches the floor (the
  lowest point of the foot box is at z = 0, or rolls about its toe / heel edge at push-off and
  landing). The pelvis moves smoothly over the feet; no flight phases.
* The upper body comes from keyframed joint poses (exp maps and hinge angles, interpolated with a
  monotone cubic, looping clips seamlessly), written with a small vocabulary of arm / spine angles.
* Stored velocities are computed as poselib did for the ASE data (`authoring.make_clip`).

Each clip is checked with MuJoCo kinematics (`authoring.measure_clip`) before it is written; the
script fails if a clip puts a geom below the floor, lets a standing foot slide, leaves both feet off
the floor, exceeds a joint range, or overlaps body parts.

Conventions: x forward, y left, z up; angles in degrees in the keyframes. Arm angles: `flex` raises
the arm forward, `abduct` raises it sideways, `twist` turns it about its own axis (positive turns
the front of the arm towards the body's left), `elbow` bends the forearm (0 straight, 150 fully bent).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
# Run as a script or loaded by path (the tests): make ase_jax and the sibling authoring/ importable.
for _path in (REPO_ROOT, HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from ase_jax import quat  # noqa: E402
from ase_jax.character import load_character  # noqa: E402
from ase_jax.motions.npy_format import save_clip  # noqa: E402
from authoring.clip_measures import ClipMeasures, measure_clip  # noqa: E402
from authoring.foot_tracks import FootPlant, foot_track  # noqa: E402
from authoring.keyframes import interpolate_keys, pose_to_local_rotation  # noqa: E402
from authoring.rotations import continuous_sign, euler_quat, exp_map, yaw_quat  # noqa: E402
from authoring.skeleton_clip import make_clip, skeleton_from_mjcf  # noqa: E402
from authoring.two_bone_ik import leg_ik, limb_ik  # noqa: E402

FPS = 30
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

# Limits the generator enforces (the tests check the same quantities with their own code).
MAX_FOOT_SLIDE = 0.005  # m a touching foot corner may travel
MIN_GEOM_Z = -0.002  # m
MAX_LOWER_FOOT_Z = 0.002  # m: in every frame the lower foot touches the floor
MAX_SELF_PENETRATION = 0.01  # m
MAX_LEG_EXTENSION = 0.995  # hip-ankle distance / straight-leg length while a foot is planted


def deg(x):
    return np.deg2rad(x)


def frames(seconds: float) -> np.ndarray:
    """Frame times 0, 1/FPS, ..., seconds (seconds * FPS + 1 frames)."""
    n = int(round(seconds * FPS)) + 1
    return np.arange(n) / FPS


# ----------------------------------------------------------------------------------------------
# Upper-body vocabulary
# ----------------------------------------------------------------------------------------------

def spine(yaw=0.0, pitch=0.0, roll=0.0):
    """Exp map of a spine / neck joint: turn left (yaw), lean forward (pitch), lean right (roll)."""
    return exp_map(("z", yaw), ("y", pitch), ("x", roll))


def right_arm(flex, abduct, twist):
    return exp_map(("y", -flex), ("x", -abduct), ("z", twist))


def left_arm(flex, abduct, twist, lift=0.0):
    """`lift` then turns the arm within its own plane (about the elbow axis, which is the shield's
    normal): the elbow swings out and up and the shield rises while it keeps facing the same way."""
    return exp_map(("y", -flex), ("x", abduct), ("z", twist), ("y", lift))


def upper_pose(torso=(0, 0, 0), head=(0, 0, 0), sword=(15, 15, 10, 70), wrist=(0, 45, 0),
               shield=(35, 8, -70, 100)):
    """A pose dict for the upper body. `sword` / `shield` = (flex, abduct, twist, elbow) of the
    right / left arm (the shield arm may add a fifth value, its `lift`), `wrist` = (roll, pitch,
    yaw) of the sword hand (pitch tips the blade down)."""
    return {
        "abdomen": spine(*torso),
        "neck": spine(*head),
        "right_shoulder": right_arm(*sword[:3]),
        "right_elbow": deg(-sword[3]),
        "right_wrist": exp_map(("x", wrist[0]), ("y", wrist[1]), ("z", wrist[2])),
        "left_shoulder": left_arm(*shield[:3], *shield[4:]),
        "left_elbow": deg(-shield[3]),
    }


READY = dict(torso=(8, 8, 0), head=(-6, -6, 0), sword=(15, 15, 10, 70), wrist=(0, 45, 0),
             shield=(35, 8, -70, 100))


def keyed_pose(times, keys, loop_period=None):
    """Interpolates a list of (time, upper_pose kwargs) keys into per-frame joint values."""
    key_times = [k[0] for k in keys]
    poses = [upper_pose(**{**READY, **k[1]}) for k in keys]
    return {j: interpolate_keys(key_times, [p[j] for p in poses], times, loop_period) for j in poses[0]}


# ----------------------------------------------------------------------------------------------
# Assembly
# ----------------------------------------------------------------------------------------------

class Builder:
    def __init__(self, model: mujoco.MjModel):
        self.model = model
        self.skeleton = skeleton_from_mjcf(model)
        self.body = {n: i for i, n in enumerate(self.skeleton.node_names)}

    def feet(self, times, plants_right, plants_left, **track):
        return {"right": foot_track(self.model, "right_foot", plants_right, times, **track),
                "left": foot_track(self.model, "left_foot", plants_left, times, **track)}

    def assemble(self, name, times, pelvis_pos, pelvis_quat, upper, feet):
        """Local rotations and root translation of a clip; legs by IK onto the feet tracks."""
        pelvis_pos = np.asarray(pelvis_pos, np.float64)
        pelvis_quat = continuous_sign(quat.normalize(np.asarray(pelvis_quat, np.float64)))
        rot = pose_to_local_rotation(self.model, upper, root_rotation=pelvis_quat)
        rot = np.array(np.broadcast_to(rot, (len(times),) + rot.shape[-2:]))
        for side in ("right", "left"):
            foot_pos, foot_q, contact = feet[side]
            hip, knee, ankle, ext = leg_ik(self.model, f"{side}_thigh", pelvis_pos, pelvis_quat, foot_pos, foot_q)
            worst = float(ext[contact].max()) if contact.any() else 0.0
            if worst > MAX_LEG_EXTENSION or ext.max() > 0.999:
                raise RuntimeError(f"{name}: {side} leg cannot reach its foot (extension {ext.max():.4f} "
                                   f"at t = {times[int(ext.argmax())]:.2f} s)")
            rot[:, self.body[f"{side}_thigh"]] = hip
            rot[:, self.body[f"{side}_shin"]] = quat.from_axis_angle(np.broadcast_to([0.0, 1.0, 0.0], knee.shape + (3,)), knee)
            rot[:, self.body[f"{side}_foot"]] = ankle
        return make_clip(rot, pelvis_pos, FPS, self.skeleton, path=f"{name}.npy")


def stance_plants(right_xy=(-0.09, -0.115), right_yaw=-22.0, left_xy=(0.11, 0.105), left_yaw=6.0):
    """The ready stance: left foot ahead, right foot back and turned out (flat origins, degrees)."""
    return [FootPlant(0.0, 1e9, right_xy, deg(right_yaw))], [FootPlant(0.0, 1e9, left_xy, deg(left_yaw))]


STANCE_PELVIS = np.array([-0.04, 0.005, 0.805])  # pelvis over the ready stance (a PD-held pose stays up)
STANCE_YAW = -12.0  # degrees: the body turned a little to the right, shield side forward


# ----------------------------------------------------------------------------------------------
# Clips
# ----------------------------------------------------------------------------------------------

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


def sword_arm(b: Builder, times, keys):
    """Right arm joints from sword keys (t, hand position, blade direction, elbow pole), all in the
    torso frame, interpolated smoothly: `authoring.limb_ik` places the hand, then the wrist turns
    the blade (the hand's x axis) from its neutral direction (perpendicular to the forearm, on the
    side of the upper arm) onto the keyed direction by the shortest rotation (no twist), at most
    WRIST_MAX (the blade lags the keyed direction where that would bend the wrist further)."""
    kt = [k[0] for k in keys]
    pos, blade, pole = (interpolate_keys(kt, np.array([k[i] for k in keys], np.float64), times)
                        for i in range(1, 4))
    ident = np.array([1.0, 0.0, 0.0, 0.0])
    q_arm, elbow, _, ext = limb_ik(b.model, "right_upper_arm", np.zeros(3), ident, pos, ident, pole=pole)
    if ext.max() > 0.99:
        raise RuntimeError(f"sword hand target out of reach (extension {ext.max():.3f} at "
                           f"t = {times[int(ext.argmax())]:.2f} s)")
    y = np.broadcast_to([0.0, 1.0, 0.0], pos.shape)
    q_forearm = quat.mul(q_arm, quat.from_axis_angle(y, elbow))
    local = quat.rotate(quat.conj(q_forearm), blade / np.linalg.norm(blade, axis=-1, keepdims=True))
    x = np.broadcast_to([1.0, 0.0, 0.0], pos.shape)
    axis = np.cross(x, local)
    sin = np.linalg.norm(axis, axis=-1)
    angle = np.minimum(np.arctan2(sin, local[:, 0]), WRIST_MAX)  # stay inside the wrist's cone
    axis = np.where(sin[:, None] > 1e-9, axis / np.maximum(sin, 1e-12)[:, None], y)
    return {"right_shoulder": quat.to_exp_map(q_arm), "right_elbow": elbow,
            "right_wrist": axis * angle[:, None]}


WRIST_MAX = np.deg2rad(85.0)

# The guard's sword hand in the torso frame (the READY arm angles, measured once with FK).
GUARD = ((0.301, -0.236, -0.044), (0.767, 0.261, 0.586), (0.07, -0.07, -0.26))


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
