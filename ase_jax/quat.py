"""Quaternion maths in MuJoCo's (w, x, y, z) order, for numpy and jax arrays alike.

Each function works on numpy arrays (float64, used when converting motion files) and on jax arrays
(inside jit), picking the array module from its input. ASE stores quaternions as (x, y, z, w): convert
at the file boundary with `from_xyzw` / `to_xyzw` and nowhere else.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _xp(*arrays):
    return jnp if any(isinstance(a, jax.Array) or isinstance(a, jax.core.Tracer) for a in arrays) else np


def from_xyzw(q):
    xp = _xp(q)
    return xp.concatenate([q[..., 3:4], q[..., 0:3]], axis=-1)


def to_xyzw(q):
    xp = _xp(q)
    return xp.concatenate([q[..., 1:4], q[..., 0:1]], axis=-1)


def normalize(q):
    xp = _xp(q)
    return q / xp.linalg.norm(q, axis=-1, keepdims=True)


def conj(q):
    xp = _xp(q)
    return xp.concatenate([q[..., :1], -q[..., 1:]], axis=-1)


def mul(a, b):
    """Hamilton product a * b (apply b, then a)."""
    xp = _xp(a, b)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return xp.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def rotate(q, v):
    """Rotates 3-vectors v by unit quaternions q (broadcasting over leading dims)."""
    xp = _xp(q, v)
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * xp.cross(u, v)
    return v + w * t + xp.cross(u, t)


def from_axis_angle(axis, angle):
    xp = _xp(axis, angle)
    half = 0.5 * angle[..., None]
    return xp.concatenate([xp.cos(half), axis * xp.sin(half)], axis=-1)


def to_axis_angle(q):
    """(axis, angle) as ASE's `quat_to_angle_axis`: angle = 2 acos(w) wrapped to [-pi, pi].

    For w < 0 the angle comes out negative (the same rotation, other axis sign). Near identity
    (sin(angle/2) < 1e-5) the angle is 0 and the axis (0, 0, 1).
    """
    xp = _xp(q)
    w = xp.clip(q[..., 0], -1.0, 1.0)
    sin_half_sq = 1.0 - w * w
    angle = 2.0 * xp.arccos(w)
    angle = (angle + np.pi) % (2 * np.pi) - np.pi  # wrap to [-pi, pi)
    small = sin_half_sq < 1e-10  # sin(half angle) < 1e-5
    inv_sin = 1.0 / xp.sqrt(xp.where(small, 1.0, sin_half_sq))
    axis = q[..., 1:] * inv_sin[..., None]
    z_axis = xp.zeros_like(axis) + xp.asarray([0.0, 0.0, 1.0], dtype=axis.dtype)
    axis = xp.where(small[..., None], z_axis, axis)
    angle = xp.where(small, 0.0, angle)
    return axis, angle


def to_exp_map(q):
    """Exponential map (axis * angle) of a quaternion, as ASE converts 3-DoF joint rotations."""
    axis, angle = to_axis_angle(q)
    return axis * angle[..., None]


def from_exp_map(e):
    xp = _xp(e)
    angle = xp.linalg.norm(e, axis=-1)
    safe = xp.where(angle > 1e-9, angle, 1.0)
    axis = xp.where((angle > 1e-9)[..., None], e / safe[..., None], xp.zeros_like(e) + xp.asarray([0.0, 0.0, 1.0], dtype=e.dtype))
    return from_axis_angle(axis, angle)


def slerp(q0, q1, t):
    """Spherical interpolation with ASE's edge cases (`torch_utils.slerp`).

    Takes the short path (flips q1 when dot < 0) and returns q0 when |cos| >= 1. Where
    sin(half angle) < 1e-3 the reference returns the mean of the two whatever t is; we use the
    normalised linear interpolation instead, so that t = 0 gives q0 and t = 1 gives q1 exactly (the
    two differ by under 1e-3 rad). `t` broadcasts against the leading dims of q0.
    """
    xp = _xp(q0, q1, t)
    t = xp.asarray(t)[..., None]
    cos_half = xp.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = xp.where(cos_half < 0, -q1, q1)
    cos_half = xp.abs(cos_half)
    half = xp.arccos(xp.clip(cos_half, -1.0, 1.0))
    sin_half = xp.sqrt(xp.maximum(1.0 - cos_half * cos_half, 0.0))
    safe_sin = xp.where(xp.abs(sin_half) < 1e-3, 1.0, sin_half)
    ratio_a = xp.sin((1 - t) * half) / safe_sin
    ratio_b = xp.sin(t * half) / safe_sin
    out = ratio_a * q0 + ratio_b * q1
    nlerp = (1 - t) * q0 + t * q1
    nlerp = nlerp / xp.linalg.norm(nlerp, axis=-1, keepdims=True)
    out = xp.where(xp.abs(sin_half) < 1e-3, nlerp, out)
    return xp.where(xp.abs(cos_half) >= 1.0, q0, out)


def heading(q):
    """Yaw angle atan2(v_y, v_x) of v = q rotating (1, 0, 0)."""
    xp = _xp(q)
    x_axis = xp.zeros(q.shape[:-1] + (3,), dtype=q.dtype) + xp.asarray([1.0, 0.0, 0.0], dtype=q.dtype)
    v = rotate(q, x_axis)
    return xp.arctan2(v[..., 1], v[..., 0])


def heading_inv(q):
    """Rotation about world +z by -yaw(q): maps world vectors into the heading-local frame."""
    xp = _xp(q)
    z_axis = xp.zeros(q.shape[:-1] + (3,), dtype=q.dtype) + xp.asarray([0.0, 0.0, 1.0], dtype=q.dtype)
    return from_axis_angle(z_axis, -heading(q))


def tan_norm(q):
    """6-D rotation encoding [q (1,0,0), q (0,0,1)]: the rotated x axis then the rotated z axis."""
    xp = _xp(q)
    shape = q.shape[:-1] + (3,)
    x_axis = xp.zeros(shape, dtype=q.dtype) + xp.asarray([1.0, 0.0, 0.0], dtype=q.dtype)
    z_axis = xp.zeros(shape, dtype=q.dtype) + xp.asarray([0.0, 0.0, 1.0], dtype=q.dtype)
    return xp.concatenate([rotate(q, x_axis), rotate(q, z_axis)], axis=-1)
