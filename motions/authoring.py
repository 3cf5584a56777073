"""Authoring motion clips from keyframes: the pieces `motions/make_bundled.py` is built from.

This is a script-side module, not part of the `ase_jax` package: only the generator uses it, and
it needs scipy (interpolation, smoothing, rotation matrices), which the runtime does not
(`pip install -e .[authoring]`). `make_bundled.py` puts this folder on sys.path and imports it as
`authoring`.

A clip is authored as per-frame *local* joint rotations (wxyz) plus a root translation, then
`make_clip` adds the stored body velocities the way poselib computed them for the ASE data (docs/reference.md
§1.1) and returns a `RawClip` that `save_clip` writes in the ASE `.npy` layout.

Typical use:

* `skeleton_from_mjcf` gives the clip's skeleton tree (body names, parents, bone offsets).
* Upper-body joints come from keyframes: `interpolate_keys` (monotone cubic, optionally looping) of
  exp-map vectors / hinge angles, then `pose_to_local_rotation` (joint name -> exp map or angle).
* Legs come from foot placements: `foot_track` turns a list of `FootPlant`s (where and when a foot is
  planted) into world foot poses (flat stance, toe-off and heel-strike rolls, lifted swing), and
  `leg_ik` solves hip / knee / ankle for a given pelvis pose, so a planted foot does not move at all
  and its sole touches the floor exactly. This replaces a "ground and fix feet" post-pass.
  `limb_ik` is the same solver for arms (e.g. a sword hand following a path in the torso frame).
* `measure_clip` gives the plausibility numbers (lowest geom, foot heights, foot slide while in
  contact, self-penetration, joint-limit use) computed with MuJoCo kinematics on the MJCF, from the
  qpos that `ase_jax.motions.convert` makes of the clip (the same conversion training uses).

All functions are numpy (float64), deterministic, and take the MuJoCo model of the character
(`measure_clip` the loaded `Character`).
Quaternions are wxyz except inside `RawClip`, which stores xyzw like the ASE files.
"""

from __future__ import annotations

import copy
import dataclasses

import mujoco
import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from ase_jax import quat
from ase_jax.motions import geom_heights
from ase_jax.character import Character, Joint, read_joints
from ase_jax.motions.convert import local_rotation_to_qpos
from ase_jax.motions.kinematics import forward_kinematics
from ase_jax.motions.npy_format import RawClip, Skeleton

# Root row of `local_translation` in the ASE sword-and-shield files (docs/reference.md §1.1). Forward
# kinematics never reads it (the root uses `root_translation`), so it only matters for fidelity.
ASE_ROOT_OFFSET = (0.0, 0.0, 1.0)

# poselib smooths the stored velocities with a Gaussian of this many frames (docs/reference.md §1.1).
VELOCITY_SMOOTHING_SIGMA = 2.0


# ----------------------------------------------------------------------------------------------
# Skeleton and clip construction
# ----------------------------------------------------------------------------------------------

def skeleton_from_mjcf(model: mujoco.MjModel, root_offset=ASE_ROOT_OFFSET) -> Skeleton:
    """The skeleton tree of the character in `model` (bodies 1..nbody-1, in MuJoCo order).

    Node names are the body names, parents are MuJoCo parents minus one (-1 for the root) and the
    local translations are the MJCF body `pos` offsets, rounded to float32 as the file stores them.
    The root row is `root_offset`, by default (0, 0, 1) like the ASE files; it is never used by
    forward kinematics (the root position is the clip's `root_translation`).
    """
    names = tuple(model.body(i).name for i in range(1, model.nbody))
    parents = np.array([int(model.body_parentid[i]) - 1 for i in range(1, model.nbody)], np.int64)
    offsets = np.array(model.body_pos[1:], np.float64)
    offsets[0] = root_offset
    offsets = offsets.astype(np.float32).astype(np.float64)
    return Skeleton(names, parents, offsets)


def _quat_pos(q):
    """The same rotation with w >= 0 (poselib's `quat_pos`)."""
    return np.where(q[..., :1] < 0, -q, q)


def compute_velocities(local_rotation_wxyz, root_translation, fps, skeleton: Skeleton):
    """World linear and angular velocity of every body, as poselib stored them (docs/reference.md §1.1).

    poselib `SkeletonMotion._compute_velocity`: np.gradient of the global body positions along time,
    divided by dt, then a Gaussian filter (sigma = 2 frames, mode 'nearest') along time.
    `_compute_angular_velocity`: per frame the rotation q_{t+1} q_t^-1 of the *global* body
    rotations, made w >= 0 and converted to angle in [0, pi] (angle = acos(2 w^2 - 1)) times the
    unit axis, divided by dt; the last frame gets the identity (zero velocity) before the same
    Gaussian filter. Returns (global_velocity (T, B, 3), global_angular_velocity (T, B, 3)).
    """
    dt = 1.0 / float(fps)
    global_rot, global_pos = forward_kinematics(np.asarray(local_rotation_wxyz, np.float64),
                                                np.asarray(root_translation, np.float64),
                                                skeleton.parent_indices, skeleton.local_translation)
    velocity = np.gradient(global_pos, axis=-3) / dt
    velocity = gaussian_filter1d(velocity, VELOCITY_SMOOTHING_SIGMA, axis=-3, mode="nearest")

    diff = np.zeros_like(global_rot)
    diff[..., 0] = 1.0
    d = quat.mul(global_rot[1:], quat.conj(global_rot[:-1]))
    diff[:-1] = _quat_pos(d / np.linalg.norm(d, axis=-1, keepdims=True))
    angle = np.arccos(np.clip(2.0 * diff[..., 0] ** 2 - 1.0, -1.0, 1.0))
    axis = diff[..., 1:] / np.clip(np.linalg.norm(diff[..., 1:], axis=-1, keepdims=True), 1e-9, None)
    angular = axis * angle[..., None] / dt
    angular = gaussian_filter1d(angular, VELOCITY_SMOOTHING_SIGMA, axis=-3, mode="nearest")
    return velocity, angular


def make_clip(local_rotation_wxyz, root_translation, fps, skeleton: Skeleton, path: str = "") -> RawClip:
    """A `RawClip` (what `save_clip` writes) with poselib-style stored velocities.

    `local_rotation_wxyz` (T, B, 4): local joint rotations, [:, 0] the root's global rotation; they
    are normalised and made w >= 0 (the root keeps sign continuity over time instead).
    `root_translation` (T, 3): world position of the root body.
    """
    rot = np.array(local_rotation_wxyz, np.float64)
    rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
    rot[:, 1:] = _quat_pos(rot[:, 1:])
    rot[:, 0] = continuous_sign(rot[:, 0])
    root = np.array(root_translation, np.float64)
    if rot.ndim != 3 or rot.shape[1:] != (skeleton.num_bodies, 4) or root.shape != (rot.shape[0], 3):
        raise ValueError(f"expected rotations (T, {skeleton.num_bodies}, 4) and root (T, 3), got "
                         f"{rot.shape} and {root.shape}")
    vel, ang = compute_velocities(rot, root, fps, skeleton)
    return RawClip(str(path), float(fps), skeleton, quat.to_xyzw(rot), root, vel, ang)


def continuous_sign(q):
    """Flips quaternions (T, ..., 4) along time so each is in the hemisphere of the one before."""
    q = np.array(q, np.float64)
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], axis=-1, keepdims=True) < 0
        q[t] = np.where(flip, -q[t], q[t])
    return q


# ----------------------------------------------------------------------------------------------
# Joints, poses and keyframes
# ----------------------------------------------------------------------------------------------

def joint_table(model: mujoco.MjModel) -> dict[str, Joint]:
    """The non-root joints of the character by MJCF joint name."""
    return {joint.name: joint for joint in read_joints(model)}


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


# ----------------------------------------------------------------------------------------------
# Feet and legs
# ----------------------------------------------------------------------------------------------

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
    return _quat_pos(quat.normalize(q_limb)), angle, _quat_pos(quat.normalize(q_end)), extension


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


def matrix_to_quat(m) -> np.ndarray:
    """Rotation matrices (..., 3, 3) to quaternions (..., 4) wxyz with w >= 0."""
    m = np.asarray(m, np.float64)
    flat = Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat()  # xyzw
    return _quat_pos(quat.from_xyzw(flat).reshape(m.shape[:-2] + (4,)))


# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------

def geom_lowest_z(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """Height of the lowest point of every geom (planes: +inf) after mj_kinematics."""
    out = np.full(model.ngeom, np.inf)
    solids = [g for g in range(model.ngeom) if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_PLANE]
    out[solids] = geom_heights.geom_lowest_z(model, data, solids)
    return out


def _self_collision_model(model: mujoco.MjModel) -> mujoco.MjModel:
    """A copy of the model in which the character's geoms also collide with each other."""
    m = copy.copy(model)
    char = model.geom_bodyid > 0
    m.geom_contype[char] = m.geom_contype[char] | 4
    m.geom_conaffinity[char] = m.geom_conaffinity[char] | 4
    m.body_contype[1:] = m.body_contype[1:] | 4  # the broad phase filters bodies by these
    m.body_conaffinity[1:] = m.body_conaffinity[1:] | 4
    m.geom_margin[:] = 0.0
    m.geom_gap[:] = 0.0
    return m


@dataclasses.dataclass
class ClipMeasures:
    num_frames: int
    seconds: float
    root_speed: float  # horizontal root displacement / duration (m/s)
    min_geom_z: float  # lowest point of any character geom over all frames
    lowest_non_foot_z: float  # lowest point of any geom that is not a foot
    max_lowest_foot_z: float  # over frames, height of the lower foot (0 = a foot always touches)
    max_foot_slide: float  # largest horizontal travel of a foot corner while it touches the floor
    max_self_penetration: float  # deepest overlap of two non-adjacent character geoms
    self_penetration_pair: str
    max_joint_limit_excess: float  # largest excess over a joint's range (rad; <= 0 within range)
    max_joint_limit_joint: str


def measure_clip(character: Character, clip: RawClip, contact_height=0.005) -> ClipMeasures:
    """Plausibility numbers of a clip for `character` (see `ClipMeasures`)."""
    model = character.model
    rot = quat.from_xyzw(clip.local_rotation)
    qpos = local_rotation_to_qpos(clip.root_translation, rot, character)
    data = mujoco.MjData(model)
    coll_model = _self_collision_model(model)
    coll_data = mujoco.MjData(coll_model)
    foot_bodies = [b for b in range(model.nbody) if model.body(b).name.endswith("foot")]
    foot_geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] in foot_bodies]
    char_geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] > 0]
    other_geoms = [g for g in char_geoms if g not in foot_geoms]
    corners_local = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    num_frames = qpos.shape[0]
    lowest = np.zeros((num_frames, model.ngeom))
    corners = np.zeros((num_frames, len(foot_geoms), 8, 3))
    pen, pen_pair = 0.0, ""
    for t in range(num_frames):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        lowest[t] = geom_lowest_z(model, data)
        for k, g in enumerate(foot_geoms):
            r = data.geom_xmat[g].reshape(3, 3)
            corners[t, k] = data.geom_xpos[g] + (corners_local * model.geom_size[g]) @ r.T
        coll_data.qpos[:] = qpos[t]
        mujoco.mj_fwdPosition(coll_model, coll_data)
        for c in coll_data.contact[:coll_data.ncon]:
            if min(c.geom1, c.geom2) == 0:
                continue  # the floor
            if -c.dist > pen:
                pen = -c.dist
                pen_pair = f"{model.geom(c.geom1).name}/{model.geom(c.geom2).name} @ frame {t}"
    # Foot slide: horizontal travel of each corner over consecutive frames in which it touches.
    touching = corners[..., 2] < contact_height
    both = touching[1:] & touching[:-1]
    step = np.linalg.norm(corners[1:, ..., :2] - corners[:-1, ..., :2], axis=-1) * both
    slide = 0.0
    for k in range(len(foot_geoms)):
        for c in range(8):
            run = 0.0
            for s, b in zip(step[:, k, c], both[:, k, c]):
                run = run + s if b else 0.0
                slide = max(slide, run)
    # Joint limits: how far any joint goes past its MJCF range (radians, 0 = within).
    worst, worst_joint = 0.0, ""
    for info in character.joints:
        if info.kind == "ball":
            _, ang = quat.to_axis_angle(rot[:, info.body])
            over = np.abs(ang) - info.range[1]
        else:
            v = qpos[:, info.qpos_adr]
            over = np.maximum(info.range[0] - v, v - info.range[1])
        if float(over.max()) > worst or not worst_joint:
            worst, worst_joint = float(over.max()), info.name
    disp = clip.root_translation[-1] - clip.root_translation[0]
    return ClipMeasures(
        num_frames=num_frames, seconds=clip.length,
        root_speed=float(np.linalg.norm(disp[:2]) / clip.length),
        min_geom_z=float(lowest[:, char_geoms].min()),
        lowest_non_foot_z=float(lowest[:, other_geoms].min()),
        max_lowest_foot_z=float(lowest[:, foot_geoms].min(axis=1).max()),
        max_foot_slide=float(slide),
        max_self_penetration=float(pen), self_penetration_pair=pen_pair,
        max_joint_limit_excess=worst, max_joint_limit_joint=worst_joint,
    )
