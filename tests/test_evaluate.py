"""The diversity metric and run comparison."""

import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ase_jax.env import observations as obs_lib
from ase_jax.evaluate import compare
from ase_jax.inference.skill_metrics import (PoseReference, clip_counts, clips_covered, nearest_clip_counts,
                                             summarize)
from ase_jax.motions import library as ml
from ase_jax.motions.dataset import load_dataset
from conftest import BUNDLED_YAML


def test_clips_covered_need_one_percent_of_the_transitions():
    """One definition for evaluate diversity and bench learn: a clip counts as covered when it holds
    the nearest demo transition of at least 1 % of the transitions (and at least one)."""
    counts = np.array([1.0, 197.0, 0.0, 2.0])  # 200 transitions: 1 is below 1 %, 2 is not
    assert int(clips_covered(counts)) == 2 and int(clips_covered(jnp.asarray(counts))) == 2
    assert int(clips_covered(np.zeros(3))) == 0
    weights = jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])  # the invalid (0) transitions are not counted
    nearest = jnp.array([[0, 1, 1], [1, 2, 0]])
    assert clip_counts(nearest, weights, 4).tolist() == [2.0, 2.0, 0.0, 0.0]
    s = summarize(np.array([2, 3]), ["a", "b"])
    assert s["clips_covered"] == 2 and s["top"][0]["clip"] == "b" and s["transitions"] == 5
    assert abs(s["entropy_nats"] - -(0.4 * np.log(0.4) + 0.6 * np.log(0.6))) < 1e-9


@pytest.mark.timeout(600)
def test_transitions_between_demo_frames_map_to_their_own_clip(sword_shield):
    """Frame pairs taken half a control step off the demo's own times (so not in the demo set) are
    attributed to the clip they come from, for every clip; the queries are built here from the
    motion library, in the discriminator's order (newest frame first), raw as a rollout records
    them: the pose reference standardises both sides with the data's own statistics."""
    character = sword_shield
    frame_size = obs_lib.amp_obs_size(character)
    dt = 1.0 / 30.0
    env = types.SimpleNamespace(character=character, control_dt=dt, amp_obs_size=frame_size)
    dataset = load_dataset(BUNDLED_YAML, character)
    pose = PoseReference.of(env, dataset)
    assert pose.demo.shape[1] == 2 * frame_size
    lib = ml.build_motion_lib(dataset, character)
    frame = jax.vmap(jax.vmap(obs_lib.amp_obs_frame, in_axes=(0, 0, 0, None)), in_axes=(0, 0, 0, None))
    names = [c.name for c in dataset.clips]
    times = [np.arange(1.5 * dt, clip.length - 1e-6, dt) for clip in dataset.clips]  # midway between demo times
    query_clip = np.concatenate([np.full(len(t), k) for k, t in enumerate(times)])
    t = np.concatenate(times)
    states = ml.state_at(lib, jnp.asarray(np.stack([query_clip, query_clip], -1)),
                         jnp.asarray(np.stack([t, t - dt], -1), jnp.float32))
    pairs = frame(states.qpos, states.qvel, states.body_pos, character).reshape(len(t), -1)
    for k, name in enumerate(names):
        mine = pairs[query_clip == k][:, None]  # (T, 1, 2F): one character
        counts = nearest_clip_counts(pose, mine, jnp.ones(mine.shape[:2], bool), len(names))
        assert counts.sum() == np.sum(query_clip == k) > 50
        assert counts[k] / counts.sum() > 0.95, (name, counts)
        assert summarize(counts, names)["top"][0]["clip"] == name


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
