"""The reference's PD drive and per-axis joint limits, for MJX (inside jit) and C MuJoCo alike.

The reference drives every DoF with PhysX's position drive, which clamps its whole force:

    tau = clip(kp * (q* - q) - kd * qdot, -F, F)

MuJoCo has no such actuator. A `<position kp forcerange>` actuator beside joint `damping` clamps only
the P term, and the passive damper then caps every joint's speed at F / kd (docs/character.md). Moving
kd into the actuator (`kv`) makes the damping explicit, which is unstable at 120 Hz for the light
wrist and neck. So the MJCF keeps kd as the joints' (implicitly integrated) damping, its actuators are
unclamped `<position kp>` servos, and before each physics step `controls` chooses the servo target so
that the servo's force plus the damper's equals the clamped total above:

    kp * (ctrl - q) - kd * qdot = clip(kp * (q* - q) - kd * qdot, -F, F).

q is the actuator's length: a hinge's angle, or one component of a ball joint's exponential map
(what MuJoCo's ball-joint actuators with gear (1 0 0), (0 1 0), (0 0 1) measure), and qdot the
DoF's velocity. F is `pd_torque_limit` (config): the MJCF's actuator `forcerange`, which holds the
reference motor gear, a multiple of it, or none.

Per-axis limits. The reference limits each of a 3-DoF joint's exp-map coordinates separately (hip
x -60..15 deg, y -140..60 deg, ...). MuJoCo limits a ball joint only by a cone, and MJX has no custom
constraints, so the limit is a one-sided spring of `LIMIT_STIFFNESS` x kp, with damping kd while the
joint moves further out, applied as a generalised force (qfrc_applied). Each limit is the
`lengthrange` of the ball-joint axis's actuator, in radians (MuJoCo never converts it). Hinges keep MuJoCo's own
(hard) joint limits. Why the spring is stable at 120 Hz: the joint's implicit damper adds kd * dt to
its effective inertia, so semi-implicit Euler stays stable for explicit stiffness up to
4 (I / dt^2 + kd / dt) = 4 I / dt^2 + 48 kp (kd = 0.1 kp, dt = 1/120 s), well above the
(1 + LIMIT_STIFFNESS) kp = 11 kp a joint meets in a limit. The same argument keeps the explicit kd * qdot
in the servo's target stable.
"""

from __future__ import annotations

import dataclasses
import os

import mujoco
import numpy as np

from ase_jax.config.sections import parse_torque_limit
from ase_jax.quat import _xp  # numpy or jax.numpy, by the inputs' type

# Stiffness of the per-axis limit springs in multiples of the axis's kp. A drive pushing into a limit
# with its whole F then stops F / (LIMIT_STIFFNESS kp) beyond it: 2.3 deg at a hip, 1.4 deg at a shoulder.
LIMIT_STIFFNESS = 10.0
# Deeper than this (radians) a limit "penetration" is the exp map's jump at pi, not a real one: a ball
# joint turned past 180 degrees flips its coordinates from -pi to pi (shoulders reach -180 deg), and a
# limit spring would then kick it the long way round. Such states get no limit force.
LIMIT_MAX_DEPTH = 0.5
# Largest servo error (radians) the drive asks of an actuator; see PDDrive.controls.
MAX_SERVO_ERROR = 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class PDDrive:
    """Gains, torque limits and per-axis limits of a character's DoFs (numpy, one entry per actuator)."""

    kp: np.ndarray
    kd: np.ndarray
    torque_limit: np.ndarray  # F; inf where unlimited
    limit_lo: np.ndarray  # per-axis limits of ball-joint axes; -inf / inf where none (hinges: MuJoCo's)
    limit_hi: np.ndarray
    ball_qpos: np.ndarray  # (num_balls, 4) qpos indices of each ball joint's quaternion
    hinge_qpos: np.ndarray  # (num_hinges,) qpos index of each hinge
    order: np.ndarray  # (nu,) actuator i's index in [ball exp maps (3 each, in ball order), hinge angles]

    @property
    def num_actions(self) -> int:
        return self.kp.shape[0]

    def lengths(self, qpos):
        """(..., nu) actuator lengths of qpos (..., nq): hinge angles and ball-joint exp-map components."""
        xp = _xp(qpos)
        quat = qpos[..., self.ball_qpos]
        quat = quat / xp.linalg.norm(quat, axis=-1, keepdims=True)
        exp_map = _exp_map(quat, xp)
        flat = exp_map.reshape(exp_map.shape[:-2] + (-1,))
        return xp.concatenate([flat, qpos[..., self.hinge_qpos]], axis=-1)[..., self.order]

    def controls(self, qpos, qvel, target):
        """(ctrl, applied, saturated) for one physics step from the state (qpos, qvel) and the PD
        targets (..., nu): the servo targets, the generalised forces for qfrc_applied[6:6 + nu]
        (per-axis limits, and any drive torque the servo cannot give) and which drives are at their
        torque limit."""
        xp = _xp(qpos, qvel, target)
        length = self.lengths(qpos)
        vel = qvel[..., 6: 6 + self.num_actions]
        pd = self.kp * (target - length) - self.kd * vel
        torque = xp.clip(pd, -self.torque_limit, self.torque_limit)
        # The servo gives kp * (ctrl - length) and the joint's damper -kd * vel; MuJoCo wraps a
        # ball-joint servo's error to (-pi, pi], so the servo takes at most MAX_SERVO_ERROR of it
        # and qfrc_applied the rest (a fast joint braking hard needs errors of 0.1 x its speed).
        servo = xp.clip((torque + self.kd * vel) / self.kp, -MAX_SERVO_ERROR, MAX_SERVO_ERROR)
        rest = torque + self.kd * vel - self.kp * servo
        above = length - self.limit_hi
        below = self.limit_lo - length
        above = xp.where(above < LIMIT_MAX_DEPTH, xp.maximum(above, 0.0), 0.0)
        below = xp.where(below < LIMIT_MAX_DEPTH, xp.maximum(below, 0.0), 0.0)
        outward = ((above > 0) & (vel > 0)) | ((below > 0) & (vel < 0))
        limit = LIMIT_STIFFNESS * self.kp * (below - above) - xp.where(outward, self.kd * vel, 0.0)
        return length + servo, rest + limit, xp.abs(pd) >= self.torque_limit


def _exp_map(quat, xp):
    """Axis x angle of unit quaternions (wxyz) as MuJoCo's mju_quat2Vel: angle = 2 atan2(|v|, w) in
    (-pi, pi] (atan2 keeps float32 precision near the identity, where arccos(w) loses it)."""
    vec = quat[..., 1:]
    sin_half = xp.linalg.norm(vec, axis=-1, keepdims=True)
    angle = 2.0 * xp.arctan2(sin_half, quat[..., :1])
    angle = xp.where(angle > np.pi, angle - 2.0 * np.pi, angle)
    small = sin_half < 1e-12
    return vec * xp.where(small, 2.0, angle / xp.where(small, 1.0, sin_half))


def make_drive(character, torque_limit="gear") -> PDDrive:
    """The drive of a character (`ase_jax.character.Character`) with `pd_torque_limit` = torque_limit."""
    model = character.model
    nu = model.nu
    factor = parse_torque_limit(torque_limit)
    gear = model.actuator_forcerange[:, 1].astype(np.float64)
    limit = np.full(nu, np.inf) if factor is None else factor * gear
    lo, hi = np.full(nu, -np.inf), np.full(nu, np.inf)
    balls, hinges, slots = [], [], np.zeros(nu, np.int64)
    num_ball_dofs = 3 * sum(j.kind == "ball" for j in character.joints)
    for joint in character.joints:
        first = joint.dof_adr - 6
        if joint.kind == "ball":
            slots[first: first + 3] = 3 * len(balls) + np.arange(3)
            balls.append(joint.qpos_adr + np.arange(4))
            if joint.axis_limited:
                lo[first: first + 3] = [r[0] for r in joint.axis_ranges]
                hi[first: first + 3] = [r[1] for r in joint.axis_ranges]
        else:
            slots[first] = num_ball_dofs + len(hinges)
            hinges.append(joint.qpos_adr)
    return PDDrive(
        kp=model.actuator_gainprm[:, 0].astype(np.float64),
        kd=model.dof_damping[6: 6 + nu].astype(np.float64),
        torque_limit=limit, limit_lo=lo, limit_hi=hi,
        ball_qpos=np.asarray(balls, np.int64).reshape(-1, 4),
        hinge_qpos=np.asarray(hinges, np.int64), order=slots)


# --- C MuJoCo ----------------------------------------------------------------------------------


def mujoco_step(model, data, drive: PDDrive, target, nstep: int = 1) -> np.ndarray:
    """`nstep` C MuJoCo steps of `data` with the drive towards `target` (nu,), as the MJX env does;
    returns the (nstep, nu) saturation flags (drive at its torque limit)."""
    nu = drive.num_actions
    saturated = np.zeros((nstep, nu), bool)
    for k in range(nstep):
        ctrl, applied, saturated[k] = drive.controls(data.qpos, data.qvel, target)
        data.ctrl[:nu] = ctrl
        data.qfrc_applied[6: 6 + nu] = applied
        mujoco.mj_step(model, data)
    return saturated


def mujoco_rollout(model, drive: PDDrive, states: np.ndarray, target: np.ndarray, nstep: int) -> np.ndarray:
    """Many C MuJoCo rollouts at once (multi-threaded `mujoco.rollout`, one step per call so that
    the drive can act between steps): (N, nstate) mjSTATE_FULLPHYSICS states after `nstep` steps
    towards the targets (N, nu)."""
    from mujoco import rollout

    nq, nv, nu = model.nq, model.nv, drive.num_actions
    spec = int(mujoco.mjtState.mjSTATE_CTRL) | int(mujoco.mjtState.mjSTATE_QFRC_APPLIED)
    control = np.zeros((states.shape[0], 1, model.nu + nv))
    datas = [mujoco.MjData(model) for _ in range(os.cpu_count() or 1)]
    with rollout.Rollout(nthread=len(datas)) as runner:
        for _ in range(nstep):
            qpos, qvel = states[:, 1: 1 + nq], states[:, 1 + nq: 1 + nq + nv]
            ctrl, applied, _ = drive.controls(qpos, qvel, target)
            control[:, 0, :nu] = ctrl
            control[:, 0, model.nu + 6: model.nu + 6 + nu] = applied
            states = runner.rollout(model, datas, states, control, control_spec=spec)[0][:, -1]
    return states
