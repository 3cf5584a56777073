"""Task training: reward functions, the strike target, the frozen LLC and an end-to-end tiny run."""

import json
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from ase_jax import quat
from ase_jax.inference.pretrained_loading import load_pretrained
from ase_jax.checkpoint.checkpointer import Checkpointer
from ase_jax.checkpoint.layout import select_subtree
from ase_jax.config import load_config
from ase_jax.errors import AseInputError
from ase_jax.training_setup import build_task as build
from ase_jax.task import main as task_main
from ase_jax.tasks import TASKS, make_task
from ase_jax.tasks.heading import heading_reward
from ase_jax.tasks.location import location_reward
from ase_jax.tasks.reach import reach_reward
from ase_jax.tasks.strike import SHIELD_PROXY, TARGET, strike_reward


def test_heading_reward():
    d, f = jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])
    best = heading_reward(d, 1.5, f, jnp.array([1.5, 0.0]), f)
    assert abs(float(best) - 1.0) < 1e-6
    assert float(heading_reward(d, 1.5, f, jnp.array([0.5, 0.3]), f)) < float(best)
    assert abs(float(heading_reward(d, 1.5, f, jnp.array([-1.5, 0.0]), -f))) < 1e-6  # backwards, facing away


def test_heading_reward_matches_its_formula():
    """0.7 exp(-0.25 ((v* - s)^2 + 0.1 |v_tan|^2)) [s > 0] + 0.3 max(f* . facing, 0), by hand."""
    # along the target at 1 m/s (target 1.5) with 0.5 m/s sideways; facing 0.8 of the way to f*
    r = heading_reward(jnp.array([1.0, 0.0]), 1.5, jnp.array([0.0, 1.0]), jnp.array([1.0, 0.5]), jnp.array([0.6, 0.8]))
    assert float(r) == pytest.approx(0.7 * np.exp(-0.25 * (0.5**2 + 0.1 * 0.5**2)) + 0.3 * 0.8, abs=1e-6)
    assert float(r) == pytest.approx(0.893492, abs=1e-6)
    # diagonal target: s = 1.2, v_tan = (1.28, -0.96) with |v_tan|^2 = 2.56 (the sum of its components
    # squared, the reference's quirk, would be 0.1024); facing away from f*: no facing reward
    r = heading_reward(jnp.array([0.6, 0.8]), 1.5, jnp.array([1.0, 0.0]), jnp.array([2.0, 0.0]),
                       jnp.array([-0.6, 0.8]))
    assert float(r) == pytest.approx(0.7 * np.exp(-0.25 * (0.3**2 + 0.1 * 2.56)), abs=1e-6)
    assert float(r) == pytest.approx(0.641995, abs=1e-6)
    # no progress along the target (s = 0, and s < 0): no direction reward at all, only the facing term
    f = jnp.array([0.0, 1.0])
    assert float(heading_reward(jnp.array([1.0, 0.0]), 1.5, f, jnp.array([0.0, 1.5]), f)) == pytest.approx(0.3, abs=1e-6)
    assert float(heading_reward(jnp.array([1.0, 0.0]), 0.1, f, jnp.array([-0.01, 0.0]),
                                jnp.array([0.6, 0.8]))) == pytest.approx(0.3 * 0.8, abs=1e-6)


def test_heading_task_reward_from_the_root_motion():
    """Heading.reward takes the root velocity as (p - p_prev) / dt and the facing from the root's yaw."""
    import types

    yaw = np.pi / 2  # facing +y
    qpos = jnp.asarray([1.0, 2.0, 0.9, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)], jnp.float32)
    data = types.SimpleNamespace(qpos=qpos)
    state = {"direction": jnp.array([1.0, 0.0]), "speed": jnp.float32(1.5), "facing": jnp.array([0.0, 1.0])}
    prev = jnp.array([0.9, 1.95, 0.9])  # moved (0.1, 0.05) in 0.1 s: v = (1.0, 0.5)
    r = make_task("heading").reward(state, data, prev, 0.1, None)
    assert float(r) == pytest.approx(0.7 * np.exp(-0.25 * (0.5**2 + 0.1 * 0.5**2)) + 0.3, abs=1e-5)


def test_location_reward():
    target, facing = jnp.array([3.0, 4.0]), jnp.array([0.6, 0.8])
    at = location_reward(target, target, jnp.zeros(2), facing)
    assert abs(float(at) - 1.0) < 1e-6
    towards = location_reward(target, jnp.zeros(2), jnp.array([0.6, 0.8]), facing)
    away = location_reward(target, jnp.zeros(2), -jnp.array([0.6, 0.8]), -facing)
    assert float(at) > float(towards) > float(away) >= 0


def test_reach_reward():
    target = jnp.array([0.5, -0.2, 1.2])
    assert abs(float(reach_reward(target, target)) - 1.0) < 1e-6
    assert abs(float(reach_reward(target, target + jnp.array([1.0, 0, 0]))) - np.exp(-4)) < 1e-6


def test_strike_reward():
    upright = jnp.array([1.0, 0, 0, 0])
    fallen = quat.from_axis_angle(jnp.array([1.0, 0, 0]), jnp.array(np.pi / 2))
    still = strike_reward(upright, jnp.array([2.0, 0]), jnp.zeros(2), jnp.zeros(2))
    running = strike_reward(upright, jnp.array([2.0, 0]), jnp.zeros(2), jnp.array([1.0, 0]))
    assert float(still) == 0 and abs(float(running) - 0.4) < 1e-6
    assert float(strike_reward(fallen, jnp.array([2.0, 0]), jnp.zeros(2), jnp.zeros(2))) == 1.0


def test_strike_target_falls_when_pushed():
    config = load_config("task_tiny", {"name": "strike", "scratch": True})
    _, env, _ = build(config)
    m = env.mj_model
    d = mujoco.MjData(m)
    j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, TARGET)
    q = m.jnt_qposadr[j]
    d.qpos[q: q + 3] = [2.0, 0.0, 0.9]
    mujoco.mj_forward(m, d)
    assert abs(d.qpos[q + 2] - 0.9) < 1e-6
    for _ in range(60):  # a 0.5 s push on its top, as a sword blow would give
        d.xfrc_applied[m.body(TARGET).id, :3] = [40.0, 0.0, 0.0]
        d.xfrc_applied[m.body(TARGET).id, 3:] = [0.0, 30.0, 0.0]
        mujoco.mj_step(m, d)
    d.xfrc_applied[:] = 0
    for _ in range(240):
        mujoco.mj_step(m, d)
    up = quat.rotate(d.qpos[q + 3: q + 7], np.array([0.0, 0.0, 1.0]))
    assert up[2] < 0.2, up


def test_the_shield_meets_the_strike_target_through_its_proxy(sword_shield):
    """MJX has no cylinder-box collision: a massless box in the shield's plane touches the target
    instead of the shield's cylinder, and nothing else."""
    config = load_config("task_tiny", {"name": "strike", "scratch": True})
    _, env, _ = build(config)
    m = env.mj_model
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    proxy, cylinder, target = m.geom(SHIELD_PROXY).id, m.geom("shield").id, m.geom(TARGET).id
    assert m.body_mass[m.body("shield").id] == pytest.approx(sword_shield.model.body_mass[m.body("shield").id])
    normal = d.geom_xmat[cylinder].reshape(3, 3)[:, 2]  # the disc's axis
    half_thickness = m.geom_size[cylinder][1]
    centre = d.geom_xpos[cylinder] + normal * (0.2 + half_thickness - 0.01)  # the target's face 1 cm into the shield
    q = m.jnt_qposadr[m.joint(TARGET).id]
    yaw = np.arctan2(normal[1], normal[0])
    d.qpos[q: q + 7] = [centre[0], centre[1], 0.9, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
    mujoco.mj_forward(m, d)
    pairs = {tuple(sorted((int(c.geom1), int(c.geom2)))) for c in d.contact[: d.ncon]}
    assert tuple(sorted((proxy, target))) in pairs
    assert tuple(sorted((cylinder, target))) not in pairs
    assert all(target in pair for pair in pairs if proxy in pair)  # the proxy touches only the target


@pytest.mark.timeout(600)
def test_each_task_observes_what_its_layout_states():
    """`observe` traced in the env's reset (no compile) gives as many values as the task's
    obs_layout, which policy.json publishes block by block."""
    for name in TASKS:
        config = load_config("task_tiny", {"name": name, "scratch": True})
        _, env, _ = build(config)
        obs = jax.eval_shape(env.reset, jax.random.PRNGKey(0)).obs
        layout = make_task(name).obs_layout
        assert obs.shape == (env.character_obs_size + sum(size for _, size, _ in layout),), name
        assert len({n for n, _, _ in layout}) == len(layout), name


@pytest.fixture(scope="module")
def tiny_llc(tiny_pretrained_run):
    return tiny_pretrained_run


@pytest.mark.timeout(120)
def test_each_task_env_gets_its_config_overrides(sword_shield):
    """A task's config_overrides reach the env that task training and playback build (getup starts
    every episode fallen); no other task changes the config."""
    from ase_jax.env_factory import make_env, purpose_config

    for name in TASKS:
        base = load_config("task_tiny", {"name": name})
        config = purpose_config(base, "train")
        expected = {"fall_init_prob": 1.0} if name == "getup" else {}
        changed = {k: getattr(config.env, k) for k in vars(config.env) if getattr(config.env, k) != getattr(base.env, k)}
        assert changed == expected, name
        for purpose in ("train", "play"):  # playback's no-fallen-starts gives way to the task's own
            env = make_env(base, purpose, character=sword_shield)
            assert env.config.fall_init_prob == config.env.fall_init_prob and env.task.name == name, (name, purpose)


def test_heading_on_frozen_llc_end_to_end(tiny_llc, tiny_heading_run):
    tmp_path, metrics = tiny_heading_run
    for key in ("loss/total", "reward/task", "reward/disc", "episode/length"):
        assert np.isfinite(metrics[key]), key
    # Each high-level sample spans llc_steps simulated control steps (the axis of `evaluate compare`).
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert line["control_steps"] == line["env_steps"] * load_config("task_tiny").task.llc_steps
    # The frozen low-level controller is bit-identical in the task run's checkpoint.
    llc = load_pretrained(tiny_llc)
    ckpt = Checkpointer(tmp_path, None, read_only=True)  # the session's shared run: read, never written
    arrays, layout, _ = ckpt.restore_raw(ckpt.latest_step())
    ckpt.close()
    saved = select_subtree(arrays, layout, ".llc['params']", jax.device_get(llc.params))
    for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(jax.device_get(llc.params))):
        np.testing.assert_array_equal(a, b)


def test_llc_errors(tiny_llc, tmp_path, capsys):
    cases = [
        ({"llc": ""}, "needs --llc"),
        ({"llc": str(tmp_path / "nowhere")}, "no such run folder"),
        ({"llc": str(tmp_path)}, "not an ase_jax run folder"),
        ({"llc": str(tiny_llc), "physics_steps_per_control_step": 2},
         "trained with physics_steps_per_control_step=4, but this run has physics_steps_per_control_step=2"),
        ({"llc": str(tiny_llc), "latent_dim": 32}, "'latent_dim' is a key of the ase section"),  # the LLC's
        ({"llc": str(tiny_llc), "character": "amp_humanoid"}, "trained with character='sword_shield'"),
    ]
    for overrides, message in cases:
        with pytest.raises(AseInputError, match=message):
            build(load_config("task_tiny", overrides))
    assert task_main(["--name=hedding", f"--llc={tiny_llc}"]) == 1
    assert "did you mean 'heading'" in capsys.readouterr().err


def test_task_playback_uses_the_llc_it_was_trained_with(tiny_pretrained_run, tmp_path):
    """Continuing the pre-training in the --llc folder does not change a task run's playback: the
    task checkpoint holds its frozen LLC (and that LLC's config). The continued pre-training is a
    later checkpoint written into the folder with every parameter moved (what the task loads is the
    question, not how the pre-training got there: a real iteration would trace the training step
    once more, most of a minute)."""
    import io
    import shutil

    from rich.console import Console

    from ase_jax.inference.task_policy import load_task_policy
    from ase_jax.task import train as train_task

    llc_dir, task_dir = tmp_path / "llc", tmp_path / "task"
    shutil.copytree(tiny_pretrained_run, llc_dir)
    train_task(load_config("task_tiny", {"name": "heading", "llc": str(llc_dir), "workdir": str(task_dir),
                                         "total_steps": 16}), console=Console(file=io.StringIO()))
    trained_with = load_pretrained(llc_dir)
    before = load_task_policy(task_dir).llc
    checkpointer = Checkpointer(llc_dir, keep=None)
    step = checkpointer.latest_step()
    arrays, layout, config = checkpointer.restore_raw(step)
    moved = {k: v + 0.01 if np.issubdtype(np.asarray(v).dtype, np.floating) else v for k, v in arrays.items()}
    checkpointer.save_raw(step + 1, moved, layout, config)
    checkpointer.wait()
    checkpointer.close()
    continued = load_pretrained(llc_dir)
    assert continued.step > trained_with.step
    after = load_task_policy(task_dir).llc
    for a, b, c in zip(jax.tree.leaves(trained_with.params), jax.tree.leaves(after.params),
                       jax.tree.leaves(before.params)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(b, c)
    assert all(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(continued.params),
                                                        jax.tree.leaves(after.params)))
    assert after.config == trained_with.config
