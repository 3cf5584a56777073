"""Pre-training end to end on the tiny config: training, checkpoints, resume; several devices (the
training functions on two host devices, on the toy env)."""

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from rich.console import Console

from ase_jax.checkpoint.checkpointer import Checkpointer
from ase_jax.config import load_config
from ase_jax.pretrain import train
from conftest import REPO_ROOT, TEST_CACHE_DIR


def _config(workdir, **overrides):
    return load_config("tiny", {"workdir": str(workdir), **overrides})


def _saved_params(workdir, step):
    ckpt = Checkpointer(workdir, 5)
    raw = ckpt.manager.restore(step)
    ckpt.close()
    return raw["state"]


@pytest.fixture(scope="session")
def two_iterations(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run_a")
    log = io.StringIO()  # not a terminal, as under nohup or a batch scheduler
    metrics = train(_config(workdir), Console(file=log, width=300))
    return workdir, metrics, log.getvalue()


def test_tiny_run_trains_and_checkpoints(two_iterations):
    workdir, metrics, _ = two_iterations
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [line["env_steps"] for line in lines] == [32, 64]
    for key in ("loss/total", "loss/actor", "loss/critic", "disc_loss", "enc_loss", "reward/disc", "reward/enc",
                "disc_demo_accuracy", "disc_agent_accuracy", "episode/length"):
        assert np.isfinite(lines[-1][key]), key
    assert metrics["skipped_updates"] == 0
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2"]
    info = json.loads((workdir / "run_info.json").read_text())
    assert info["config"]["ppo"]["num_envs"] == 4 and "jax" in info["versions"]
    assert any((workdir / "tensorboard").iterdir())


def test_without_a_terminal_progress_comes_as_plain_lines_and_the_run_ends_with_where_to_look(two_iterations):
    workdir, _, log = two_iterations
    assert "pretrain: compiling the training step" in log
    assert "pretrain: iteration 2/2  64 samples" in log  # the last iteration always gets its line
    assert f"results in {workdir}" in log
    assert f"python -m ase_jax.play --checkpoint={workdir} --grid=4" in log
    assert f"python -m ase_jax.task --name=heading --llc={workdir}" in log


def test_resume_gives_identical_parameters(two_iterations, tmp_path):
    """1 iteration, stop, rerun: the result equals the uninterrupted 2-iteration run bit for bit."""
    workdir_a, _, _ = two_iterations
    train(_config(tmp_path), max_iterations=1)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]
    train(_config(tmp_path))  # resumes from iteration 1
    a, b = _saved_params(workdir_a, 2), _saved_params(tmp_path, 2)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["env_steps"] for line in lines] == [32, 64]


def test_a_resumed_state_has_the_types_and_devices_of_a_fresh_one(two_iterations):
    """So that the training step a resumed run calls is the program compiled (and cached on disk)
    for a fresh start: a weakly typed leaf or host arrays would make it another one."""
    import jax

    from ase_jax.training_setup import compiled_train_fns
    from ase_jax.run_loop import train_loop

    workdir, _, _ = two_iterations
    config = _config(workdir)  # a finished run: resumes at iteration 2 with nothing left to train
    _, _, fns = compiled_train_fns(config)
    seen = {}
    train_loop(config, fns, Console(quiet=True), "resume", progress_fn=lambda i, state, m: seen.setdefault(i, state))
    describe = lambda tree: [(x.aval, x.sharding) for x in jax.tree.leaves(tree)]
    assert describe(seen[2]) == describe(fns.init(jax.random.PRNGKey(0)))
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2"]


def test_resume_refuses_a_different_run(two_iterations):
    from ase_jax.errors import AseInputError

    workdir, _, _ = two_iterations
    with pytest.raises(AseInputError, match=r"ppo.num_envs: saved 4, now 8.*left as they are"):
        train(_config(workdir, num_envs=8, total_steps=128))


MULTI_DEVICE_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from ase_jax.agents.ase.train import make_train_fns
    from ase_jax.env.toy import ToyEnv, toy_config
    assert jax.local_device_count() == 2, jax.devices()
    # The toy env: the data-parallel code is the training functions', the same for every env, and the
    # toy env's step compiles in seconds where the tiny humanoid's takes minutes under a cold cache.
    # The discriminator's gradient penalty and logit regulariser on, as in the character's configs.
    config = toy_config(diversity_coef=0.0, amp_minibatch_size=16, disc_grad_penalty=5.0, disc_logit_reg=0.01)
    env = ToyEnv()
    fns = make_train_fns(config, env)
    # 1. Gradients: the mean over two devices, each with half a batch, equals the full-batch gradient.
    state = fns.init(jax.random.PRNGKey(0))
    params = jax.tree.map(lambda x: x[0], state.params)
    norms = jax.tree.map(lambda x: x[0], (state.obs_norm, state.amp_norm, state.value_norm))
    k = iter(jax.random.split(jax.random.PRNGKey(1), 16))
    n, amp_dim = 16, env.history * env.amp_obs_size
    batch = {"obs": jax.random.normal(next(k), (n, env.obs_size)),
             "latents": jax.random.normal(next(k), (n, config.ase.latent_dim)),
             "actions": jax.random.normal(next(k), (n, env.action_size)) * 0.3,
             "log_prob": jax.random.normal(next(k), (n,)), "stochastic": jnp.ones(n),
             "advantages": jax.random.normal(next(k), (n,)), "returns": jax.random.normal(next(k), (n,)),
             "amp_obs": jax.random.normal(next(k), (n, amp_dim))}
    batch["latents"] /= jnp.linalg.norm(batch["latents"], axis=-1, keepdims=True)
    demo, replay = jax.random.normal(next(k), (n, amp_dim)), jax.random.normal(next(k), (n, amp_dim))
    key = jax.random.PRNGKey(2)
    (_, _), full = jax.jit(fns.loss_and_grad)(params, norms, batch, demo, replay, key)
    halves = lambda x: x.reshape((2, x.shape[0] // 2) + x.shape[1:])
    split = jax.pmap(lambda b, d, r: jax.lax.pmean(fns.loss_and_grad(params, norms, b, d, r, key)[1], "i"),
                     axis_name="i")(jax.tree.map(halves, batch), halves(demo), halves(replay))
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(split)):
        np.testing.assert_allclose(np.asarray(b[0]), np.asarray(a), rtol=2e-4, atol=2e-6)
    # 2. A full data-parallel iteration keeps the parameter replicas identical.
    state, metrics = fns.step(state)
    for leaf in jax.tree.leaves(state.params):
        leaf = np.asarray(leaf)
        assert np.all(np.isfinite(leaf)) and np.array_equal(leaf[0], leaf[1])
    assert int(np.asarray(state.iteration)[0]) == 1
    print("MULTI_DEVICE_OK")
""")


def test_two_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               JAX_TEST_CACHE_DIR=str(TEST_CACHE_DIR))
    preamble = ("import jax, os\n"
                "jax.config.update('jax_compilation_cache_dir', os.environ['JAX_TEST_CACHE_DIR'])\n"
                "jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)\n")
    proc = subprocess.run([sys.executable, "-c", preamble + MULTI_DEVICE_SCRIPT],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=540)
    assert "MULTI_DEVICE_OK" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-5000:]


def test_runs_with_equal_configs_share_compiled_functions(tmp_path):
    """Repeated runs in one process (notebooks, tests) reuse the compiled step instead of compiling
    (and mapping) it again; anything that changes the computation gets its own."""
    from ase_jax.training_setup import compiled_train_fns

    _, _, a = compiled_train_fns(_config(tmp_path / "a", total_steps=64))
    _, _, b = compiled_train_fns(_config(tmp_path / "b", total_steps=128, checkpoint_every=3))
    _, _, c = compiled_train_fns(_config(tmp_path / "a", num_envs=8))
    assert a is b and a is not c
