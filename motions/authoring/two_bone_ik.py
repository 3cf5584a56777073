"""Analytic two-bone inverse kinematics: a limb (thigh-shin-foot, upper arm-forearm-hand) whose end
body must reach a pose; `leg_ik` for the legs over the foot tracks, `limb_ik` for any limb."""

from __future__ import annotations

import mujoco
import numpy as np

from ase_jax import quat

from .rotations import matrix_to_quat, quat_pos


def limb_ik(model: mujoco.MjModel, limb: str, parent_pos, parent_quat, end_pos, end_quat, pole=None,
            hinge_axis=None, max_extension=0.999):
    """Analytic two-bone IK: local rotations that put a limb's end body at (end_pos, end_quat).

    The chain is `limb` (a ball joint, e.g. a thigh or upper arm) - its child (a hinge about local
    y, e.g. shin or forearm) - the grandchild (a ball, e.g. foot or hand), with bone offsets along
    -z. The hinge bends to the side its range allows (knee: positive angles, elbow: negative).
    The parent body's world pose is (parent_pos, parent_quat); any common frame works, e.g. give
    everything in the torso frame for an arm. The plane of the limb comes from `pole` (..., 3), the
    direction the middle joint (knee, elbow) should point to, or from `hinge_axis`, the wanted
    world direction of the hinge axis. Returns (q_limb, hinge_angle, q_end, extension): local
    rotations of the limb and end bodies (wxyz), the hinge angle, and the root-to-end distance over
    the straight-limb length (targets beyond `max_extension` are pulled in: check it).
    """
    bid = model.body(limb).id
    mid = next(b for b in range(model.nbody) if model.body_parentid[b] == bid)
    end = next(b for b in range(model.nbody) if model.body_parentid[b] == mid)
    hinge = [j for j in range(model.njnt) if model.jnt_bodyid[j] == mid]
    if len(hinge) != 1 or model.jnt_type[hinge[0]] != mujoco.mjtJoint.mjJNT_HINGE \
            or not np.allclose(model.jnt_axis[hinge[0]], [0, 1, 0]):
        raise ValueError(f"limb_ik: '{model.body(mid).name}' needs one hinge about its y axis")
    bend = -1.0 if model.jnt_range[hinge[0]][1] <= 0 else 1.0
    root_off = np.array(model.body_pos[bid])
    l1 = -float(model.body_pos[mid][2])
    l2 = -float(model.body_pos[end][2])
    if not (np.allclose(model.body_pos[mid][:2], 0) and np.allclose(model.body_pos[end][:2], 0)):
        raise ValueError("limb_ik needs the bone offsets along -z")
    end_pos = np.asarray(end_pos, np.float64)
    shape = end_pos.shape
    parent_pos = np.broadcast_to(np.asarray(parent_pos, np.float64), shape)
    parent_quat = np.broadcast_to(np.asarray(parent_quat, np.float64), shape[:-1] + (4,))
    end_quat = np.broadcast_to(np.asarray(end_quat, np.float64), shape[:-1] + (4,))
    root = parent_pos + quat.rotate(parent_quat, np.broadcast_to(root_off, shape))
    d = end_pos - root
    dist = np.linalg.norm(d, axis=-1)
    extension = dist / (l1 + l2)
    dist_c = np.clip(dist, abs(l1 - l2) + 1e-6, max_extension * (l1 + l2))
    cos_k = np.clip((dist_c ** 2 - l1 ** 2 - l2 ** 2) / (2 * l1 * l2), -1.0, 1.0)
    angle = bend * np.arccos(cos_k)
    # End relative to the limb root in the limb frame: (-l2 sin a, 0, -l1 - l2 cos a).
    u = np.stack([-l2 * np.sin(angle), np.zeros_like(angle), -l1 - l2 * np.cos(angle)], axis=-1)
    f1 = u / np.linalg.norm(u, axis=-1, keepdims=True)
    f2 = np.broadcast_to([0.0, 1.0, 0.0], f1.shape)
    f3 = np.cross(f1, f2)
    e1 = d / np.linalg.norm(d, axis=-1, keepdims=True)
    if hinge_axis is None:
        if pole is None:
            raise ValueError("limb_ik needs a pole or a hinge_axis")
        hinge_axis = bend * np.cross(np.broadcast_to(np.asarray(pole, np.float64), shape), e1)
    a = np.broadcast_to(np.asarray(hinge_axis, np.float64), shape)
    e2 = a - np.sum(a * e1, axis=-1, keepdims=True) * e1
    e2 = e2 / np.linalg.norm(e2, axis=-1, keepdims=True)
    e3 = np.cross(e1, e2)
    world = np.stack([e1, e2, e3], axis=-1)  # columns
    local = np.stack([f1, f2, f3], axis=-1)
    q_limb_world = matrix_to_quat(world @ np.swapaxes(local, -1, -2))
    q_limb = quat.mul(quat.conj(parent_quat), q_limb_world)
    q_hinge = quat.from_axis_angle(np.broadcast_to([0.0, 1.0, 0.0], shape), angle)
    q_mid_world = quat.mul(q_limb_world, q_hinge)
    q_end = quat.mul(quat.conj(q_mid_world), end_quat)
    return quat_pos(quat.normalize(q_limb)), angle, quat_pos(quat.normalize(q_end)), extension


def leg_ik(model: mujoco.MjModel, thigh: str, pelvis_pos, pelvis_quat, foot_pos, foot_quat, knee_axis=None,
           max_extension=0.999):
    """`limb_ik` for a leg: (hip_q, knee_angle, ankle_q, extension) that put the foot body at
    (foot_pos, foot_quat) in the world. `knee_axis` is the wanted world direction of the knee hinge
    axis; by default the foot's own y axis, so the knee points over the toes."""
    foot_pos = np.asarray(foot_pos, np.float64)
    if knee_axis is None:
        foot_quat = np.broadcast_to(np.asarray(foot_quat, np.float64), foot_pos.shape[:-1] + (4,))
        knee_axis = quat.rotate(foot_quat, np.broadcast_to([0.0, 1.0, 0.0], foot_pos.shape))
    return limb_ik(model, thigh, pelvis_pos, pelvis_quat, foot_pos, foot_quat, hinge_axis=knee_axis,
                   max_extension=max_extension)
