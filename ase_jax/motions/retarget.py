"""Retargeting a source skeleton's motion onto a character (docs/motions_import.md).

1. Source frame: the file's joint positions are turned Z-up (the up axis found from the rest pose:
   head above feet, or given) and into metres (the unit found from the skeleton's height, or given).
2. Targets scaled to the character's proportions: the pelvis follows the source's hips, its
   translation scaled by the ratio of the character's leg length to the source's; every other
   point is placed from its parent point along the source's bone direction at the *character's*
   bone length. So a target pose has the character's proportions and is reachable, up to the
   angles between bones that the two skeletons do not share.
3. Inverse kinematics with `mink` on the character's MJCF: a position task per point, the joint
   limits as constraints (hinge ranges via mink's ConfigurationLimit; the per-axis limits of the
   ball joints, docs/character.md, via `BallAxisLimit`), held joints frozen (the sword hand's
   grip), a posture task towards the previous frame (smoothness; warm start from it too) and a
   weak one towards the rest pose (for rotations no point determines, such as the neck's twist).
4. Ground: where the source's feet rest (slow, at the height of the lowest foot nearby), the
   character's resting foot is put on the floor, frame by frame; the shift is interpolated between
   rest frames, smoothed, and raised wherever a part of the character would be below the floor. A
   clip whose feet never rest is shifted as one piece, its lowest foot point on the floor.

Everything is numpy and C MuJoCo; mink and its QP solver come with `pip install -e .[bvh]`.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from ase_jax import quat
from ase_jax.character import Character, character_spec
from ase_jax.errors import MotionFileError
from ase_jax.motions.bvh import BvhMotion
from ase_jax.motions.bvh_maps import JointMap, character_points, point_offsets
from ase_jax.motions.kinematics import forward_kinematics

# Joints the source does not drive, held at a fixed pose (exp map, radians): the sword hand keeps
# the grip of the bundled clips (motions/make_bundled.py).
HELD_POSES: dict[str, dict[str, tuple[float, float, float]]] = {
    "sword_shield": {"right_wrist": (0.0, np.pi / 4, 0.0)},
}

# Known units, as metres per file unit, and the standing heights (m) we accept.
UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254}
PLAUSIBLE_HEIGHT_M = (0.4, 3.0)

# --avoid_self_collision (mink's CollisionAvoidanceLimit): two of the character's geoms nearer than
# SELF_COLLISION_DETECTION_M may close at most SELF_COLLISION_GAIN of their gap above
# SELF_COLLISION_CLEARANCE_M per IK iteration. With mink's default gain (0.85) and 3-5 cm, or a gain
# of 0.3 at 15 cm, the first frame's large IK steps from the rest pose jumped into the contact (the
# shield 0.8-1.1 cm into the torso on every frame of tests/test_bvh_verdict.py's clip), which the
# linearised limit then holds instead of undoing.
SELF_COLLISION_DETECTION_M = 0.15
SELF_COLLISION_CLEARANCE_M = 0.01
SELF_COLLISION_GAIN = 0.1

# A source foot rests on the floor at a frame where its slowest mapped point (ankle, toe) moves slower
# than REST_SPEED_M_S and its lowest one is within REST_HEIGHT_M of the lowest foot point within
# REST_WINDOW_S before or after; the floor shift between rest frames is smoothed over FLOOR_SMOOTHING_S.
REST_SPEED_M_S = 0.3
REST_HEIGHT_M = 0.05
REST_WINDOW_S = 0.5
FLOOR_SMOOTHING_S = 0.2

# Relative weights of the points' position tasks.
POINT_COST = {"pelvis": 2.0, "right_hand": 2.0, "left_hand": 2.0, "right_foot": 2.0, "left_foot": 2.0,
              "head_top": 0.5, "right_toe": 0.5, "left_toe": 0.5}
ORIENTATION_COST = 0.3  # per radian, where the source's joint frames are the character's
POSTURE_PREVIOUS_COST = 0.02
POSTURE_REST_COST = 0.002
IK_DAMPING = 1e-4
# A same-frames map (our own skeleton's names) matches the joints' rotations only if the source's rest
# pose is the character's: with a bone more than this far off (a T-pose source, say) its joint frames
# are not the character's and only positions are matched.
REST_POSE_TOLERANCE_DEG = 10.0


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    up: str  # "+y", "-y", "+z", "-z", "+x", "-x": the file's up axis
    unit_scale: float  # metres per file unit
    height_m: float  # standing height: the rest pose's highest joint or end site above its lowest, metres
    proportion_scale: float  # character leg length / source leg length (applied to the root path)
    fps: float
    rest_pose_difference_deg: float = 0.0  # largest angle between a source and a character rest bone
    rotations_matched: bool = False  # orientation targets used (a same-frames map and matching rest poses)


def _rest_height_vector(motion: BvhMotion, joint_map: JointMap) -> np.ndarray:
    rest = motion.rest_positions()
    idx = {n: i for i, n in enumerate(motion.joint_names)}
    head = rest[idx[joint_map.points["head"]]]
    feet = np.mean([rest[idx[joint_map.points[f]]] for f in ("right_foot", "left_foot")], axis=0)
    return head - feet


def detect_up(motion: BvhMotion, joint_map: JointMap) -> str:
    """The file's up axis: the axis along which the head stands above the feet in the rest pose."""
    v = _rest_height_vector(motion, joint_map)
    k = int(np.argmax(np.abs(v)))
    if np.abs(v[k]) < 0.8 * np.linalg.norm(v):
        raise MotionFileError(motion.path, f"cannot tell the up axis from the rest pose (head - feet = "
                                           f"{np.round(v, 3).tolist()}); pass --up=y or --up=z")
    return ("+" if v[k] > 0 else "-") + "xyz"[k]


def up_rotation(up: str) -> np.ndarray:
    """The rotation matrix taking the file's axes to ours (Z up)."""
    sign, axis = (-1.0 if up[0] == "-" else 1.0), up[-1]
    if axis == "z":
        return np.diag([1.0, sign, sign])
    if axis == "y":  # +y: a quarter turn about x (y -> z, z -> -y)
        return np.array([[1.0, 0, 0], [0, 0, -sign], [0, sign, 0]])
    return np.array([[0, 0, -sign], [0, 1.0, 0], [sign, 0, 0]])  # +x: a quarter turn about y


def standing_height(motion: BvhMotion, up: str) -> float:
    """The rest pose's extent along the up axis, in file units: from its lowest joint or end site (toe
    tips, else ankles) to its highest (the head's end site where the file has one, else the head joint)."""
    z = (motion.rest_extent() @ up_rotation(up).T)[:, 2]
    return float(z.max() - z.min())


def detect_unit_scale(height_in_file_units: float, path) -> float:
    """Metres per file unit: the first of m, cm, mm, inches giving a plausible human height."""
    for scale in UNIT_SCALES.values():
        if PLAUSIBLE_HEIGHT_M[0] <= height_in_file_units * scale <= PLAUSIBLE_HEIGHT_M[1]:
            return scale
    raise MotionFileError(path, f"cannot tell the unit: the skeleton is {height_in_file_units:.4g} file units tall "
                                f"(standing); pass --scale=METRES_PER_UNIT (e.g. 0.01 for cm)")


def _resample_at(num_in: int, fps_in: float, fps_out: float):
    """(source index below, source index above, weight) of each output frame, over the same duration;
    None when the rates and counts already agree."""
    num_out = int(np.floor((num_in - 1) / fps_in * fps_out + 1e-6)) + 1
    if num_out == num_in and np.isclose(fps_in, fps_out):
        return None
    t = np.arange(num_out) * fps_in / fps_out
    i0 = np.minimum(np.floor(t).astype(int), num_in - 1)
    return i0, np.minimum(i0 + 1, num_in - 1), t - i0


def resample(values: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear resampling of (T, ...) samples along time to fps_out, over the same duration."""
    at = _resample_at(values.shape[0], fps_in, fps_out)
    if at is None:
        return values
    i0, i1, w = at
    w = w.reshape((-1,) + (1,) * (values.ndim - 1))
    return values[i0] * (1 - w) + values[i1] * w


def resample_quat(q: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Slerp resampling of (T, ..., 4) quaternions along time to fps_out."""
    at = _resample_at(q.shape[0], fps_in, fps_out)
    if at is None:
        return q
    i0, i1, w = at
    w = w.reshape((-1,) + (1,) * (q.ndim - 2))
    return quat.slerp(q[i0], q[i1], np.broadcast_to(w, q[i0].shape[:-1]))


def _leg_length(pos: dict, side: str) -> float:
    return (np.linalg.norm(pos[f"{side}_shin"] - pos[f"{side}_thigh"])
            + np.linalg.norm(pos[f"{side}_foot"] - pos[f"{side}_shin"]))


def source_targets(motion: BvhMotion, joint_map: JointMap, character: Character, fps: float,
                   up: str | None = None, unit_scale: float | None = None) -> tuple[dict, dict, SourceInfo]:
    """Per-point target positions {name: (T, 3)} at `fps`, Z-up, in metres, in the character's
    proportions; orientation targets {name: (T, 4) wxyz} of the body-origin points when the map
    says the source's joint frames are the character's (else empty); what was found about the source."""
    if up is None:
        up = detect_up(motion, joint_map)
    rot = up_rotation(up)
    height = standing_height(motion, up)
    if unit_scale is None:
        unit_scale = detect_unit_scale(height, motion.path)
    idx = {n: i for i, n in enumerate(motion.joint_names)}
    points = [p for p in character_points() if p.name in joint_map.points]
    positions = resample(motion.positions(), motion.fps, fps) @ rot.T * unit_scale  # (T, J, 3)
    rest = motion.rest_positions() @ rot.T * unit_scale
    src = {p.name: positions[:, idx[joint_map.points[p.name]]] for p in points}
    src_rest = {p.name: rest[idx[joint_map.points[p.name]]] for p in points}
    char_rest = point_offsets(points, character.model)
    src_leg = 0.5 * (_leg_length(src_rest, "right") + _leg_length(src_rest, "left"))
    if src_leg < 1e-6:
        raise MotionFileError(motion.path, "the mapped leg joints coincide in the rest pose (leg length 0)")
    scale = 0.5 * (_leg_length(char_rest, "right") + _leg_length(char_rest, "left")) / src_leg
    targets = {"pelvis": src["pelvis"] * scale}
    for p in points[1:]:  # parents come first
        bone = src[p.name] - src[p.parent]
        length = np.linalg.norm(bone, axis=-1, keepdims=True)
        rest_dir = char_rest[p.name] - char_rest[p.parent]
        direction = np.where(length > 1e-9, bone / np.maximum(length, 1e-9), rest_dir / np.linalg.norm(rest_dir))
        targets[p.name] = targets[p.parent] + direction * np.linalg.norm(rest_dir)
    rest_deg = rest_pose_difference_deg(src_rest, char_rest, points)
    orientations = {}
    if joint_map.same_frames and rest_deg <= REST_POSE_TOLERANCE_DEG:
        q_up = np.zeros(4)
        mujoco.mju_mat2Quat(q_up, rot.reshape(-1))
        global_rot, _ = forward_kinematics(motion.local_rotation, motion.root_translation, motion.parent_indices,
                                           motion.offsets)
        global_rot = resample_quat(global_rot, motion.fps, fps)
        for p in points:
            if p.local == (0, 0, 0):
                g = global_rot[:, idx[joint_map.points[p.name]]]
                orientations[p.name] = quat.normalize(quat.mul(quat.mul(q_up, g), quat.conj(q_up)))
    return targets, orientations, SourceInfo(up, unit_scale, height * unit_scale, float(scale), motion.fps,
                                             rest_deg, bool(orientations))


def rest_pose_difference_deg(src_rest: dict, char_rest: dict, points) -> float:
    """Largest angle (degrees) between a bone (point minus its parent point) of the source's rest
    pose and the same bone of the character's (Z up, both): 0 when the rest poses agree, about 90 for
    a T-pose source retargeted onto a character whose arms hang down."""
    worst = 0.0
    for p in points:
        if p.parent is None:
            continue
        a, b = src_rest[p.name] - src_rest[p.parent], char_rest[p.name] - char_rest[p.parent]
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na > 1e-9 and nb > 1e-9:
            worst = max(worst, float(np.degrees(np.arccos(np.clip(a @ b / (na * nb), -1.0, 1.0)))))
    return worst


# ----------------------------------------------------------------------------------------------
# Inverse kinematics
# ----------------------------------------------------------------------------------------------

def _inv_right_jacobian(phi: np.ndarray) -> np.ndarray:
    """d log(q) / d(body-frame rotation increment) at the exp map `phi` (SO(3) right Jacobian inverse)."""
    theta = np.linalg.norm(phi)
    k = np.array([[0, -phi[2], phi[1]], [phi[2], 0, -phi[0]], [-phi[1], phi[0], 0]])
    if theta < 1e-6:
        return np.eye(3) + 0.5 * k
    coef = 1.0 / theta**2 - (1.0 + np.cos(theta)) / (2.0 * theta * np.sin(theta))
    return np.eye(3) + 0.5 * k + coef * (k @ k)


def ball_axis_limits(character: Character):
    """[(qpos_adr, dof_adr, lower (3,), upper (3,))] of the ball joints with per-axis limits; bounds
    at +-pi (no limit, where the exp map wraps) are left out (+-inf)."""
    out = []
    for j in character.joints:
        if j.kind != "ball" or not j.axis_limited:
            continue
        lo = np.array([r[0] for r in j.axis_ranges])
        hi = np.array([r[1] for r in j.axis_ranges])
        lo = np.where(lo <= -np.pi + 1e-3, -np.inf, lo)
        hi = np.where(hi >= np.pi - 1e-3, np.inf, hi)
        out.append((j.qpos_adr, j.dof_adr, lo, hi))
    return out


def exp_map_of_qpos(q: np.ndarray) -> np.ndarray:
    return quat.to_exp_map(np.asarray(q, np.float64))


def _ball_limit_class():
    import mink

    class BallAxisLimit(mink.Limit):
        """The per-axis limits of the ball joints' exp-map coordinates (docs/character.md),
        linearised: lower <= e + J_r^-1(e) dw <= upper, approached at `gain` per step."""

        def __init__(self, model, limits, gain=0.5):
            self.nv, self.limits, self.gain = model.nv, limits, gain

        def compute_qp_inequalities(self, configuration, dt):
            del dt
            rows, bounds = [], []
            for qadr, dadr, lo, hi in self.limits:
                e = exp_map_of_qpos(configuration.q[qadr:qadr + 4])
                jinv = _inv_right_jacobian(e)
                for k in range(3):
                    for sign, bound in ((1.0, hi[k]), (-1.0, lo[k])):
                        if np.isfinite(bound):
                            row = np.zeros(self.nv)
                            row[dadr:dadr + 3] = sign * jinv[k]
                            rows.append(row)
                            bounds.append(self.gain * sign * (bound - e[k]))
            if not rows:
                return mink.Constraint()
            return mink.Constraint(G=np.array(rows), h=np.array(bounds))

    return BallAxisLimit


def rest_qpos(character: Character) -> np.ndarray:
    """qpos0 with the held joints at their held pose."""
    q = character.model.qpos0.copy()
    for name, exp in HELD_POSES.get(character.name, {}).items():
        joint = next(j for j in character.joints if j.name == name)
        q[joint.qpos_adr:joint.qpos_adr + 4] = quat.from_exp_map(np.asarray(exp, np.float64))
    return q


def _initial_root(targets: dict, t: int) -> np.ndarray:
    """Root quaternion facing as the target pelvis, torso and thighs do at frame t."""
    z = targets["torso"][t] - targets["pelvis"][t]
    y = targets["left_thigh"][t] - targets["right_thigh"][t]
    z = z / np.linalg.norm(z)
    y = y - (y @ z) * z
    y = y / np.linalg.norm(y)
    m = np.stack([np.cross(y, z), y, z], axis=1)
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, m.reshape(-1))
    return q


@dataclasses.dataclass(frozen=True)
class IkResult:
    qpos: np.ndarray  # (T, nq)
    point_names: tuple[str, ...]
    point_error: np.ndarray  # (T, P) metres, solution vs target
    iterations: int


def solve(character: Character, targets: dict, orientations: dict | None = None, max_iters: int = 40,
          first_iters: int = 400, tolerance: float = 1e-5, avoid_self_collision: bool = False) -> IkResult:
    """Joint angles (qpos per frame) that put the character's points on the targets (and the
    body-origin points in `orientations` at those orientations). avoid_self_collision: the
    character's own parts (the pairs its self-collision meets: the shield and the torso, a hand and
    a thigh, ...) are kept apart as a constraint (mink's CollisionAvoidanceLimit), at the cost of
    the points they keep from their targets."""
    orientations = orientations or {}
    import mink

    points = [p for p in character_points() if p.name in targets]
    spec = character_spec(character)
    for p in points:
        spec.body(p.body).add_site(name=f"ik_{p.name}", pos=list(p.local))
    model = spec.compile()
    num_frames = targets["pelvis"].shape[0]

    configuration = mink.Configuration(model)
    tasks = [mink.FrameTask(f"ik_{p.name}", "site", position_cost=POINT_COST.get(p.name, 1.0),
                            orientation_cost=ORIENTATION_COST if p.name in orientations else 0.0) for p in points]
    previous = mink.PostureTask(model, cost=POSTURE_PREVIOUS_COST)
    rest = mink.PostureTask(model, cost=POSTURE_REST_COST)
    q0 = rest_qpos(character)
    rest.set_target(q0)
    limits = [mink.ConfigurationLimit(model, gain=0.5), _ball_limit_class()(model, ball_axis_limits(character))]
    if avoid_self_collision:
        geoms = character_geoms(model)
        limits.append(mink.CollisionAvoidanceLimit(model, [(geoms, geoms)], gain=SELF_COLLISION_GAIN,
                                                   minimum_distance_from_collisions=SELF_COLLISION_CLEARANCE_M,
                                                   collision_detection_distance=SELF_COLLISION_DETECTION_M))
    held = [next(j for j in character.joints if j.name == n) for n in HELD_POSES.get(character.name, {})]
    held_dofs = [d for j in held for d in range(j.dof_adr, j.dof_adr + j.num_dof)]
    constraints = [mink.DofFreezingTask(model, dof_indices=held_dofs)] if held_dofs else []

    q = q0.copy()
    q[:3] = targets["pelvis"][0]
    q[3:7] = _initial_root(targets, 0)
    configuration.update(q)
    site_ids = [model.site(f"ik_{p.name}").id for p in points]
    qpos = np.zeros((num_frames, model.nq))
    errors = np.zeros((num_frames, len(points)))
    total_iters, dt = 0, 1.0
    for t in range(num_frames):
        for task, p in zip(tasks, points):
            rotation = mink.SO3(orientations[p.name][t]) if p.name in orientations else mink.SO3.identity()
            task.set_target(mink.SE3.from_rotation_and_translation(rotation, targets[p.name][t]))
        previous.set_target(configuration.q.copy())
        for _ in range(first_iters if t == 0 else max_iters):
            v = mink.solve_ik(configuration, [*tasks, previous, rest], dt, "daqp", damping=IK_DAMPING,
                              limits=limits, constraints=constraints)
            configuration.integrate_inplace(v, dt)
            total_iters += 1
            if np.abs(v).max() * dt < tolerance:
                break
        qpos[t] = configuration.q
        site_pos = configuration.data.site_xpos[site_ids]
        errors[t] = np.linalg.norm(site_pos - np.stack([targets[p.name][t] for p in points]), axis=-1)
    return IkResult(qpos, tuple(p.name for p in points), errors, total_iters)


# ----------------------------------------------------------------------------------------------
# Floor
# ----------------------------------------------------------------------------------------------

def geom_lowest_z(model: mujoco.MjModel, data: mujoco.MjData, geoms) -> np.ndarray:
    """Height of the lowest point of each of `geoms` after mj_kinematics (spheres, capsules,
    cylinders, boxes)."""
    out = np.full(len(geoms), np.inf)
    for i, g in enumerate(geoms):
        size, r, z = model.geom_size[g], data.geom_xmat[g].reshape(3, 3), data.geom_xpos[g][2]
        kind = model.geom_type[g]
        if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
            out[i] = z - size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            out[i] = z - abs(r[2, 2]) * size[1] - size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
            out[i] = z - abs(r[2, 2]) * size[1] - size[0] * np.sqrt(max(0.0, 1.0 - r[2, 2] ** 2))
        elif kind == mujoco.mjtGeom.mjGEOM_BOX:
            out[i] = z - np.abs(r[2]) @ size[:3]
    return out


def foot_geoms(character: Character) -> dict:
    """{contact body name: its geom ids} for the character's contact bodies (the feet)."""
    model = character.model
    out = {}
    for b in character.contact_body_ids:
        out[character.body_names[b]] = [g for g in range(model.ngeom) if model.geom_bodyid[g] == b + 1]
    return out


def character_geoms(model: mujoco.MjModel) -> list[int]:
    """The character's colliding geoms (not the floor's, not the visual-only ones)."""
    return [g for g in range(model.ngeom)
            if model.geom_bodyid[g] > 0 and model.geom_contype[g] | model.geom_conaffinity[g]]


def lowest_points(character: Character, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((T, F) height of each foot's lowest point per frame, in `foot_geoms` order; (T,) height of
    the character's lowest point per frame)."""
    model, data = character.model, mujoco.MjData(character.model)
    feet = foot_geoms(character)
    body = character_geoms(model)
    out, lowest = np.zeros((qpos.shape[0], len(feet))), np.zeros(qpos.shape[0])
    for t in range(qpos.shape[0]):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        out[t] = [geom_lowest_z(model, data, g).min() for g in feet.values()]
        lowest[t] = geom_lowest_z(model, data, body).min()
    return out, lowest


def _window_min(x: np.ndarray, half: int) -> np.ndarray:
    padded = np.pad(x, half, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).min(axis=-1)


def foot_rest_frames(targets: dict, fps: float) -> dict:
    """{"right_foot": (T,) bool, "left_foot": ...}: where the source's feet rest on the floor (module
    constants), from the targets (the source in the character's proportions): slow, and as low as
    the feet go nearby."""
    low, speed = [], []
    for side in ("right", "left"):
        points = [targets[f"{side}_foot"]] + ([targets[f"{side}_toe"]] if f"{side}_toe" in targets else [])
        low.append(np.min([p[:, 2] for p in points], axis=0))
        speed.append(np.min([np.linalg.norm(np.gradient(p, axis=0), axis=-1) * fps for p in points], axis=0))
    low, speed = np.stack(low, axis=1), np.stack(speed, axis=1)
    floor = _window_min(low.min(axis=1), max(1, int(round(REST_WINDOW_S * fps))))
    rest = (speed < REST_SPEED_M_S) & (low < floor[:, None] + REST_HEIGHT_M)
    return {"right_foot": rest[:, 0], "left_foot": rest[:, 1]}


def ground_shift(character: Character, qpos: np.ndarray, rest: dict | None, fps: float) -> np.ndarray:
    """(T,) vertical shift per frame that puts the resting feet (`rest`: `foot_rest_frames`) on the
    floor: at a rest frame the lowest resting foot touches it; between rest frames the shift is
    interpolated (held before the first and after the last), smoothed over FLOOR_SMOOTHING_S, and
    raised where any part of the character would be below the floor. Without rest frames: one shift,
    the clip's lowest foot point on the floor."""
    feet, lowest = lowest_points(character, qpos)
    rest = None if rest is None else np.stack([rest[name] for name in foot_geoms(character)], axis=1)
    if rest is None or not rest.any():
        return np.full(qpos.shape[0], -feet.min())
    frames = np.flatnonzero(rest.any(axis=1))
    at_rest = -np.where(rest[frames], feet[frames], np.inf).min(axis=1)
    shift = np.interp(np.arange(qpos.shape[0]), frames, at_rest)
    half = int(round(FLOOR_SMOOTHING_S * fps / 2))
    if half > 0:
        shift = np.convolve(np.pad(shift, half, mode="edge"), np.full(2 * half + 1, 1 / (2 * half + 1)), "valid")
    return np.maximum(shift, -lowest)


def ground(character: Character, qpos: np.ndarray, rest: dict | None = None, fps: float = 30.0) -> np.ndarray:
    """The clip shifted vertically by `ground_shift`: feet on the floor where the source's rest."""
    qpos = qpos.copy()
    qpos[:, 2] += ground_shift(character, qpos, rest, fps)
    return qpos
