"""Quaternion helpers for authoring clips (wxyz, numpy float64): rotations written by hand
(`exp_map` of elementary rotations, `yaw_quat`, `euler_quat`) and the sign and form conventions of
the stored clips (`quat_pos`, `continuous_sign`, `matrix_to_quat`)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ase_jax import quat


def quat_pos(q):
    """The same rotation with w >= 0 (poselib's `quat_pos`)."""
    return np.where(q[..., :1] < 0, -q, q)


def continuous_sign(q):
    """Flips quaternions (T, ..., 4) along time so each is in the hemisphere of the one before."""
    q = np.array(q, np.float64)
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], axis=-1, keepdims=True) < 0
        q[t] = np.where(flip, -q[t], q[t])
    return q


def exp_map(*rotations) -> np.ndarray:
    """Exp map (axis * angle) of a product of elementary rotations, each ('x'|'y'|'z', degrees).

    `exp_map(('z', 30), ('y', -45))` is R_z(30 deg) R_y(-45 deg): rotate about the (local) z axis,
    then about the rotated y axis. Handy for writing keyframe values by hand.
    """
    q = np.array([1.0, 0.0, 0.0, 0.0])
    for axis, degrees in rotations:
        a = np.zeros(3)
        a["xyz".index(axis)] = 1.0
        q = quat.mul(q, quat.from_axis_angle(a, np.asarray(np.deg2rad(degrees), np.float64)))
    return quat.to_exp_map(q)


def yaw_quat(yaw):
    """Rotation about world z by `yaw` radians (wxyz)."""
    yaw = np.asarray(yaw, np.float64)
    return quat.from_axis_angle(np.broadcast_to([0.0, 0.0, 1.0], yaw.shape + (3,)), yaw)


def euler_quat(yaw=0.0, pitch=0.0, roll=0.0):
    """R_z(yaw) R_y(pitch) R_x(roll), radians, wxyz; arguments broadcast. Pitch > 0 leans forward
    (rotates +z towards +x), roll > 0 tilts +z towards -y."""
    yaw, pitch, roll = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (yaw, pitch, roll)))
    ex = np.broadcast_to([1.0, 0.0, 0.0], yaw.shape + (3,))
    ey = np.broadcast_to([0.0, 1.0, 0.0], yaw.shape + (3,))
    return quat.mul(yaw_quat(yaw), quat.mul(quat.from_axis_angle(ey, pitch), quat.from_axis_angle(ex, roll)))


def matrix_to_quat(m) -> np.ndarray:
    """Rotation matrices (..., 3, 3) to quaternions (..., 4) wxyz with w >= 0."""
    m = np.asarray(m, np.float64)
    flat = Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat()  # xyzw
    return quat_pos(quat.from_xyzw(flat).reshape(m.shape[:-2] + (4,)))
