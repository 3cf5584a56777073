"""The MJCF characters: they load in MuJoCo and MJX, and the PD drive is stable at the reference gains."""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from ase_jax.mjx_import import mjx

from ase_jax.character import CharacterSpec, character_spec, load_character
from ase_jax.config import load_config
from ase_jax.drive import make_drive, mujoco_step
from ase_jax.env import HumanoidEnv
from ase_jax.errors import CharacterError


def test_sword_shield_dimensions(sword_shield):
    m = sword_shield.model
    assert (m.nq, m.nv, m.nu) == (47, 37, 31)
    assert sword_shield.num_bodies == 17 and len(sword_shield.joints) == 13
    assert [j.kind for j in sword_shield.joints].count("ball") == 9
    assert sword_shield.dof_obs_size == 78
    assert sword_shield.body_names[6] == "sword" and sword_shield.body_names[9] == "shield"
    # Total mass close to the reference's (sum of geom densities x volumes).
    assert 50 < m.body_subtreemass[1] < 55


def test_amp_humanoid_dimensions(amp_humanoid):
    m = amp_humanoid.model
    assert (m.nv, m.nu) == (34, 28)
    assert amp_humanoid.num_bodies == 15 and amp_humanoid.dof_obs_size == 72
    mjx.put_model(m)


def test_pd_targets_match_reference_table(sword_shield):
    """docs/reference.md §4.1: per-group PD scales and offsets."""
    expected = {"abdomen": (1.885, 0), "neck": (1.257, 0), "right_shoulder": (np.pi, 0), "right_elbow": (1.955, -1.396),
                "right_wrist": (1.885, 0), "left_hip": (2.932, 0), "right_knee": (1.955, 1.396), "left_ankle": (1.152, 0)}
    for joint in sword_shield.joints:
        if joint.name in expected:
            i = joint.dof_adr - 6
            np.testing.assert_allclose((sword_shield.pd_scale[i], sword_shield.pd_offset[i]), expected[joint.name], atol=1e-3)


def test_env_physics_step_matches_mujoco(sword_shield):
    """The env's jitted MJX physics step (PD drive + mjx.step, self-collision on) gives C MuJoCo's
    torques and next state with the same drive, from a pose where the drive saturates and the sword
    touches the torso."""
    from test_drive import sword_in_torso_qpos

    config = load_config("tiny", {"state_init": "default", "num_fall_states": 1, "self_collision": True})
    env = HumanoidEnv(config.env, sword_shield)
    m = env.mj_model
    rng = np.random.default_rng(0)
    target = sword_shield.pd_offset + sword_shield.pd_scale * rng.uniform(-1.0, 1.0, m.nu)
    dc = mujoco.MjData(m)
    dc.qpos[:] = sword_in_torso_qpos(sword_shield)
    dc.qvel[6:] = rng.uniform(-5.0, 5.0, m.nu)
    d = mjx.make_data(env.mjx_model).replace(qpos=jnp.asarray(dc.qpos, jnp.float32),
                                                qvel=jnp.asarray(dc.qvel, jnp.float32))
    d = jax.jit(env.physics_step)(d, jnp.asarray(target, jnp.float32))
    saturated = mujoco_step(m, dc, env.drive, target)[0]
    assert saturated.any() and dc.ncon > 0
    np.testing.assert_allclose(np.asarray(d.qfrc_actuator), dc.qfrc_actuator, rtol=1e-3, atol=0.05)
    np.testing.assert_allclose(np.asarray(d.qfrc_applied), dc.qfrc_applied, rtol=1e-3, atol=0.05)
    np.testing.assert_allclose(np.asarray(d.qvel), dc.qvel, rtol=1e-3, atol=2e-2)
    np.testing.assert_allclose(np.asarray(d.qpos), dc.qpos, atol=1e-3)


def _hold_pose(character, target, seconds=1.0, gravity=False, qvel0=None):
    m = character_spec(character).compile()
    if not gravity:
        m.opt.gravity[:] = 0
    d = mujoco.MjData(m)
    d.qpos[2] = 2.0  # in the air: no contacts
    if qvel0 is not None:
        d.qvel[6:] = qvel0
    drive = make_drive(character)
    peak = 0.0
    for _ in range(int(seconds / m.opt.timestep)):
        mujoco_step(m, d, drive, target)
        peak = max(peak, np.abs(d.qvel[6:]).max())
    return d, peak


@pytest.mark.parametrize("name", ["sword_shield", "amp_humanoid"])
def test_pd_control_is_stable_and_tracks(name):
    """At the reference gains, 120 Hz physics, joints reach PD targets without blowing up."""
    character = load_character(name)
    rng = np.random.default_rng(1)
    action = rng.uniform(-0.25, 0.25, character.num_actions)
    target = character.pd_offset + character.pd_scale * action
    d, peak = _hold_pose(character, target, seconds=1.5)
    assert np.all(np.isfinite(d.qpos)) and peak < 50.0
    # Hinges settle at their targets (within the joint range) and velocities have died out.
    for joint in character.joints:
        if joint.kind == "hinge":
            i = joint.dof_adr - 6
            want = np.clip(target[i], *joint.range)
            assert abs(d.qpos[joint.qpos_adr] - want) < 0.1, joint.name
    assert np.abs(d.qvel[6:]).max() < 0.5


def test_pd_control_damps_a_velocity_kick(sword_shield):
    kick = np.random.default_rng(2).uniform(-10, 10, sword_shield.nv - 6)
    d, _ = _hold_pose(sword_shield, sword_shield.pd_offset, seconds=1.0, qvel0=kick)
    assert np.abs(d.qvel[6:]).max() < 0.5


def test_character_errors_are_clear(tmp_path):
    with pytest.raises(CharacterError, match="did you mean 'sword_shield'"):
        load_character("sword_sheild")
    bad = tmp_path / "bad.xml"
    bad.write_text("<mujoco><worldbody><body><geom size='1'/></body></worldbody></mujoco>")
    with pytest.raises(CharacterError, match="free joint"):
        load_character(bad, CharacterSpec(xml=str(bad), key_bodies=(), contact_bodies=()))
    with pytest.raises(CharacterError, match="not found"):
        load_character(tmp_path / "missing.xml", CharacterSpec(xml="x", key_bodies=(), contact_bodies=()))
    broken = tmp_path / "broken.xml"
    broken.write_text("<mujoco><worldbody><body>")
    with pytest.raises(CharacterError, match="MuJoCo cannot load"):
        load_character(broken, CharacterSpec(xml="x", key_bodies=(), contact_bodies=()))
