"""Task observations (ase_jax/tasks) against values computed by hand.

The character's root is placed at a known position and heading (with some pitch, which the heading
frame must ignore) in a plain MuJoCo MjData of the real scene (no MJX compile); the tasks read only
`qpos` and `qvel`, so a stand-in with those two arrays (as jax arrays) is what they observe.

Heading frame: yaw 90 deg (the character faces world +y) maps world (x, y, z) to local (y, -x, z).
"""

from __future__ import annotations

import types

import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from ase_jax import quat
from ase_jax.character import character_spec
from ase_jax.tasks import make_task
from ase_jax.tasks.strike import TARGET

pytestmark = pytest.mark.timeout(300)

ROOT_POS = np.array([1.0, 2.0, 0.9])
Z_AXIS, Y_AXIS, X_AXIS = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])
ATOL = 2e-6


def _aa(axis, angle):
    return quat.from_axis_angle(np.asarray(axis, np.float64), np.asarray(angle, np.float64))


def _root_rot(yaw, pitch=0.3):
    """Yaw about world z, then a pitch about the turned y axis: the heading stays `yaw`."""
    return quat.mul(_aa(Z_AXIS, yaw), _aa(Y_AXIS, pitch))


def _scene(character, task=None):
    spec = character_spec(character)
    if task is not None:
        task.add_props(spec)
    model = spec.compile()
    return model, mujoco.MjData(model)


def _place_root(model, d, yaw, pitch=0.3):
    d.qpos[:] = model.qpos0
    d.qpos[0:3] = ROOT_POS
    d.qpos[3:7] = _root_rot(yaw, pitch)
    mujoco.mj_forward(model, d)
    np.testing.assert_allclose(d.xpos[1], ROOT_POS, atol=1e-12)  # the root body is where qpos says


def _view(d):
    return types.SimpleNamespace(qpos=jnp.asarray(d.qpos, jnp.float32), qvel=jnp.asarray(d.qvel, jnp.float32))


def _f32(*values):
    return jnp.asarray(values, jnp.float32)


@pytest.fixture(scope="module")
def scene(sword_shield):
    return _scene(sword_shield)


@pytest.mark.parametrize("pitch", [0.0, 0.3, -0.8])
def test_heading_observation(scene, sword_shield, pitch):
    """[local target direction (2), target speed, local target facing (2)]."""
    model, d = scene
    task = make_task("heading")
    _place_root(model, d, np.pi / 2, pitch)
    state = {"direction": _f32(1.0, 0.0), "speed": jnp.float32(1.55), "facing": _f32(0.6, 0.8)}
    obs = np.asarray(task.observe(state, _view(d), sword_shield))
    assert obs.shape == (task.obs_size,) == (5,)
    np.testing.assert_allclose(obs, [0.0, -1.0, 1.55, 0.8, -0.6], atol=ATOL)


def test_heading_observation_other_yaws(scene, sword_shield):
    model, d = scene
    task = make_task("heading")
    # facing world -x (yaw 180 deg): local = -world in the plane
    _place_root(model, d, np.pi)
    state = {"direction": _f32(0.0, 1.0), "speed": jnp.float32(1.5), "facing": _f32(0.6, -0.8)}
    np.testing.assert_allclose(task.observe(state, _view(d), sword_shield), [0.0, -1.0, 1.5, -0.6, 0.8], atol=ATOL)
    # yaw 30 deg: a target direction at 30 deg is straight ahead, one at 120 deg straight left
    _place_root(model, d, np.pi / 6)
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    state = {"direction": _f32(c, s), "speed": jnp.float32(1.6), "facing": _f32(-s, c)}
    np.testing.assert_allclose(task.observe(state, _view(d), sword_shield), [1.0, 0.0, 1.6, 0.0, 1.0], atol=ATOL)


def test_location_observation(scene, sword_shield):
    """The target's xy offset from the root, in the heading frame."""
    model, d = scene
    task = make_task("location")
    _place_root(model, d, np.pi / 2)
    obs = task.observe({"target": _f32(4.0, 6.0)}, _view(d), sword_shield)  # offset (3, 4) -> (4, -3)
    assert obs.shape == (task.obs_size,) == (2,)
    np.testing.assert_allclose(obs, [4.0, -3.0], atol=ATOL)
    # facing -y (yaw -90 deg): world (x, y) -> local (-y, x)
    _place_root(model, d, -np.pi / 2)
    np.testing.assert_allclose(task.observe({"target": _f32(-1.0, 2.5)}, _view(d), sword_shield), [-0.5, -2.0],
                               atol=ATOL)
    # a target on the root is at the origin
    np.testing.assert_allclose(task.observe({"target": _f32(1.0, 2.0)}, _view(d), sword_shield), [0.0, 0.0],
                               atol=ATOL)


def test_reach_observation(scene, sword_shield):
    """The target's offset from the root in the heading frame: xy relative, height absolute."""
    model, d = scene
    task = make_task("reach")
    _place_root(model, d, np.pi / 2)
    obs = task.observe({"target": _f32(1.5, 2.0, 1.2)}, _view(d), sword_shield)  # offset (0.5, 0, 1.2)
    assert obs.shape == (task.obs_size,) == (3,)
    np.testing.assert_allclose(obs, [0.0, -0.5, 1.2], atol=ATOL)
    _place_root(model, d, np.pi)
    np.testing.assert_allclose(task.observe({"target": _f32(0.0, 2.5, 0.3)}, _view(d), sword_shield),
                               [1.0, -0.5, 0.3], atol=ATOL)


@pytest.fixture(scope="module")
def strike_scene(sword_shield):
    task = make_task("strike")
    model, d = _scene(sword_shield, task)
    return task, model, d


def _place_target(model, d, pos, rot, lin_vel, body_ang_vel):
    j = model.joint(TARGET).id
    q, v = model.jnt_qposadr[j], model.jnt_dofadr[j]
    d.qpos[q: q + 3], d.qpos[q + 3: q + 7] = pos, rot
    d.qvel[:] = 0
    d.qvel[v: v + 3], d.qvel[v + 3: v + 6] = lin_vel, body_ang_vel  # free joint: world linear, local angular
    mujoco.mj_forward(model, d)


def test_strike_target_is_the_joint_after_the_character(strike_scene, sword_shield):
    """Strike reads the target's free joint right after the character's qpos and qvel."""
    _, model, _ = strike_scene
    j = model.joint(TARGET).id
    assert model.jnt_qposadr[j] == sword_shield.nq and model.jnt_dofadr[j] == sword_shield.nv
    assert model.body(TARGET).id == 1 + sword_shield.num_bodies


def test_strike_observation(strike_scene, sword_shield):
    """[local position (height absolute) (3), tan-norm of the local rotation (6), local linear
    velocity (3), local angular velocity (3)] of the target."""
    task, model, d = strike_scene
    _place_root(model, d, np.pi / 2)
    tipped = quat.mul(_aa(Z_AXIS, np.pi / 2), _aa(X_AXIS, np.pi / 2))  # the root's yaw, then tipped about x
    _place_target(model, d, pos=[3.0, 2.0, 0.9], rot=tipped, lin_vel=[1.0, 0.0, -0.5], body_ang_vel=[0.0, 0.0, 2.0])
    obs = np.asarray(task.observe({}, _view(d), sword_shield))
    assert obs.shape == (task.obs_size,) == (15,)
    np.testing.assert_allclose(obs[0:3], [0.0, -2.0, 0.9], atol=ATOL)  # 2 m along world +x: on the right
    # relative to the heading the target is Rx(90 deg): x stays x, z goes to -y
    np.testing.assert_allclose(obs[3:9], [1.0, 0.0, 0.0, 0.0, -1.0, 0.0], atol=ATOL)
    np.testing.assert_allclose(obs[9:12], [0.0, -1.0, -0.5], atol=ATOL)
    # spin about its own z, which points along world +x (Rz90 Rx90 z = x), i.e. local -y
    np.testing.assert_allclose(obs[12:15], [0.0, -2.0, 0.0], atol=ATOL)
    # MuJoCo's own world-frame velocity of the target body agrees
    world = np.zeros(6)
    mujoco.mj_objectVelocity(model, d, mujoco.mjtObj.mjOBJ_XBODY, model.body(TARGET).id, world, 0)
    np.testing.assert_allclose(world[:3], [2.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(world[3:], [1.0, 0.0, -0.5], atol=1e-12)


def test_strike_observation_of_an_upright_target_behind(strike_scene, sword_shield):
    task, model, d = strike_scene
    _place_root(model, d, 0.0, pitch=0.5)  # facing +x, leaning
    upright = _aa(Z_AXIS, np.pi / 4)  # yawed 45 deg
    _place_target(model, d, pos=[-1.0, 2.0, 0.9], rot=upright, lin_vel=[0.0, 0.0, 0.0], body_ang_vel=[0.0, 0.0, 0.0])
    obs = np.asarray(task.observe({}, _view(d), sword_shield))
    np.testing.assert_allclose(obs[0:3], [-2.0, 0.0, 0.9], atol=ATOL)
    r = np.sqrt(0.5)
    np.testing.assert_allclose(obs[3:9], [r, r, 0.0, 0.0, 0.0, 1.0], atol=ATOL)
    np.testing.assert_allclose(obs[9:15], 0.0, atol=ATOL)


def test_getup_observes_nothing(scene, sword_shield):
    model, d = scene
    _place_root(model, d, 0.4)
    task = make_task("getup")
    assert task.obs_size == 0 and task.observe({}, _view(d), sword_shield).shape == (0,)
