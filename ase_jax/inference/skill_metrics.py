"""The skill metrics of rollouts, each defined once: the pose error of a transition (two consecutive
discriminator frames) to the motion data and the clip of its nearest demo transition, in the data's
own units (`PoseReference`: independent of anything a run learns or normalises); the clips covered
and the nearest-clip histogram of a batch of rollouts (`python -m ase_jax.evaluate diversity`,
`bench learn`'s evaluation, inference.evaluator); the skill judge (inference.skill_judge) uses the
same pose reference."""

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


# A clip is covered when it holds the nearest demo transition of at least this share of the
# transitions (a stray transition near a clip does not make the policy perform it).
COVERED_SHARE = 0.01


def clip_counts(nearest_clip: jax.Array, weights: jax.Array, num_clips: int) -> jax.Array:
    """Per clip, the summed `weights` of the transitions whose nearest demo transition is in it."""
    return jnp.zeros(num_clips).at[jnp.ravel(nearest_clip)].add(jnp.ravel(weights).astype(jnp.float32))


def clips_covered(counts):
    """The number of clips covered (COVERED_SHARE) given per-clip counts (numpy or jax arrays)."""
    return ((counts > 0) & (counts >= COVERED_SHARE * counts.sum())).sum()


def summarize(counts: np.ndarray, names, top: int = 50) -> dict:
    counts = np.asarray(counts, np.float64)
    share = counts / max(counts.sum(), 1)
    nonzero = share[share > 0]
    order = np.argsort(-counts)[:top]
    return {"transitions": int(round(counts.sum())), "clips": len(names), "clips_covered": int(clips_covered(counts)),
            "covered_share": COVERED_SHARE, "entropy_nats": float(-(nonzero * np.log(nonzero)).sum()),
            "max_entropy_nats": float(math.log(len(names))),
            "top": [{"clip": names[i], "share": float(share[i])} for i in order if counts[i] > 0]}


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


def agent_transitions(pretrained, num_latents: int, steps: int, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """(raw transitions (steps, num_latents, 2F), whether each is the policy's own (steps, num_latents):
    not a reset's stale pair) of characters each holding one random latent for `steps` steps."""
    env = pretrained.env
    k_reset, k_z = jax.random.split(jax.random.PRNGKey(seed))
    z = sample_latents(k_z, (num_latents,), pretrained.config.ase.latent_dim)

    @jax.jit
    def run(start):
        record = lambda s, _: (s.next_amp_obs[:, :2].reshape(num_latents, -1), s.done)
        return unroll(env, start, latent_policy(pretrained.action, z), steps, record)[2]

    pairs, done = run(reset_batch(env, k_reset, num_latents))
    return pairs, done == 0


def nearest_clip_counts(pose: "PoseReference", pairs: jax.Array, valid: jax.Array, num_clips: int) -> np.ndarray:
    """Per clip, how many of the valid transitions `pairs` (T, E, 2F) have their nearest demo
    transition in it."""
    _, clip = pose.match(pairs)
    return np.asarray(clip_counts(clip, valid, num_clips))
