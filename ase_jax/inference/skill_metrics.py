"""The skill metrics of rollouts: discriminator transitions of the motion data and of characters
under random latents, and the histogram of the clips nearest to them (the nearest-clip diversity
metric of `python -m ase_jax.evaluate diversity`, also used by `bench learn`'s evaluation); the
pose error of a transition to the data in the data's own units (`PoseReference`, used by `bench
learn`'s evaluation and the skill judge)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ase_jax.agents.ase.networks import sample_latents
from ase_jax.env import observations as obs_lib
from ase_jax.inference.rollout import latent_policy, reset_batch, unroll
from ase_jax.motions import library as ml


def squared_distances(features: jax.Array, demo: jax.Array, demo_sq: jax.Array) -> jax.Array:
    """|f - d|^2 of every feature row against every demo row, (..., D), via the expansion
    |f|^2 - 2 f.d + |d|^2 (`demo_sq` = |d|^2 per demo row, computed once by the caller)."""
    return jnp.sum(features**2, axis=-1, keepdims=True) - 2 * features @ demo.T + demo_sq


# Features the data barely moves (a joint one clip set never bends) would blow up in their own std's
# units: below this floor (rad, m, rad/s, m/s) a feature counts in its plain units.
POSE_STD_FLOOR = 0.1


@dataclasses.dataclass(frozen=True)
class PoseReference:
    """Every demo transition (two consecutive discriminator frames, newest first) standardised with
    the data's own mean and std per feature (floored at POSE_STD_FLOOR), and its clip index:
    independent of anything a run learns or normalises."""

    mean: jax.Array
    std: jax.Array
    demo: jax.Array  # (M, 2F) standardised
    demo_sq: jax.Array  # (M,) |demo|^2
    clip: jax.Array  # (M,) clip index of each

    @classmethod
    def of(cls, env, dataset) -> "PoseReference":
        demo, clip = (np.asarray(x) for x in demo_transition_frames(env, dataset))
        mean, std = demo.mean(0), np.maximum(demo.std(0), POSE_STD_FLOOR)
        demo_n = (demo - mean) / std
        return cls(*(jnp.asarray(x) for x in (mean, std, demo_n, np.sum(demo_n**2, axis=-1), clip)))

    def match(self, pairs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(pose error, clip of the nearest demo transition) of raw transitions `pairs` (T, E, 2F),
        one time step at a time (memory E x M, not T x E x M). The pose error is the distance to the
        nearest demo transition, RMS over features in the data's std units: lower is closer."""

        def one(x):
            d2 = squared_distances((x - self.mean) / self.std, self.demo, self.demo_sq)
            return (jnp.sqrt(jnp.maximum(jnp.min(d2, axis=-1), 0.0) / x.shape[-1]),
                    self.clip[jnp.argmin(d2, axis=-1)])

        return jax.lax.map(one, pairs)


def nearest_clip_histogram(agent: jax.Array, demo: jax.Array, demo_clip: jax.Array, num_clips: int,
                           chunk: int = 1024) -> np.ndarray:
    """Counts, per clip, of agent features whose nearest demo feature (Euclidean) belongs to it."""
    agent, demo = jnp.asarray(agent), jnp.asarray(demo)
    demo_sq = jnp.sum(demo**2, axis=-1)

    @jax.jit
    def nearest(block):
        return jnp.argmin(squared_distances(block, demo, demo_sq), axis=-1)

    pad = (-agent.shape[0]) % chunk
    blocks = jnp.pad(agent, ((0, pad), (0, 0))).reshape(-1, chunk, agent.shape[-1])
    idx = np.concatenate([np.asarray(nearest(b)) for b in blocks])[: agent.shape[0]]
    return np.bincount(np.asarray(demo_clip)[idx], minlength=num_clips)


def summarize(counts: np.ndarray, names, top: int = 50) -> dict:
    share = counts / max(counts.sum(), 1)
    nonzero = share[share > 0]
    order = np.argsort(-counts)[:top]
    return {"transitions": int(counts.sum()), "clips": len(names), "clips_covered": int((counts > 0).sum()),
            "entropy_nats": float(-(nonzero * np.log(nonzero)).sum()),
            "max_entropy_nats": float(math.log(len(names))),
            "top": [{"clip": names[i], "share": float(share[i])} for i in order if counts[i] > 0]}


def _pair_features(frames: jax.Array, amp_norm, frame_size: int) -> jax.Array:
    """[frame t+1, frame t] normalised with the first two slots of the discriminator normaliser."""
    mean, std = amp_norm.mean[: 2 * frame_size], amp_norm.std[: 2 * frame_size]
    return (frames - mean) / std


def demo_transitions(pretrained, dataset) -> tuple[jax.Array, np.ndarray]:
    """Features of every consecutive pair of 30 Hz frames of every clip, normalised with the run's
    discriminator normaliser, and their clip index."""
    frames, clip_ids = demo_transition_frames(pretrained.env, dataset)
    return _pair_features(frames, pretrained.amp_norm, pretrained.env.amp_obs_size), clip_ids


def demo_transition_frames(env, dataset) -> tuple[jax.Array, np.ndarray]:
    """Raw [frame t+1, frame t] discriminator features of every consecutive pair of control-rate
    frames of every clip of `dataset` on `env`'s character, and the clip index of each."""
    lib = ml.build_motion_lib(dataset, env.character)
    dt = env.control_dt
    clip_ids, times = [], []
    for c, clip in enumerate(dataset.clips):
        t = np.arange(dt, clip.length + 1e-6, dt)
        clip_ids.append(np.full(len(t), c))
        times.append(t)
    clip_ids, times = np.concatenate(clip_ids), np.concatenate(times)
    pair_times = jnp.stack([times, times - dt], axis=-1)  # newest first, as the discriminator sees it
    states = ml.state_at(lib, jnp.asarray(np.stack([clip_ids, clip_ids], -1)), jnp.asarray(pair_times, jnp.float32))
    frame = jax.vmap(jax.vmap(obs_lib.amp_obs_frame, in_axes=(0, 0, 0, None)), in_axes=(0, 0, 0, None))
    return frame(states.qpos, states.qvel, states.body_pos, env.character).reshape(len(times), -1), clip_ids


def agent_transitions(pretrained, num_latents: int, steps: int, seed: int = 0) -> jax.Array:
    """Features of the policy's transitions, one random latent per character held for `steps` steps."""
    env = pretrained.env
    k_reset, k_z = jax.random.split(jax.random.PRNGKey(seed))
    z = sample_latents(k_z, (num_latents,), pretrained.config.ase.latent_dim)

    @jax.jit
    def run(start):
        record = lambda s, _: (s.next_amp_obs[:, :2].reshape(num_latents, -1), s.done)
        return unroll(env, start, latent_policy(pretrained.action, z), steps, record)[2]

    pairs, done = run(reset_batch(env, k_reset, num_latents))
    pairs = pairs.reshape(-1, pairs.shape[-1])[np.asarray(done).reshape(-1) == 0]  # skip resets' stale pairs
    return _pair_features(pairs, pretrained.amp_norm, env.amp_obs_size)
