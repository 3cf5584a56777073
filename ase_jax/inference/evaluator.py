"""The evaluation of a training state, compiled once: `bench learn` calls it from the training
loop's progress hook on the state's own arrays (params, normalisers), as brax's `Evaluator` serves
its trainer.

Its characters start standing (env_factory's `evaluate` env), each holds its own random unit latent
for one episode with deterministic actions, and beside them, in the same batch and the same
`rollout.unroll`, the skill judge's N latents x K episodes act with the policy's own action noise
(ase_jax.inference.skill_judge). The metrics, each defined here once:

    eval/survival       share of the steps before the first fall
    eval/falls          share of the characters that fell
    eval/pose_error     distance of each transition (two consecutive discriminator frames) to the
                        nearest transition of the motion data, in the data's own standard deviations
                        (skill_metrics.PoseReference)
    eval/clips_covered  clips holding the nearest demo transition of at least 1 % of the transitions
                        (skill_metrics.clips_covered, as `evaluate diversity` counts them)
    eval/enc_similarity mean e(o).z of the run's encoder for the latent followed; ..._shuffled for
                        another character's latent
    eval/z_sensitivity  RMS difference of the actions under the character's latent and another one's
    judge/...           the skill judge's figures (JUDGE_KEYS; skill_judge.judge)
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp

from ase_jax.agents import ppo
from ase_jax.agents.ase import networks as ase_networks
from ase_jax.agents.ase.pretrained import deterministic_action
from ase_jax.config import Config
from ase_jax.env_factory import make_env
from ase_jax.inference import skill_judge
from ase_jax.inference.rollout import reset_batch, unroll
from ase_jax.inference.skill_metrics import PoseReference, clip_counts, clips_covered

# the skill judge's figures in each row (skill_judge.judge's report)
JUDGE_KEYS = ("r2", "cosine", "accuracy", "chance", "close_share")


def make_evaluator(config: Config, env, dataset, nets: ase_networks.ASENetworks, *, eval_envs: int,
                   eval_seconds: float, judge_latents: int, judge_episodes: int, shown: int = 4):
    """`evaluate(params, obs_norm, amp_norm) -> (metrics, qpos of the first `shown` characters, the
    judge's records or None)`, compiled once, and its env and the judge's plan (None for plain AMP or
    judge_latents=0). The evaluation's characters and the judge's run in one batch (one
    `unroll`, one compile): the evaluation's each hold one latent for one episode, which cannot be
    split into halves, so the judge has its own N x K episodes beside them."""
    n, steps = eval_envs, max(2, round(eval_seconds / env.control_dt))
    eval_env = make_env(config, "evaluate", character=env.character, num_envs=n, episode_length=steps + 2)
    key = jax.random.PRNGKey(config.run.seed + 12345)
    k_z, k_reset = jax.random.split(key)
    z = ase_networks.sample_latents(k_z, (n,), config.ase.latent_dim)
    z_other = jnp.roll(z, 1, axis=0)  # each character's neighbour's latent: a random latent for it
    pose = PoseReference.of(env, dataset)
    num_clips = len(dataset.clips)
    pair = 2 * env.amp_obs_size
    clip = config.ppo.normalize_obs_clip
    shown = min(shown, n)
    plan = None
    if nets.latent_dim > 0 and judge_latents > 0:
        k_plan, k_judge = jax.random.split(jax.random.fold_in(key, 1))
        plan = skill_judge.plan_episodes(k_plan, judge_latents, judge_episodes, nets.latent_dim,
                                         steps, env.control_dt, skill_judge.action_noise_std(config))
        z = jnp.concatenate([z, jnp.asarray(plan.episode_latents)])

    def start():  # the evaluation's characters, then the judge's (reset apart: the former's as before)
        states = reset_batch(eval_env, k_reset, n)
        if plan is None:
            return states
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), states,
                            reset_batch(eval_env, k_judge, plan.num_episodes))

    @jax.jit
    def evaluate(params, obs_norm, amp_norm):
        def policy(carry, state, t):  # deterministic actions; extras: how much they change with z
            mu = deterministic_action(nets, params["actor"], obs_norm, state.obs, z, clip)
            mu_other = deterministic_action(nets, params["actor"], obs_norm, state.obs[:n], z_other, clip)
            if plan is not None:  # the judge's characters act with the policy's noise (skill_judge.judge_policy)
                mu = mu.at[n:].add(plan.noise(t, mu[n:].shape))
            return carry, mu, jnp.sqrt(jnp.mean(jnp.square(mu[:n] - mu_other), axis=-1))

        def record(s, z_gap):
            return (s.next_amp_obs[:n].reshape(n, -1), s.done, z_gap, s.data.qpos[:shown],
                    s.next_amp_obs[n:, :2], s.data.qpos[n:, :7])

        _, _, (amp, done_all, z_gap, qpos, judge_pairs, judge_root) = unroll(eval_env, start(), policy, steps, record)
        done = done_all[:, :n]
        # Steps up to and including the first fall (the fall is the policy's doing); none after it.
        alive = (jnp.cumsum(done, axis=0) - done) == 0
        w = alive.astype(jnp.float32)
        mean = lambda x: jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1.0)
        enc = nets.encode_apply(params["disc"], ppo.normalize(amp, amp_norm, clip))
        distance, nearest_clip = pose.match(amp[..., :pair])
        counts = clip_counts(nearest_clip, w, num_clips)
        metrics = {
            "eval/survival": jnp.mean(jnp.sum(w, axis=0) - jnp.any(done, axis=0)) / steps,
            "eval/falls": jnp.mean(jnp.any(done, axis=0).astype(jnp.float32)),
            "eval/pose_error": mean(distance),
            "eval/clips_covered": clips_covered(counts).astype(jnp.float32),
        }
        if nets.latent_dim > 0:  # plain AMP (latent_dim 0) has no latent and no encoder: these are n/a
            metrics.update({"eval/enc_similarity": mean(jnp.sum(enc * z[:n], -1)),
                            "eval/enc_similarity_shuffled": mean(jnp.sum(enc * z_other, -1)),
                            "eval/z_sensitivity": mean(z_gap)})
        records = None if plan is None else skill_judge.episode_records(judge_pairs, done_all[:, n:], judge_root,
                                                                         pose, plan)
        return metrics, jnp.swapaxes(qpos, 0, 1), records

    return evaluate, eval_env, plan


def judge_metrics(records, plan, clip_names) -> tuple[dict, dict | None]:
    """(the row's judge keys, the judge's whole report) of an evaluation's records; ({}, None)
    without a judge."""
    if plan is None:
        return {}, None
    report = skill_judge.judge(records, plan, clip_names)
    return {f"judge/{k}": report[k] for k in JUDGE_KEYS}, report


class CompileAhead(threading.Thread):
    """`fn.lower(*args).compile()` in a thread (XLA compiles without holding Python's lock, so the
    training step can compile at the same time); `result`, after `join()`, is the compiled program,
    or `fn` itself if compiling ahead failed (it then compiles at its first call, as before)."""

    def __init__(self, fn, args):
        super().__init__(daemon=True)
        self.fn, self.args, self.result = fn, args, fn
        self.start()

    def run(self):
        try:
            self.result = self.fn.lower(*self.args).compile()
        except Exception:  # noqa: BLE001 - the plain call compiles it, and raises what it raises
            self.result = self.fn
