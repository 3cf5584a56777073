"""`python -m ase_jax.export`: the ONNX graphs reproduce the JAX policies, the JSON says what they expect,
and bad input is one line with exit status 1."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed (pip install -e '.[export]')")
pytest.importorskip("onnx", reason="the export extra is not installed (pip install -e '.[export]')")

from ase_jax import export  # noqa: E402

ATOL = 1e-5


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _observations(obs_norm, real, n: int, seed: int) -> np.ndarray:
    """Random observations spread like the run's normaliser statistics (some beyond its clip), plus `real` ones."""
    rng = np.random.default_rng(seed)
    mean, std = np.asarray(obs_norm.mean), np.asarray(obs_norm.std)
    fake = mean + std * rng.normal(scale=3.0, size=(n, mean.shape[0]))
    return np.concatenate([fake, real]).astype(np.float32)


def _real_observations(folder, steps: int = 20) -> np.ndarray:
    """Observations of a C MuJoCo rollout of the exported policy (the env's observation code on MjData)."""
    from ase_jax.inference.mujoco_player import Simulation
    from ase_jax.inference.policy_loading import load_policy

    policy = load_policy(folder)
    sim = Simulation(policy, seed=0)
    z = None if policy.latent_dim is None or policy.is_task else np.eye(policy.latent_dim)[3]
    out = [sim.observation()]
    for _ in range(steps - 1):
        sim.step(z)
        out.append(sim.observation())
    return np.stack(out)


@pytest.fixture(scope="module")
def exported_pretrained(tiny_pretrained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export_pretrained")
    return out, export.export(tiny_pretrained_run, out)


@pytest.fixture(scope="module")
def exported_heading(tiny_heading_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export_heading")
    return out, export.export(tiny_heading_run[0], out)


def test_llc_onnx_matches_jax(tiny_pretrained_run, exported_pretrained):
    from ase_jax.inference.pretrained_loading import load_pretrained

    folder, meta = exported_pretrained
    assert sorted(p.name for p in folder.iterdir()) == ["llc.onnx", "policy.json"]
    pretrained = load_pretrained(tiny_pretrained_run, purpose=None)
    obs = _observations(pretrained.obs_norm, _real_observations(folder), 200, seed=0)
    rng = np.random.default_rng(1)
    z = _unit(rng.normal(size=(len(obs), pretrained.networks.latent_dim))).astype(np.float32)
    z[:4] = np.eye(pretrained.networks.latent_dim)[:4]
    want = np.asarray(pretrained.action(jnp.asarray(obs), jnp.asarray(z)))
    action, pd_target = _session(folder / "llc.onnx").run(["action", "pd_target"], {"obs": obs, "z": z})
    np.testing.assert_allclose(action, want, atol=ATOL, rtol=0)
    np.testing.assert_allclose(pd_target, np.asarray(meta["action"]["pd_offset"]) + np.asarray(meta["action"]["pd_scale"])
                               * action, atol=1e-5)
    # z is normalised inside the graph: a scaled latent gives the same action.
    scaled, = _session(folder / "llc.onnx").run(["action"], {"obs": obs[:8], "z": 3.0 * z[:8]})
    np.testing.assert_allclose(scaled, want[:8], atol=ATOL, rtol=0)


def test_policy_json_describes_the_llc(exported_pretrained, sword_shield):
    from ase_jax.env import observations as obs_lib

    folder, meta = exported_pretrained
    assert json.loads((folder / "policy.json").read_text()) == meta
    assert meta["character"]["name"] == "sword_shield" and meta["character"]["mjcf"] == "sword_shield_humanoid.xml"
    assert meta["control"]["rate_hz"] == pytest.approx(30.0) and meta["control"]["physics_steps_per_control_step"] == 4
    assert meta["observation"]["size"] == obs_lib.policy_obs_size(sword_shield) == 253
    layout = meta["observation"]["layout"]
    assert [b["start"] for b in layout] == list(np.cumsum([0] + [b["size"] for b in layout[:-1]]))
    assert sum(b["size"] for b in layout) == 253
    np.testing.assert_allclose(meta["action"]["pd_offset"], sword_shield.pd_offset)
    np.testing.assert_allclose(meta["action"]["pd_scale"], sword_shield.pd_scale)
    assert len(meta["action"]["actuators"]) == meta["action"]["size"] == 31
    assert meta["llc"]["latent_dim"] == 64 and meta["llc"]["inputs"] == {"obs": 253, "z": 64}
    assert meta["env"]["self_collision"] is False  # the tiny run's settings travel with the policy
    assert "task" not in meta and "hlc" not in meta


def test_task_onnx_matches_jax(tiny_heading_run, exported_heading):
    from ase_jax.inference.policy_loading import load_policy

    folder, meta = exported_heading
    assert sorted(p.name for p in folder.iterdir()) == ["hlc.onnx", "llc.onnx", "policy.json"]
    policy = load_policy(tiny_heading_run[0])
    obs = _observations(policy.task_policy.obs_norm, _real_observations(folder), 200, seed=2)
    latent, = _session(folder / "hlc.onnx").run(["latent"], {"obs": obs})
    want = np.asarray(policy.high_level(jnp.asarray(obs)))
    np.testing.assert_allclose(latent, want, atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(latent, axis=-1), 1.0, atol=1e-5)
    # The task run's own frozen LLC, fed the character part of the observation and the HLC's latent
    # (Policy.act at a step where the high-level controller picks).
    character_obs = obs[:, : meta["observation"]["size"]]
    action, = _session(folder / "llc.onnx").run(["action"], {"obs": character_obs, "z": latent})
    held, acted = policy.act(jnp.zeros_like(want), jnp.asarray(obs), 0)
    np.testing.assert_allclose(np.asarray(held), want, atol=0, rtol=0)
    np.testing.assert_allclose(action, np.asarray(acted), atol=ATOL, rtol=0)
    task = meta["task"]
    assert task["name"] == "heading" and task["obs_size"] == 258 and task["llc_steps"] == policy.steps_per_action
    assert [b["name"] for b in task["obs_layout"][-3:]] == ["target_direction_xy", "target_speed", "target_facing_xy"]
    assert task["obs_layout"][-1]["start"] + task["obs_layout"][-1]["size"] == 258
    assert meta["hlc"]["outputs"] == {"latent": 64}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    return err


def test_export_bad_checkpoint_is_one_line(tmp_path, capsys):
    assert export.main([f"--checkpoint={tmp_path / 'missing'}", f"--out={tmp_path / 'out'}"]) == 1
    assert "no such run folder" in _one_line_error(capsys)
    broken = tmp_path / "broken"
    (broken / "checkpoints" / "3" / "state").mkdir(parents=True)
    (broken / "checkpoints" / "3" / "state" / "garbage").write_text("not a checkpoint")
    assert export.main([f"--checkpoint={broken / 'checkpoints' / '3'}", f"--out={tmp_path / 'out'}"]) == 1
    assert str(broken) in _one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_export_without_the_extra_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)  # import onnx now fails
    assert export.main([f"--checkpoint={tmp_path}", f"--out={tmp_path / 'out'}"]) == 1
    assert "pip install" in _one_line_error(capsys)
