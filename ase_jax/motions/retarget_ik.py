"""Step 3 of retargeting (docs/motions_import.md): inverse kinematics with `mink` on the
character's MJCF, from the targets of `retarget_source.source_targets`.

A position task per point, the joint limits as constraints (hinge ranges via mink's
ConfigurationLimit; the per-axis limits of the ball joints, docs/character.md, via `BallAxisLimit`),
held joints frozen (the sword hand's grip), a posture task towards the previous frame (smoothness;
warm start from it too) and a weak one towards the rest pose (for rotations no point determines,
such as the neck's twist).

Everything is numpy and C MuJoCo; mink and its QP solver come with `pip install -e .[bvh]`.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from ase_jax import quat
from ase_jax.character import Character, character_spec
from ase_jax.motions.bvh_maps import character_points
from ase_jax.motions.geom_heights import character_geoms

# Joints the source does not drive, held at a fixed pose (exp map, radians): the sword hand keeps
# the grip of the bundled clips (READY in motions/bundled_clips/upper_body.py).
HELD_POSES: dict[str, dict[str, tuple[float, float, float]]] = {
    "sword_shield": {"right_wrist": (0.0, np.pi / 4, 0.0)},
}

# --avoid_self_collision (mink's CollisionAvoidanceLimit): two of the character's geoms nearer than
# SELF_COLLISION_DETECTION_M may close at most SELF_COLLISION_GAIN of their gap above
# SELF_COLLISION_CLEARANCE_M per IK iteration. With mink's default gain (0.85) and 3-5 cm, or a gain
# of 0.3 at 15 cm, the first frame's large IK steps from the rest pose jumped into the contact (the
# shield 0.8-1.1 cm into the torso on every frame of tests/test_bvh_verdict.py's clip), which the
# linearised limit then holds instead of undoing.
SELF_COLLISION_DETECTION_M = 0.15
SELF_COLLISION_CLEARANCE_M = 0.01
SELF_COLLISION_GAIN = 0.1

# Relative weights of the points' position tasks.
POINT_COST = {"pelvis": 2.0, "right_hand": 2.0, "left_hand": 2.0, "right_foot": 2.0, "left_foot": 2.0,
              "head_top": 0.5, "right_toe": 0.5, "left_toe": 0.5}
ORIENTATION_COST = 0.3  # per radian, where the source's joint frames are the character's
POSTURE_PREVIOUS_COST = 0.02
POSTURE_REST_COST = 0.002
IK_DAMPING = 1e-4


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
