"""The character's dynamics: the reference's PD drive (P and D clamped together), per-axis joint
limits and self-collision, in C MuJoCo with the env's drive (ase_jax.drive). The MJX side of the
same drive is checked in test_character.py (one step against C MuJoCo) and test_env.py (10 s of
random full-range actions)."""

import mujoco
import numpy as np
import pytest

from ase_jax import quat
from ase_jax.character import character_spec, load_character
from ase_jax.drive import make_drive, mujoco_step
from ase_jax.motions.dataset import load_dataset
from conftest import BUNDLED_YAML, REALLUSION_YAML, require_reference_data


def _in_the_air(character, self_collision=False):
    model = character_spec(character, self_collision).compile()
    model.opt.gravity[:] = 0.0
    data = mujoco.MjData(model)
    data.qpos[2] = 2.0
    return model, data


def _joint_of(character, i):
    return next(j for j in character.joints if j.dof_adr - 6 <= i < j.dof_adr - 6 + j.num_dof)


def _set_dof(character, data, i, value):
    """Puts DoF i (actuator order) at `value`, the rest of its joint at zero."""
    joint = _joint_of(character, i)
    if joint.kind == "ball":
        axis = np.eye(3)[i - (joint.dof_adr - 6)]
        data.qpos[joint.qpos_adr: joint.qpos_adr + 4] = quat.from_axis_angle(axis, np.asarray(value))
    else:
        data.qpos[joint.qpos_adr] = value


def _step_response(character, i, seconds=0.6):
    """Peak speed of DoF i and where it ends, after its target jumps from its lower limit to the top
    of its action range (the other joints hold their pose), in the air without gravity."""
    model, data = _in_the_air(character)
    drive = make_drive(character)
    joint = _joint_of(character, i)
    lo, hi = joint.axis_ranges[i - (joint.dof_adr - 6)]
    _set_dof(character, data, i, lo)
    target = drive.lengths(data.qpos)
    target[i] = character.pd_offset[i] + character.pd_scale[i]
    peak = 0.0
    for _ in range(int(round(seconds / model.opt.timestep))):
        mujoco_step(model, data, drive, target)
        peak = max(peak, abs(data.qvel[6 + i]))
    return peak, drive.lengths(data.qpos)[i], hi


@pytest.mark.parametrize("dataset", ["bundled", "reallusion"])
def test_a_full_range_step_is_as_fast_as_the_motion_data(sword_shield, dataset):
    """Every DoF's step response peaks above the 95th percentile of that DoF's speed in the clips.
    With the P-only clamp and a passive damper (before), joints capped at F / kd: knees 3 rad/s
    against the clips' 5.3, shoulders 2.5 against 5.2."""
    path = BUNDLED_YAML if dataset == "bundled" else (require_reference_data() and REALLUSION_YAML)
    clips = load_dataset(path, sword_shield).clips
    speed = np.percentile(np.abs(np.concatenate([c.qvel[:, 6:] for c in clips])), 95, axis=0)
    model = sword_shield.model
    slow = []
    for i in range(model.nu):
        peak, _, _ = _step_response(sword_shield, i)
        if peak < speed[i]:
            slow.append(f"{model.actuator(i).name}: {peak:.1f} < {speed[i]:.1f} rad/s")
    assert not slow, slow


def test_a_target_beyond_a_per_axis_limit_ends_near_that_limit(sword_shield):
    """Every ball-joint axis driven towards the end of its action range (up to 1.2x its largest
    limit) stops at its own limit: within 3 degrees beyond it, not beyond, and not short of it."""
    model = sword_shield.model
    for joint in sword_shield.joints:
        if joint.kind != "ball":
            continue
        for k in range(3):
            i = joint.dof_adr - 6 + k
            _, end, hi = _step_response(sword_shield, i, seconds=1.0)
            assert hi - np.deg2rad(1.0) < end < hi + np.deg2rad(3.0), \
                (model.actuator(i).name, np.rad2deg([end, hi]))


@pytest.mark.parametrize("name", ["sword_shield", "amp_humanoid"])
def test_random_full_range_actions_keep_the_drive_within_its_torque_limit(name):
    """3 s of random full-range targets on the ground with self-collision: the torque MuJoCo applies
    (servo + damper + applied force) stays within +-F on every DoF inside its limits, drives do
    saturate (so the bound is exercised), joints exceed the old F / kd speed cap, and nothing blows up."""
    character = load_character(name)
    model = character_spec(character, True).compile()
    data = mujoco.MjData(model)
    drive = make_drive(character)
    rng = np.random.default_rng(0)
    worst, saturated, over_cap = 0.0, 0.0, 0.0
    for _ in range(90):
        target = character.pd_offset + character.pd_scale * rng.uniform(-1.0, 1.0, model.nu)
        for _ in range(4):
            length = drive.lengths(data.qpos)
            inside = (length >= drive.limit_lo) & (length <= drive.limit_hi)
            saturated = max(saturated, mujoco_step(model, data, drive, target).mean())
            total = data.qfrc_actuator[6:] + data.qfrc_damper[6:] + data.qfrc_applied[6:]
            worst = max(worst, np.max(np.abs(total[inside]) / drive.torque_limit[inside]))
            over_cap = max(over_cap, np.max(np.abs(data.qvel[6:]) * drive.kd / drive.torque_limit))
    assert data.warning[mujoco.mjtWarning.mjWARN_BADQACC].number == 0 and np.all(np.isfinite(data.qpos))
    assert worst <= 1.0 + 1e-9
    assert saturated > 0.3
    assert over_cap > 2.0  # some joint moved at more than twice F / kd


def test_torque_limit_setting(sword_shield):
    gear = sword_shield.model.actuator_forcerange[:, 1]
    np.testing.assert_allclose(make_drive(sword_shield).torque_limit, gear)
    np.testing.assert_allclose(make_drive(sword_shield, "1.5").torque_limit, 1.5 * gear)
    assert np.all(np.isinf(make_drive(sword_shield, "none").torque_limit))
    with pytest.raises(ValueError, match="'gear'"):
        make_drive(sword_shield, "-2")


def test_drive_lengths_are_mujocos_actuator_lengths(sword_shield):
    """The drive's joint coordinates (hinge angles, ball exp maps) equal MuJoCo's actuator lengths,
    including rotations past 180 degrees."""
    model = sword_shield.model
    data = mujoco.MjData(model)
    drive = make_drive(sword_shield)
    rng = np.random.default_rng(3)
    for _ in range(50):
        data.qpos[7:] = 0.0
        for joint in sword_shield.joints:
            if joint.kind == "ball":
                q = rng.normal(size=4)
                data.qpos[joint.qpos_adr: joint.qpos_adr + 4] = q / np.linalg.norm(q)
            else:
                data.qpos[joint.qpos_adr] = rng.uniform(*joint.range)
        mujoco.mj_forward(model, data)
        np.testing.assert_allclose(drive.lengths(data.qpos), data.actuator_length, atol=1e-9)


# A right-arm pose (shoulder exp map, elbow, wrist about z) that presses the sword 2 cm into the torso.
SWORD_IN_TORSO = ((-1.5, -1.0, 0.0), -2.5, (0.0, 0.0, 0.5))


def sword_in_torso_qpos(character):
    model = character.model
    qpos = model.qpos0.copy()
    joints = {j.name: j for j in character.joints}
    shoulder, elbow, wrist = SWORD_IN_TORSO
    qpos[joints["right_shoulder"].qpos_adr:][:4] = quat.from_exp_map(np.asarray(shoulder))
    qpos[joints["right_elbow"].qpos_adr] = elbow
    qpos[joints["right_wrist"].qpos_adr:][:4] = quat.from_exp_map(np.asarray(wrist))
    return qpos


@pytest.mark.parametrize("self_collision", [True, False])
def test_the_sword_collides_with_the_torso_only_with_self_collision(sword_shield, self_collision):
    model = character_spec(sword_shield, self_collision).compile()
    data = mujoco.MjData(model)
    data.qpos[:] = sword_in_torso_qpos(sword_shield)
    mujoco.mj_forward(model, data)
    bodies = {tuple(sorted(model.body(model.geom_bodyid[g]).name for g in (c.geom1, c.geom2)))
              for c in data.contact[: data.ncon]}
    assert bodies == ({("sword", "torso")} if self_collision else set())


def test_mjx_accepts_every_self_collision_pair(sword_shield, amp_humanoid):
    """MJX implements all geom pairs of both characters with self-collision on (no box-cylinder pair:
    the shield meets boxes through its proxy)."""
    from ase_jax.mjx_import import mjx

    for character in (sword_shield, amp_humanoid):
        mjx.put_model(character_spec(character, True).compile())
