"""The diversity metric and run comparison."""

import json
import types

import jax
import jax.numpy as jnp
import numpy as np
from brax.training.acme import running_statistics
from brax.training.acme.specs import Array as Spec

from ase_jax.config import load_config
from ase_jax.env import HumanoidEnv
from ase_jax.evaluate import compare, demo_transitions, nearest_clip_histogram, summarize
from ase_jax.motions.dataset import load_dataset
from conftest import BUNDLED_YAML


def test_histogram_counts_nearest_clips():
    demo = jnp.array([[0.0, 0.0], [1.0, 0.0], [10.0, 10.0], [11.0, 10.0]])
    clip = np.array([0, 0, 1, 1])
    agent = jnp.array([[0.2, 0.1], [10.4, 9.9], [10.9, 10.2], [0.9, 0.0], [10.0, 10.1]])
    counts = nearest_clip_histogram(agent, demo, clip, 2, chunk=2)
    assert counts.tolist() == [2, 3]
    s = summarize(counts, ["a", "b"])
    assert s["clips_covered"] == 2 and s["top"][0]["clip"] == "b"
    assert abs(s["entropy_nats"] - -(0.4 * np.log(0.4) + 0.6 * np.log(0.6))) < 1e-9


def test_rollouts_that_copy_one_clip_map_to_that_clip(sword_shield):
    """Transitions taken from one clip (plus noise) are attributed to that clip almost always."""
    config = load_config("tiny", {"state_init": "default"})
    env = HumanoidEnv(config, sword_shield)
    amp_dim = env.history * env.amp_obs_size
    fake = types.SimpleNamespace(env=env, amp_norm=running_statistics.init_state(Spec((amp_dim,), jnp.float32)))
    dataset = load_dataset(BUNDLED_YAML, sword_shield)
    demo, clip_ids = demo_transitions(fake, dataset)
    walk = [c.name for c in dataset.clips].index("walk_forward")
    copy = demo[clip_ids == walk]
    copy = copy + 0.01 * jax.random.normal(jax.random.PRNGKey(0), copy.shape)
    counts = nearest_clip_histogram(copy, demo, clip_ids, len(dataset.clips))
    assert counts[walk] / counts.sum() > 0.95, counts
    result = summarize(counts, [c.name for c in dataset.clips])
    assert result["top"][0]["clip"] == "walk_forward"


def test_compare_plots_runs(tmp_path):
    runs = []
    for name, rewards in (("a", [0.1, 0.2, 0.4]), ("b", [0.1, 0.1, 0.15])):
        run = tmp_path / name
        run.mkdir()
        (run / "metrics.jsonl").write_text("\n".join(json.dumps({"env_steps": 32 * (i + 1), "reward/task": r})
                                                     for i, r in enumerate(rewards)))
        runs.append(str(run))
    (tmp_path / "a" / "diversity.json").write_text(json.dumps({"clips_covered": 5, "entropy_nats": 1.2}))
    summary = compare(runs, tmp_path / "cmp.png")
    assert (tmp_path / "cmp.png").stat().st_size > 1000
    assert summary[runs[0]]["reward/task"] == 0.4 and summary[runs[0]]["diversity"]["clips_covered"] == 5
