"""The upper body of the bundled clips: a small vocabulary of spine and arm angles, the ready
guard, upper-body poses keyed over time, and the sword arm placed by IK from hand positions.

Arm angles: `flex` raises the arm forward, `abduct` raises it sideways, `twist` turns it about its
own axis (positive turns the front of the arm towards the body's left), `elbow` bends the forearm
(0 straight, 150 fully bent).
"""

from __future__ import annotations

import numpy as np

from ase_jax import quat
from authoring.keyframes import interpolate_keys
from authoring.rotations import exp_map
from authoring.two_bone_ik import limb_ik

from .assembly import Builder, deg


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


WRIST_MAX = np.deg2rad(85.0)

# The guard's sword hand in the torso frame (the READY arm angles, measured once with FK).
GUARD = ((0.301, -0.236, -0.044), (0.767, 0.261, 0.586), (0.07, -0.07, -0.26))


def sword_arm(b: Builder, times, keys):
    """Right arm joints from sword keys (t, hand position, blade direction, elbow pole), all in the
    torso frame, interpolated smoothly: `limb_ik` places the hand, then the wrist turns the blade
    (the hand's x axis) from its neutral direction (perpendicular to the forearm, on the side of
    the upper arm) onto the keyed direction by the shortest rotation (no twist), at most WRIST_MAX
    (the blade lags the keyed direction where that would bend the wrist further)."""
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

