"""Poses and keyframes: a pose {joint name: exp map or hinge angle} as local rotations, keyframe
interpolation that holds pose keys and flows through passing keys (or loops seamlessly), and the
quintic ease the foot tracks use."""

from __future__ import annotations

import mujoco
import numpy as np
from scipy.interpolate import PchipInterpolator

from ase_jax import quat
from ase_jax.character import Joint, read_joints


def joint_table(model: mujoco.MjModel) -> dict[str, Joint]:
    """The non-root joints of the character by MJCF joint name."""
    return {joint.name: joint for joint in read_joints(model)}


def pose_to_local_rotation(model: mujoco.MjModel, pose: dict, root_rotation=None) -> np.ndarray:
    """Local rotations (..., B, 4) wxyz from a pose {joint name: value}.

    A ball joint's value is an exp map (..., 3) (axis * angle, radians); a hinge's value is its angle
    (...) in radians about the joint axis. Joints not named stay at identity. `root_rotation`
    (..., 4) wxyz is the root's global rotation (identity when None); a pose entry "root" (an exp
    map) may be given instead. Leading dims of all values broadcast (e.g. one per frame).
    """
    joints = joint_table(model)
    pose = dict(pose)
    if "root" in pose:
        if root_rotation is not None:
            raise ValueError("give the root rotation either as root_rotation or as pose['root']")
        root_rotation = quat.from_exp_map(np.asarray(pose.pop("root"), np.float64))
    unknown = sorted(set(pose) - set(joints))
    if unknown:
        raise KeyError(f"unknown joints {unknown}; known: {sorted(joints)}")
    shapes = []
    for name, value in pose.items():
        v = np.asarray(value, np.float64)
        shapes.append(v.shape[:-1] if joints[name].kind == "ball" else v.shape)
    if root_rotation is not None:
        shapes.append(np.asarray(root_rotation).shape[:-1])
    lead = np.broadcast_shapes(*shapes) if shapes else ()
    num_bodies = model.nbody - 1
    out = np.zeros(lead + (num_bodies, 4))
    out[..., 0] = 1.0
    if root_rotation is not None:
        out[..., 0, :] = quat.normalize(np.asarray(root_rotation, np.float64))
    for name, value in pose.items():
        info = joints[name]
        v = np.asarray(value, np.float64)
        if info.kind == "ball":
            q = quat.from_exp_map(v)
        else:
            q = quat.from_axis_angle(np.broadcast_to(info.axis, v.shape + (3,)), v)
        out[..., info.body, :] = q
    return out


def interpolate_keys(key_times, key_values, times, loop_period: float | None = None) -> np.ndarray:
    """Smooth keyframe interpolation (monotone cubic, PCHIP) of values (K, ...) at `times`.

    Each component is interpolated separately (exp maps, hinge angles, positions). PCHIP never
    overshoots: a key that is a local extremum is reached with zero velocity, so "pose" keys hold
    and "passing" keys flow through. Without `loop_period` the motion starts and ends at rest
    (flat tangents at the first and last key) and is held outside the key range. With
    `loop_period` the keys repeat every period (the value at key_times[0] + period is key 0), so a
    looping clip is seamless.
    """
    kt = np.asarray(key_times, np.float64)
    kv = np.asarray(key_values, np.float64)
    t = np.asarray(times, np.float64)
    if kt.ndim != 1 or kv.shape[0] != kt.shape[0] or np.any(np.diff(kt) <= 0):
        raise ValueError("key_times must be increasing and match key_values along axis 0")
    if loop_period is None:
        pad_t = np.concatenate([[kt[0] - 1.0], kt, [kt[-1] + 1.0]])
        pad_v = np.concatenate([kv[:1], kv, kv[-1:]])
        f = PchipInterpolator(pad_t, pad_v, axis=0)
        return f(np.clip(t, kt[0], kt[-1]))
    if kt[-1] >= kt[0] + loop_period:
        raise ValueError("loop keys must lie within one period")
    reps = [-1, 0, 1, 2]
    pad_t = np.concatenate([kt + r * loop_period for r in reps])
    pad_v = np.concatenate([kv for _ in reps])
    f = PchipInterpolator(pad_t, pad_v, axis=0)
    return f(kt[0] + np.mod(t - kt[0], loop_period))


def smoothstep(x):
    """Quintic ease 0 -> 1 on [0, 1] with zero first and second derivatives at both ends."""
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)
