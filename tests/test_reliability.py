"""Reliability: kill -9 and resume, corrupt checkpoints, NaN guards, and clear errors on bad input."""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rich.console import Console

from ase_jax.inference import pretrained_loading as policy_lib
from ase_jax.agents.ase import train as train_lib
from ase_jax.character import CharacterSpec, load_character
from ase_jax.checkpoint.checkpointer import Checkpointer
from ase_jax.config import load_config
from ase_jax.errors import AseInputError
from ase_jax.motions.dataset import load_dataset
from ase_jax import pretrain as pretrain_lib
from ase_jax.training_setup import build_pretrain as build
from ase_jax.pretrain import train
from ase_jax.run_loop.loop import TrainingDiverged
from conftest import REPO_ROOT, TEST_CACHE_DIR

KILL_ITERATIONS = 40


def _config(workdir, **overrides):
    return load_config("tiny", {"workdir": str(workdir), **overrides})


def _saved(workdir, step):
    """The arrays saved at `step`, by tree path."""
    ckpt = Checkpointer(workdir, 100)
    arrays, layout, config = ckpt.restore_raw(step)
    ckpt.close()
    return arrays


def _files(workdir):
    """{relative path: sha1} of every file under `workdir`."""
    return {str(p.relative_to(workdir)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(workdir.rglob("*")) if p.is_file()}


def _quiet():
    return Console(file=io.StringIO(), width=200)


# Heavy (about 4 minutes on CI's 2 cores: a reference run, a killed command and its resume). In every
# run stay: the resume after a stop and the metrics cut back (tests/test_stop_resume.py), the saved
# state's round trip (tests/test_checkpoint.py) and a damaged newest checkpoint (below).
@pytest.mark.heavy
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    steps = KILL_ITERATIONS * 32
    reference = tmp_path / "reference"
    train(_config(reference, total_steps=steps), console=_quiet())

    killed = tmp_path / "killed"
    # jax writes cache entries non-atomically, so a process killed mid-write can leave a truncated
    # entry that crashes the next reader: the victim gets a private copy of the session's cache.
    private_cache = tmp_path / "jax_cache"
    if TEST_CACHE_DIR.is_dir():
        shutil.copytree(TEST_CACHE_DIR, private_cache)
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(private_cache), JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "ase_jax.pretrain", "--config=tiny", f"--workdir={killed}", f"--total_steps={steps}"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 500
    try:
        while time.time() < deadline:
            done = [int(p.name) for p in (killed / "checkpoints").glob("*") if p.name.isdigit()]
            if done and max(done) >= 8:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    before = max(int(p.name) for p in (killed / "checkpoints").glob("*") if p.name.isdigit())
    assert before < KILL_ITERATIONS, "the run finished before the kill"

    console = Console(file=io.StringIO(), width=200)
    train(_config(killed, total_steps=steps), console=console)
    assert "resumed from" in console.file.getvalue()
    a, b = _saved(reference, KILL_ITERATIONS), _saved(killed, KILL_ITERATIONS)
    assert a.keys() == b.keys() and ".params['actor']" in " ".join(a)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    train(_config(tmp_path, total_steps=64), console=_quiet())
    newest = tmp_path / "checkpoints" / "2"
    victims = [p for p in newest.rglob("*") if p.is_file() and p.stat().st_size > 0 and "state" in str(p)]
    assert victims
    for victim in victims:  # truncate the saved arrays of the newest checkpoint
        victim.write_bytes(victim.read_bytes()[: max(1, victim.stat().st_size // 3)])
    console = Console(file=io.StringIO(), width=300)
    train(_config(tmp_path, total_steps=96), console=console)
    out = console.file.getvalue()
    assert "unreadable" in out and "resumed from" in out and "(iteration 1)" in out
    assert any((tmp_path / "corrupt_checkpoints").iterdir()), "the bad checkpoint must be kept aside, not deleted"
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").glob("*") if p.name.isdigit())[-1] == 3


@pytest.fixture(scope="module")
def tiny_fns():
    config = _config("/tmp/unused")
    env, _ = build(config)
    fns = train_lib.make_train_fns(config, env)
    return fns


def _fresh_state(fns):
    """A new initial state on the host (the compiled step donates its input buffers)."""
    return jax.device_get(fns.init(jax.random.PRNGKey(0)))


def _finite(tree):
    return all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(tree))


def test_nan_in_a_loss_skips_the_update_and_is_counted(tiny_fns):
    fns = tiny_fns
    state = _fresh_state(fns)
    mean = np.array(state.obs_norm.mean)
    mean[:, 0] = np.nan
    bad = state.replace(obs_norm=state.obs_norm.replace(mean=mean))
    before = bad.params
    new, metrics = fns.step(bad)
    assert float(np.asarray(metrics["skipped_updates"])[0]) == 1.0
    assert _finite(new.params)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get(new.params))):
        np.testing.assert_array_equal(a, b)


def test_nan_in_observations_resets_the_env_and_is_counted(tiny_fns):
    fns = tiny_fns
    state = _fresh_state(fns)
    data = state.env_state.data
    qpos = np.array(data.qpos)
    qpos[:, 0, 2] = np.nan
    bad = state.replace(env_state=state.env_state.replace(data=data.replace(qpos=qpos)))
    new, metrics = fns.step(bad)
    assert float(np.asarray(metrics["env/nonfinite"])[0]) >= 1
    assert _finite(new.params) and _finite(new.env_state.data.qpos) and _finite(new.env_state.obs)


def test_persistent_divergence_stops_with_the_last_checkpoint_intact(tmp_path, monkeypatch):
    real = pretrain_lib.compiled_train_fns

    def poisoned(config):
        env, dataset, fns = real(config)

        def step(state):
            state, metrics = fns.step(state)
            if int(np.asarray(state.iteration)[0]) > 2:  # pretend every update from iteration 3 on was skipped
                metrics = dict(metrics, skipped_updates=jnp.ones_like(metrics["skipped_updates"]))
            return state, metrics
        return env, dataset, fns.replace(step=step)

    monkeypatch.setattr(pretrain_lib, "compiled_train_fns", poisoned)
    with pytest.raises(TrainingDiverged, match=r"3 consecutive iterations .* is intact"):
        train(_config(tmp_path, total_steps=32 * 20, max_bad_iterations=3), console=_quiet())
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").glob("*") if p.name.isdigit())
    assert steps and steps[-1] >= 2
    policy_lib.load_pretrained(tmp_path)  # the last checkpoint still loads


def test_retention_keeps_last_n_plus_every_kth(tmp_path):
    train(_config(tmp_path, total_steps=32 * 9, keep_checkpoints=2, keep_checkpoint_period=4), console=_quiet())
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").glob("*") if p.name.isdigit())
    assert steps == [4, 8, 9], steps


# --- bad input: each case raises AseInputError whose message names the key or file --------------

def _write(path, text):
    path.write_text(text)
    return path


def _bad_inputs(tmp):
    clip = REPO_ROOT / "motions" / "bundled" / "idle.npy"
    corrupt = tmp / "corrupt.npy"
    corrupt.write_bytes(b"\x93NUMPY garbage" * 20)
    truncated = tmp / "truncated.npy"
    truncated.write_bytes(clip.read_bytes()[:2000])
    shutil.copy(clip, tmp / "idle.npy")
    no_actuators = _write(tmp / "noact.xml", "<mujoco><worldbody><body><freejoint/><geom size='.1'/>"
                          "<body><joint type='hinge'/><geom size='.1'/></body></body></worldbody></mujoco>")
    spec = CharacterSpec(xml="x", key_bodies=(), contact_bodies=())
    sword = load_character("sword_shield")
    amp_clip = tmp / "amp_clip.npy"
    from ase_jax.motions.npy_format import load_clip, save_clip
    raw = load_clip(clip)
    import dataclasses
    save_clip(amp_clip, dataclasses.replace(raw, skeleton=dataclasses.replace(
        raw.skeleton, node_names=tuple("b%d" % i for i in range(17)))))
    return [
        ("unknown key", lambda: load_config("tiny", {"num_env": 3}), r"unknown config key 'num_env'; did you mean 'num_envs'"),
        ("wrong type", lambda: load_config("tiny", {"num_envs": "many"}), r"'num_envs' must be int"),
        ("negative", lambda: load_config("tiny", {"num_envs": -4}), r"'num_envs' = -4 must be > 0"),
        ("probability", lambda: load_config("tiny", {"fall_init_prob": 1.5}), r"'fall_init_prob' = 1.5 must be a probability"),
        ("choice", lambda: load_config("tiny", {"state_init": "hybird"}), r"did you mean 'hybrid'"),
        ("character", lambda: load_config("tiny", {"character": "sword_sheild"}), r"did you mean 'sword_shield'"),
        ("units", lambda: load_config("tiny", {"actor_units": [64, -1]}), r"'actor_units' must be a non-empty list"),
        ("latent steps", lambda: load_config("tiny", {"latent_steps_max": 1}), r"latent_steps_max=1 must be > latent_steps_min"),
        ("amp rows", lambda: load_config("tiny", {"amp_minibatch_size": 64}), r"amp_minibatch_size=64 must be <= minibatch_size"),
        ("bool", lambda: load_config("tiny", {"eps_greedy": "yes please"}), r"'eps_greedy' must be bool"),
        ("torque limit", lambda: load_config("tiny", {"pd_torque_limit": "strong"}),
         r"'pd_torque_limit' = 'strong' must be 'gear' .* or 'none'"),
        ("missing config", lambda: load_config("tnyi"), r"config 'tnyi' not found .*did you mean 'tiny'"),
        ("bad yaml config", lambda: load_config(str(_write(tmp / "bad.yaml", "num_envs: [1, 2"))), r"bad.yaml: not valid YAML"),
        ("config loop", lambda: load_config(str(_write(tmp / "loop.yaml", f"base: {tmp / 'loop.yaml'}\n"))), r"loops back"),
        ("minibatch", lambda: train_lib.make_train_fns(load_config("tiny", {"minibatch_size": 12}), None),
         r"minibatch_size=12 must divide num_envs x horizon"),
        ("missing motions", lambda: load_dataset(tmp / "nowhere.yaml", sword), r"nowhere.yaml: file not found"),
        ("corrupt clip", lambda: load_dataset(corrupt, sword), r"corrupt.npy: not a readable .npy motion clip"),
        ("truncated clip", lambda: load_dataset(truncated, sword), r"truncated.npy: not a readable"),
        ("wrong skeleton", lambda: load_dataset(amp_clip, sword), r"amp_clip.npy: skeleton does not match the character"),
        ("negative weight", lambda: load_dataset(_write(tmp / "neg.yaml", "motions:\n  - file: idle.npy\n    weight: -2\n"), sword),
         r"neg.yaml: entry 0 \(idle.npy\): weight must be >= 0"),
        ("empty dataset", lambda: load_dataset(_write(tmp / "empty.yaml", "motions: []\n"), sword), r"empty.yaml: the dataset is empty"),
        ("missing clip", lambda: load_dataset(_write(tmp / "gone.yaml", "motions:\n  - file: gone.npy\n"), sword),
         r"gone.yaml: entry 0: clip file .*gone.npy not found"),
        ("missing mjcf", lambda: load_character(tmp / "none.xml", spec), r"none.xml: MJCF file not found"),
        ("broken mjcf", lambda: load_character(_write(tmp / "broken.xml", "<mujoco><worldbody>"), spec), r"broken.xml: MuJoCo cannot load"),
        ("mjcf without actuators", lambda: load_character(no_actuators, spec), r"noact.xml: expected one actuator per joint DoF \(1\), found 0"),
        ("mjcf with a P-only clamp", lambda: load_character(_write(tmp / "pclamp.xml", (
            "<mujoco><worldbody><body><freejoint/><geom size='.1'/><body><joint name='j' type='hinge' damping='5'/>"
            "<geom size='.1'/></body></body></worldbody><actuator><position joint='j' kp='50' "
            "forcerange='-10 10'/></actuator></mujoco>")), spec),
         r"pclamp.xml: actuator '' needs forcelimited=\"false\" and a forcerange"),
        ("mjcf with three hinges", lambda: load_character(_write(tmp / "hinges.xml", (
            "<mujoco><worldbody><body name='root'><freejoint/><geom size='.1'/><body name='arm'>"
            "<joint type='hinge' axis='1 0 0'/><joint type='hinge' axis='0 1 0'/><geom size='.1'/>"
            "</body></body></worldbody></mujoco>")), spec),
         r"hinges.xml: body 'arm' has several joints; use one ball joint for 3 DoF"),
        ("mjcf with a slide joint", lambda: load_character(_write(tmp / "slide.xml", (
            "<mujoco><worldbody><body><freejoint/><geom size='.1'/><body><joint name='rail' type='slide'/>"
            "<geom size='.1'/></body></body></worldbody></mujoco>")), spec),
         r"slide.xml: joint 'rail' must be a ball or hinge joint"),
        ("mjcf missing key body", lambda: load_character(REPO_ROOT / "humanoid_xml" / "amp_humanoid.xml",
                                                         CharacterSpec(xml="x", key_bodies=("sword",), contact_bodies=())),
         r"amp_humanoid.xml: key body 'sword' not found"),
        ("missing checkpoint", lambda: policy_lib.load_pretrained(tmp / "no_run"), r"no_run: no such run folder or checkpoint"),
        ("not a run", lambda: policy_lib.load_pretrained(tmp), r"not an ase_jax run folder \(no checkpoints/ inside\)"),
    ]


def test_bad_inputs_give_clear_errors(tmp_path):
    for name, call, message in _bad_inputs(tmp_path):
        with pytest.raises(AseInputError, match=message):
            call()


def test_cli_exits_nonzero_and_keeps_existing_run(tmp_path):
    """A bad flag or motion file fails before touching an existing run's checkpoints and metrics."""
    train(_config(tmp_path, total_steps=32), console=_quiet())
    metrics = (tmp_path / "metrics.jsonl").read_bytes()
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    for flags, message in ((["--num_envs=-1"], "'num_envs' = -1 must be > 0"),
                           ([f"--motions={tmp_path / 'nothing.yaml'}"], "nothing.yaml: file not found"),
                           (["--num_envs=8", "--total_steps=512"], "num_envs: saved 4, now 8")):
        proc = subprocess.run([sys.executable, "-m", "ase_jax.pretrain", "--config=tiny", f"--workdir={tmp_path}", *flags],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, JAX_PLATFORMS="cpu"))
        assert proc.returncode == 1, proc.stderr
        assert message in " ".join(proc.stderr.split()), proc.stderr
    assert (tmp_path / "metrics.jsonl").read_bytes() == metrics
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == checkpoints
    assert json.loads(metrics.splitlines()[0])["env_steps"] == 32


def test_another_task_in_the_same_workdir_is_refused_and_leaves_the_run_as_it_was(tiny_pretrained_run,
                                                                                  tiny_heading_run, tmp_path, capsys):
    """`task --name=location` in the workdir of a heading run: exit 1 naming what differs; the heading
    run's checkpoints and metrics stay exactly as they were (nothing is set aside as unreadable)."""
    from ase_jax.task import main as task_main

    workdir = tmp_path / "heading"
    shutil.copytree(tiny_heading_run[0], workdir)  # the session's heading run stays untouched for other tests
    before = _files(workdir)
    assert any(name.startswith("checkpoints/") for name in before) and "metrics.jsonl" in before
    code = task_main(["--config=task_tiny", "--name=location", f"--llc={tiny_pretrained_run}", f"--workdir={workdir}"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    assert "cannot resume" in err and "leaves of the saved state differ" in err and ".params['actor']" in err, err
    assert "saved 'heading', now 'location'" in err, err
    assert "another --workdir" in err, err
    assert _files(workdir) == before
    assert not (workdir / "corrupt_checkpoints").exists()
