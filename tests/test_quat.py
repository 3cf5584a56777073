"""ase_jax.quat against closed forms and MuJoCo's own quaternion routines (wxyz, Hamilton product).

MuJoCo's C functions (mju_mulQuat, mju_rotVecQuat, mju_quat2Vel, ...) are an independent reference:
they are compared on random inputs in float64 (numpy path) and float32 (jax path).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from ase_jax import quat

pytestmark = pytest.mark.timeout(300)

X, Y, Z = np.eye(3)
RNG_SEED = 1234


def _random_quats(n, seed=RNG_SEED):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _random_vecs(n, seed=RNG_SEED + 1):
    return np.random.default_rng(seed).normal(size=(n, 3))


def _mj_rotate(q, v):
    out = np.zeros(3)
    mujoco.mju_rotVecQuat(out, np.asarray(v, np.float64), np.asarray(q, np.float64))
    return out


def _mj_mul(a, b):
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, np.asarray(a, np.float64), np.asarray(b, np.float64))
    return out


def _mj_mat(q):
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, np.asarray(q, np.float64))
    return out.reshape(3, 3)


def _mj_axis_angle(axis, angle):
    out = np.zeros(4)
    mujoco.mju_axisAngle2Quat(out, np.asarray(axis, np.float64), float(angle))
    return out


def _mj_quat2vel(q):
    out = np.zeros(3)
    mujoco.mju_quat2Vel(out, np.asarray(q, np.float64), 1.0)
    return out


def _same_rotation(q1, q2, atol):
    """q and -q are the same rotation."""
    q1, q2 = np.asarray(q1, np.float64), np.asarray(q2, np.float64)
    sign = np.where(np.sum(q1 * q2, axis=-1, keepdims=True) < 0, -1.0, 1.0)
    np.testing.assert_allclose(q1, sign * q2, atol=atol)


def _aa(axis, angle):
    return quat.from_axis_angle(np.asarray(axis, np.float64), np.asarray(angle, np.float64))


# --- layout and conversions -------------------------------------------------------------------------


def test_xyzw_conversions_move_w_between_ends():
    q_xyzw = np.array([[0.1, 0.2, 0.3, 0.9], [1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(quat.from_xyzw(q_xyzw), [[0.9, 0.1, 0.2, 0.3], [4.0, 1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(quat.to_xyzw(np.array([4.0, 1.0, 2.0, 3.0])), [1.0, 2.0, 3.0, 4.0])
    q = _random_quats(5)
    np.testing.assert_array_equal(quat.to_xyzw(quat.from_xyzw(q)), q)


def test_normalize_gives_unit_quaternions_in_the_same_direction():
    q = np.array([[2.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, -3.0, 4.0, 0.0]])
    np.testing.assert_allclose(quat.normalize(q), [[1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5], [0, -0.6, 0.8, 0]], atol=1e-15)


def test_numpy_in_numpy_out_and_jax_in_jax_out():
    q, v = _random_quats(3), _random_vecs(3)
    out_np = quat.rotate(q, v)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float64
    out_jax = quat.rotate(jnp.asarray(q, jnp.float32), jnp.asarray(v, jnp.float32))
    assert isinstance(out_jax, jax.Array)
    np.testing.assert_allclose(np.asarray(out_jax), out_np, atol=1e-5)
    # and under jit (tracers)
    out_jit = jax.jit(quat.rotate)(jnp.asarray(q, jnp.float32), jnp.asarray(v, jnp.float32))
    np.testing.assert_allclose(np.asarray(out_jit), out_np, atol=1e-5)


# --- rotation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis, v, expected", [
    (X, Y, Z), (X, Z, -Y), (X, X, X),
    (Y, Z, X), (Y, X, -Z), (Y, Y, Y),
    (Z, X, Y), (Z, Y, -X), (Z, Z, Z),
])
def test_rotating_unit_vectors_by_90_degrees(axis, v, expected):
    """Right-handed: +90 deg about x takes y to z, about y takes z to x, about z takes x to y."""
    q = _aa(axis, np.pi / 2)
    np.testing.assert_allclose(q, [np.cos(np.pi / 4), *(np.sin(np.pi / 4) * axis)], atol=1e-15)
    np.testing.assert_allclose(quat.rotate(q, v), expected, atol=1e-15)


def test_rotate_matches_mujoco_and_the_rotation_matrix():
    qs, vs = _random_quats(50), _random_vecs(50)
    ours = quat.rotate(qs, vs)
    for q, v, r in zip(qs, vs, ours):
        np.testing.assert_allclose(r, _mj_rotate(q, v), atol=1e-12)
        np.testing.assert_allclose(r, _mj_mat(q) @ v, atol=1e-12)
    ours32 = np.asarray(quat.rotate(jnp.asarray(qs, jnp.float32), jnp.asarray(vs, jnp.float32)))
    np.testing.assert_allclose(ours32, ours, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=-1), np.linalg.norm(vs, axis=-1), rtol=1e-12)


def test_rotate_broadcasts_one_quaternion_over_many_vectors():
    q = _aa(Z, np.pi / 2)
    out = quat.rotate(np.broadcast_to(q, (3, 4)), np.eye(3))
    np.testing.assert_allclose(out, [Y, -X, Z], atol=1e-15)


def test_mul_matches_mujoco_and_composes_rotation_matrices():
    a, b, vs = _random_quats(50, 1), _random_quats(50, 2), _random_vecs(50, 3)
    ab = quat.mul(a, b)
    for qa, qb, qab, v in zip(a, b, ab, vs):
        np.testing.assert_allclose(qab, _mj_mul(qa, qb), atol=1e-12)
        np.testing.assert_allclose(_mj_mat(qab), _mj_mat(qa) @ _mj_mat(qb), atol=1e-12)
        # "apply b, then a"
        np.testing.assert_allclose(quat.rotate(qab, v), quat.rotate(qa, quat.rotate(qb, v)), atol=1e-12)
    ab32 = np.asarray(quat.mul(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
    np.testing.assert_allclose(ab32, ab, atol=1e-5)


def test_mul_of_basis_quaternions():
    """Hamilton's i j = k, j k = i, k i = j, i i = -1 (w first)."""
    one, i, j, k = np.eye(4)
    np.testing.assert_array_equal(quat.mul(i, j), k)
    np.testing.assert_array_equal(quat.mul(j, k), i)
    np.testing.assert_array_equal(quat.mul(k, i), j)
    np.testing.assert_array_equal(quat.mul(j, i), -k)
    np.testing.assert_array_equal(quat.mul(i, i), -one)
    np.testing.assert_array_equal(quat.mul(one, k), k)


def test_conj_is_the_inverse_of_a_unit_quaternion():
    qs, vs = _random_quats(30), _random_vecs(30)
    identity = np.broadcast_to([1.0, 0.0, 0.0, 0.0], qs.shape)
    np.testing.assert_allclose(quat.mul(qs, quat.conj(qs)), identity, atol=1e-12)
    np.testing.assert_allclose(quat.mul(quat.conj(qs), qs), identity, atol=1e-12)
    np.testing.assert_allclose(quat.rotate(quat.conj(qs), quat.rotate(qs, vs)), vs, atol=1e-12)
    for q, c in zip(qs, quat.conj(qs)):
        expected = np.zeros(4)
        mujoco.mju_negQuat(expected, q)  # MuJoCo's "negQuat" is the conjugate
        np.testing.assert_allclose(c, expected, atol=0)


# --- axis-angle and exponential map -----------------------------------------------------------------


def test_from_axis_angle_matches_mujoco():
    rng = np.random.default_rng(7)
    axes = _random_vecs(40, 8)
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    angles = rng.uniform(-2 * np.pi, 2 * np.pi, 40)
    ours = quat.from_axis_angle(axes, angles)
    for ax, ang, q in zip(axes, angles, ours):
        np.testing.assert_allclose(q, _mj_axis_angle(ax, ang), atol=1e-12)


@pytest.mark.parametrize("angle", [1e-3, 0.3, 1.0, 2.5, np.pi - 1e-3, np.pi - 1e-6])
def test_to_axis_angle_recovers_axis_and_angle(angle):
    axis = np.array([2.0, -1.0, 0.5]) / np.linalg.norm([2.0, -1.0, 0.5])
    got_axis, got_angle = quat.to_axis_angle(_aa(axis, angle))
    np.testing.assert_allclose(got_angle, angle, atol=1e-9)
    np.testing.assert_allclose(got_axis, axis, atol=1e-9)
    # -q (w < 0) is the same rotation: the angle comes out negative with the axis flipped,
    # i.e. the same rotation (its exp map is unchanged).
    neg_axis, neg_angle = quat.to_axis_angle(-_aa(axis, angle))
    np.testing.assert_allclose(neg_angle, -angle, atol=1e-9)
    np.testing.assert_allclose(neg_axis, -axis, atol=1e-9)


def test_to_axis_angle_near_identity_is_zero_about_z():
    for q in (np.array([1.0, 0.0, 0.0, 0.0]), np.array([-1.0, 0.0, 0.0, 0.0]), _aa(X, 1e-6)):
        axis, angle = quat.to_axis_angle(q)
        np.testing.assert_allclose(angle, 0.0, atol=0)
        np.testing.assert_array_equal(axis, [0.0, 0.0, 1.0])
    # just above the threshold (sin(angle/2) > 1e-5) the angle is kept
    axis, angle = quat.to_axis_angle(_aa(Y, 1e-4))
    np.testing.assert_allclose(angle, 1e-4, rtol=1e-6)
    np.testing.assert_allclose(axis, Y, atol=1e-6)


def test_exp_map_matches_mujoco_quat2vel():
    """mju_quat2Vel(q, dt=1) is axis * angle with the angle wrapped to [-pi, pi]: the exp map."""
    qs = np.concatenate([_random_quats(200), -_random_quats(20, 5)])
    ours = quat.to_exp_map(qs)
    for q, e in zip(qs, ours):
        np.testing.assert_allclose(e, _mj_quat2vel(q), atol=1e-9)
    ours32 = np.asarray(quat.to_exp_map(jnp.asarray(qs, jnp.float32)))
    # float32: 2 acos(w) loses precision near w = +-1 (as the reference's formula does)
    np.testing.assert_allclose(ours32, ours, atol=2e-3)
    np.testing.assert_array_less(np.linalg.norm(ours, axis=-1), np.pi + 1e-12)


@pytest.mark.parametrize("angle", [0.0, 1e-7, 1e-3, 0.7, 2.0, np.pi - 1e-4, np.pi])
def test_exp_map_round_trips(angle):
    axis = np.array([-0.3, 0.9, 0.2]) / np.linalg.norm([-0.3, 0.9, 0.2])
    q = _aa(axis, angle)
    e = quat.to_exp_map(q)
    tol = 1e-6 if angle < 1e-4 else 1e-9
    if angle < np.pi:
        np.testing.assert_allclose(e, axis * angle, atol=tol)
    else:  # at exactly pi the wrap to [-pi, pi) may give either sign: the same rotation
        assert np.allclose(e, axis * np.pi, atol=tol) or np.allclose(e, -axis * np.pi, atol=tol), e
    _same_rotation(quat.from_exp_map(e), q, atol=tol)
    # and from the exp-map side
    e0 = axis * angle * 0.999
    np.testing.assert_allclose(quat.to_exp_map(quat.from_exp_map(e0)), e0, atol=tol)


def test_from_exp_map_closed_form_and_zero():
    np.testing.assert_allclose(quat.from_exp_map(np.array([0.0, 0.0, np.pi])), [0.0, 0.0, 0.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(quat.from_exp_map(np.array([np.pi / 2, 0.0, 0.0])),
                               [np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0], atol=1e-15)
    np.testing.assert_array_equal(quat.from_exp_map(np.zeros(3)), [1.0, 0.0, 0.0, 0.0])
    # jax: no NaN at zero either
    z = quat.from_exp_map(jnp.zeros((2, 3)))
    np.testing.assert_array_equal(np.asarray(z), [[1.0, 0.0, 0.0, 0.0]] * 2)
    for e in _random_vecs(20, 11):
        expected = np.zeros(4)
        angle = np.linalg.norm(e)
        mujoco.mju_axisAngle2Quat(expected, e / angle, angle)
        np.testing.assert_allclose(quat.from_exp_map(e), expected, atol=1e-12)


# --- slerp ----------------------------------------------------------------------------------------


def test_slerp_about_one_axis_interpolates_the_angle():
    a, b = 0.3, 2.1
    q0, q1 = _aa(Z, a), _aa(Z, b)
    for t in (0.0, 0.25, 0.5, 0.9, 1.0):
        np.testing.assert_allclose(quat.slerp(q0, q1, t), _aa(Z, a + t * (b - a)), atol=1e-12)
    ts = np.array([0.0, 0.5, 1.0])
    out = quat.slerp(np.broadcast_to(q0, (3, 4)), np.broadcast_to(q1, (3, 4)), ts)
    np.testing.assert_allclose(out, [q0, _aa(Z, (a + b) / 2), q1], atol=1e-12)


def test_slerp_takes_the_short_path():
    """q1 and -q1 are the same rotation: both give the short arc (here 40 deg, not 320)."""
    q0, q1 = _aa(X, np.radians(-20)), _aa(X, np.radians(20))
    mid = _aa(X, 0.0)
    _same_rotation(quat.slerp(q0, q1, 0.5), mid, atol=1e-12)
    _same_rotation(quat.slerp(q0, -q1, 0.5), mid, atol=1e-12)
    _same_rotation(quat.slerp(q0, -q1, 0.25), _aa(X, np.radians(-10)), atol=1e-12)


def test_slerp_of_nearly_equal_quaternions_hits_both_ends():
    q0 = _aa(Y, 0.5)
    q1 = _aa(Y, 0.5 + 1e-4)
    np.testing.assert_allclose(quat.slerp(q0, q1, 0.0), q0, atol=1e-15)
    np.testing.assert_allclose(quat.slerp(q0, q1, 1.0), q1, atol=1e-15)
    np.testing.assert_allclose(quat.slerp(q0, q1, 0.5), _aa(Y, 0.5 + 0.5e-4), atol=1e-9)
    np.testing.assert_allclose(quat.slerp(q0, q0, 0.3), q0, atol=1e-15)
    # jax path
    out = quat.slerp(jnp.asarray(_aa(Z, 0.0), jnp.float32), jnp.asarray(_aa(Z, 1.0), jnp.float32), jnp.asarray(0.5))
    np.testing.assert_allclose(np.asarray(out), _aa(Z, 0.5), atol=1e-6)


# --- heading frames and the tangent-normal encoding ------------------------------------------------


@pytest.mark.parametrize("yaw", [0.0, 0.4, -1.2, 2.9, -3.0])
def test_heading_of_yaw_pitch_roll(yaw):
    """yaw(Rz(psi) Ry(theta) Rx(phi)) = psi for |theta| < pi/2: roll keeps the x axis, pitch keeps its azimuth."""
    for pitch, roll in ((0.0, 0.0), (0.7, 0.0), (-1.0, 2.0), (1.3, -2.5)):
        q = quat.mul(_aa(Z, yaw), quat.mul(_aa(Y, pitch), _aa(X, roll)))
        np.testing.assert_allclose(quat.heading(q), yaw, atol=1e-12)
        # MuJoCo's euler2Quat with intrinsic "zyx" is the same composition
        mj = np.zeros(4)
        mujoco.mju_euler2Quat(mj, np.array([yaw, pitch, roll]), "zyx")
        np.testing.assert_allclose(quat.heading(mj), yaw, atol=1e-12)


def test_heading_inv_rotates_the_facing_direction_onto_x():
    rng = np.random.default_rng(3)
    qs = _random_quats(40, 4)
    h = quat.heading_inv(qs)
    yaw = quat.heading(qs)
    # a pure rotation about +z by -yaw
    np.testing.assert_allclose(h, np.stack([np.cos(-yaw / 2), 0 * yaw, 0 * yaw, np.sin(-yaw / 2)], -1), atol=1e-12)
    forward = np.stack([np.cos(yaw), np.sin(yaw), rng.normal(size=40)], -1)
    np.testing.assert_allclose(quat.rotate(h, forward), np.stack([np.ones(40), np.zeros(40), forward[:, 2]], -1),
                               atol=1e-12)
    np.testing.assert_allclose(quat.heading(quat.mul(h, qs)), 0.0, atol=1e-12)
    # a known case: facing +y (yaw 90 deg): world +y is local +x, world +x is local -y
    q = _aa(Z, np.pi / 2)
    np.testing.assert_allclose(quat.rotate(quat.heading_inv(q), Y), X, atol=1e-15)
    np.testing.assert_allclose(quat.rotate(quat.heading_inv(q), X), -Y, atol=1e-15)


def test_tan_norm_is_the_rotated_x_then_z_axis():
    q = _aa(Y, np.pi / 2)  # x -> -z, z -> x
    np.testing.assert_allclose(quat.tan_norm(q), [0, 0, -1, 1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(quat.tan_norm(np.array([1.0, 0, 0, 0])), [1, 0, 0, 0, 0, 1], atol=0)
    qs = _random_quats(20, 9)
    tn = quat.tan_norm(qs)
    for q, row in zip(qs, tn):
        m = _mj_mat(q)
        np.testing.assert_allclose(row, np.concatenate([m[:, 0], m[:, 2]]), atol=1e-12)
    tn32 = np.asarray(quat.tan_norm(jnp.asarray(qs, jnp.float32)))
    np.testing.assert_allclose(tn32, tn, atol=1e-5)
