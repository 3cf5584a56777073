"""`python -m ase_jax.play --engine=mujoco`: the policy in plain C MuJoCo against the MJX env.

One MJX rollout is compiled (30 control steps of the tiny pre-trained policy under latent e3 from the
env's reset state); the C MuJoCo player starts from the same qpos/qvel with the same policy and latent.

What we measured (tiny run, latent e3, seed 0, the run's own physics settings): the observations
and actions agree to float32 rounding (< 1e-6) whenever both engines are in the same state, and the
physics of one control step agrees to < 1e-6 rad without contact changes but differs by up to
2.2e-2 rad (~1 rad/s) in control steps where the feet make or break contact with the floor. Those
differences compound: free-running from the same reset state, the largest joint-coordinate
difference is 0.06 rad and the root's 2.5 cm after 10 steps, 0.78 rad and 0.35 m after 30 (the
untrained policy falls, which amplifies them). Why they differ: MJX
computes in float32 and C MuJoCo in float64, MJX's collision functions and its Newton solver with
line search are separate implementations of C MuJoCo's, and 4 solver iterations (the env's setting)
leave the contact forces unconverged, so the two stop at different points (C MuJoCo with 50
iterations differs from C MuJoCo with 4 by as much as MJX does).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ase_jax import play
from ase_jax.inference import mujoco_player as play_mujoco
from ase_jax.inference import export_folder
from ase_jax.inference.policy_loading import load_policy

STEPS = 30
# Bounds a bit above what we measured (module docstring).
ACTION_ATOL = 1e-5  # same state, same policy: float32 rounding only
ONE_STEP_JOINT = 0.05  # rad, largest one-control-step difference of the physics from the same state
EARLY_JOINT, EARLY_ROOT = 0.15, 0.06  # rad, m: the same over the first 10 steps
ROLLOUT_JOINT = 1.0  # rad, largest joint-coordinate difference over the 30 free-running steps
ROLLOUT_ROOT = 0.5  # m, largest root-position difference over the 30 free-running steps


@pytest.fixture(scope="module")
def mjx_rollout(tiny_pretrained_run):
    """The MJX env's 30 steps: qpos, qvel, obs of every state (0 = the reset state) and the actions."""
    from ase_jax.inference.pretrained_loading import load_pretrained

    # No early termination: the untrained policy falls around step 30 and the env would reset.
    pretrained = load_pretrained(tiny_pretrained_run, purpose="perturb")
    env = pretrained.env
    z = jnp.asarray(np.eye(pretrained.config.ase.latent_dim)[3], jnp.float32)

    @jax.jit
    def run(key):
        start = env.reset(key)

        def body(state, _):
            action = pretrained.action(state.obs, z)
            state = env.step(state, action)
            return state, (state.data.qpos, state.data.qvel, state.obs, action)

        _, (qpos, qvel, obs, action) = jax.lax.scan(body, start, None, STEPS)
        first = (start.data.qpos[None], start.data.qvel[None], start.obs[None])
        return tuple(jnp.concatenate([a, b]) for a, b in zip(first, (qpos, qvel, obs))) + (action,)

    qpos, qvel, obs, action = (np.asarray(x) for x in run(jax.random.PRNGKey(0)))
    return pretrained, np.asarray(z), qpos.astype(np.float64), qvel.astype(np.float64), obs, action


@pytest.fixture(scope="module")
def exported(tiny_pretrained_run, tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="the export extra is not installed (pip install -e '.[export]')")
    from ase_jax.export import export

    out = tmp_path_factory.mktemp("export_for_player")
    export(tiny_pretrained_run, out)
    return out


def test_mujoco_player_follows_mjx(mjx_rollout, exported):
    pretrained, z, qpos, qvel, obs, actions = mjx_rollout
    policy = load_policy(exported)
    # The rollout's settings (no early termination; physics settings are the run's own).
    policy = dataclasses.replace(policy, env_config=pretrained.config.env)
    sim = play_mujoco.Simulation(policy, seed=0)
    lengths = sim.drive.lengths

    # From each MJX state: C MuJoCo's observation and the exported policy's action are the env's, and
    # one control step of C MuJoCo physics lands close to MJX's next state.
    one_step = []
    for k in range(STEPS):
        sim.reset(qpos[k], qvel[k])
        np.testing.assert_allclose(sim.observation(), obs[k], atol=1e-5, rtol=0)
        action = sim.action(sim.observation(), z)
        np.testing.assert_allclose(action, actions[k], atol=ACTION_ATOL, rtol=0)
        sim.step(z, auto_reset=False)
        one_step.append(np.abs(lengths(sim.data.qpos) - lengths(qpos[k + 1])).max())

    # Free-running from the same reset state.
    sim.reset(qpos[0], qvel[0])
    q, _ = sim.rollout(STEPS + 1, z, auto_reset=False)
    joint = np.abs(lengths(q) - lengths(qpos)).max(-1)
    root = np.linalg.norm(q[:, :3] - qpos[:, :3], axis=-1)
    print(f"C MuJoCo vs MJX: one control step max {max(one_step):.2e} rad; over {STEPS} steps max joint "
          f"{joint.max():.3f} rad, max root {root.max():.3f} m (after 10 steps: {joint[10]:.3f} rad, {root[10]:.3f} m)")
    assert max(one_step) < ONE_STEP_JOINT
    assert joint[:11].max() < EARLY_JOINT and root[:11].max() < EARLY_ROOT
    assert joint.max() < ROLLOUT_JOINT and root.max() < ROLLOUT_ROOT


def test_checkpoint_and_export_play_the_same(tiny_pretrained_run, tiny_heading_run, exported, tmp_path):
    """The player runs a checkpoint (JAX networks) and its export (onnxruntime) alike, for the
    low-level policy and for a task run (HLC + frozen LLC, target moved by the T key's method)."""
    from ase_jax.export import export

    export(tiny_heading_run[0], tmp_path / "heading")
    for run, folder in ((tiny_pretrained_run, exported), (tiny_heading_run[0], tmp_path / "heading")):
        trajectories = []
        for source in (run, folder):
            policy = load_policy(source)
            sim = play_mujoco.Simulation(policy, seed=3)
            z = None if policy.is_task else np.eye(policy.latent_dim)[0]
            qpos, marker = sim.rollout(12, z)
            if policy.task is not None:
                assert np.all(np.isfinite(marker))
                sim.move_target()
                moved = sim.marker()
                assert np.all(np.isfinite(moved))
            trajectories.append(qpos)
        np.testing.assert_allclose(trajectories[0], trajectories[1], atol=1e-4)


def test_mujoco_player_video(exported, tmp_path, monkeypatch):
    """`play --engine=mujoco --video`: renders the C MuJoCo rollout headless (ffmpeg replaced by a stub)."""
    from ase_jax import render

    problem = render.gl_problem()
    if problem:
        pytest.skip(problem)
    written = {}

    def fake_write(path, frames, fps):
        written.update(path=path, frames=frames, fps=fps)
        return path

    monkeypatch.setattr(render, "write_video", fake_write)
    args = [f"--checkpoint={exported}", "--engine=mujoco", "--latent=e3", "--seconds=0.5",
            f"--video={tmp_path / 'e3.mp4'}", "--width=64", "--height=48"]
    assert play.main(args) == 0
    # one frame per control step, at the control rate: 1 / (4 x 1/120 s)
    assert written["frames"].shape == (15, 48, 64, 3) and written["fps"] == pytest.approx(30.0)


def test_mujoco_player_bad_input_is_one_line(tmp_path, capsys, exported):
    assert play.main([f"--checkpoint={tmp_path / 'missing'}", "--engine=mujoco", "--video=x.mp4"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "no such run folder" in err, err
    assert play.main([f"--checkpoint={exported}", "--engine=mujoco", "--grid=4", "--video=x.mp4"]) == 1
    assert "--engine=jax" in capsys.readouterr().err
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "policy.json").write_text('{"format": 99, "character": {"name": "sword_shield"}}')
    assert play.main([f"--checkpoint={stale}", "--engine=mujoco", "--video=x.mp4"]) == 1
    err = capsys.readouterr().err.strip()
    assert "format 99" in err and "\n" not in err, err


@pytest.mark.timeout(120)
def test_export_env_settings_are_checked_as_a_checkpoint_config():
    """policy.json's env section goes through the config module's checks (config.schema.from_dict, as a
    checkpoint's saved config): unknown keys and bad values are errors naming the key, missing keys
    take their defaults."""
    from ase_jax.config import load_config
    from ase_jax.config.schema import to_dict
    from ase_jax.config.sections import EnvConfig
    from ase_jax.errors import AseInputError

    saved = to_dict(load_config("tiny"))["env"]
    assert export_folder.env_config_of_export(saved, "x.json") == load_config("tiny").env
    partial = {k: v for k, v in saved.items() if k != "recovery_steps"}
    assert export_folder.env_config_of_export(partial, "x.json").recovery_steps == EnvConfig().recovery_steps
    for bad, words in (({**saved, "self_colision": True}, ["x.json", "unknown key 'env.self_colision'"]),
                       ({**saved, "physics_steps_per_control_step": 0}, ["x.json", "physics_steps_per_control_step"]),
                       ({**saved, "early_termination": "maybe"}, ["x.json", "early_termination", "bool"]),
                       ([1, 2], ["x.json", "mapping"])):
        with pytest.raises(AseInputError) as e:
            export_folder.env_config_of_export(bad, "x.json")
        assert all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.timeout(600)
def test_export_with_unknown_env_key_is_one_line(exported, tmp_path, capsys):
    import json
    import shutil

    folder = tmp_path / "typo"
    shutil.copytree(exported, folder)
    meta = json.loads((folder / "policy.json").read_text())
    meta["env"]["solver_iteratons"] = 4
    (folder / "policy.json").write_text(json.dumps(meta))
    assert play.main([f"--checkpoint={folder}", "--engine=mujoco", "--video=x.mp4"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "policy.json" in err and "solver_iteratons" in err, err
