"""`python -m ase_jax.bench learn`: a fixed protocol that measures what pre-training learns.

    python -m ase_jax.bench learn [--out=DIR] [--ablation=no_sd|no_div|control] [--samples=N] [--minutes=M]
                                  [--eval_every=K] [--eval_envs=E] [--eval_seconds=S] [--video=false]
                                  [--judge_latents=8] [--judge_episodes=4] [--config=cpu] [--key=value ...]
    python -m ase_jax.bench learn --plot=OUT.png DIR [DIR ...]      (curves of earlier runs, overlaid)
    python -m ase_jax.bench learn --diagnose [--config=NAME]        (the latent path at initialisation)

The protocol (the defaults; BENCHMARKS.md, "Learning", has its figures): the `cpu` config (the
sword-and-shield character on the bundled clips, 64 envs, 256-wide networks: what
`python -m ase_jax.pretrain` trains on a CPU), seed 0, 1,024,000 policy samples (500 iterations;
about 20 minutes on 2 CPU cores), evaluated before training and every 50 iterations. Training metrics are
averaged over the iterations since the previous evaluation:

    disc reward, disc accuracy on demo and agent samples     (training metrics)
    diversity loss: how little the actions depend on z       (training metric; 1 = not at all)

Each evaluation rolls out `eval_envs` characters from the standing pose for `eval_seconds` with
deterministic actions, each holding its own random unit latent (the same latents every time), and
measures:

    survival            share of the steps before the first fall
    enc similarity      mean e(o).z of the encoder on the visited states, for the latent being
                        followed, and (enc similarity shuffled) for another character's latent: the
                        gap is how well skills can be told apart (0 when they cannot)
    z sensitivity       RMS difference of the actions for the visited observations under the
                        character's latent and another one's
    pose error          distance of each transition (two consecutive discriminator frames) to the
                        nearest transition of the motion data, in units of the data's own standard
                        deviation per feature (at least 0.1; RMS over features); lower is closer
                        to the data
    clips covered       clips holding the nearest transition of at least 1 % of the transitions

The enc similarity is the run's own encoder grading motions the policy was trained to make it
decode. The skill judge is independent of everything the run optimised (ase_jax.inference.skill_judge
has the full definition): beside those characters, in the same batch, `judge_latents` latents (the
same every time) are held by `judge_episodes` characters each, from the standing pose, acting with
the policy's own action noise (the same draws every time: deterministic actions would make a
latent's episodes copies of each other). After the first second, per second of motion,
the mean and std of each feature of the discriminator's frame (root height, rotation and velocities
in the heading frame, joints, key bodies) are the features; a fresh ridge decoder from them to the
latent is fitted on half of each latent's episodes and scored on the other half:

    judge/r2            held-out R^2 of the decoded latent (0: no better than the mean latent)
    judge/cosine        held-out cosine of decoded and true latent, both about the mean latent (0: chance)
    judge/accuracy      share of held-out episodes whose decoded latent is nearest (cosine) to its own
                        latent among the judge's; judge/chance = 1 / judge_latents
    judge/close_share   share of the judge's transitions with a pose error below 1

learn.json's `judge` holds the latest evaluation's whole report, with per latent what a user sees:
root speed, turning rate, falls, and the nearest clip where the pose is close to the data.

It trains through the same loop as `pretrain` (`run_loop.train_loop`), so `--out` (default
runs/bench_learn) is a run folder: `checkpoints/` (one at every evaluation and at the end),
`metrics.jsonl` and TensorBoard scalars of every iteration, `run_info.json`; `play`, `evaluate` and
`task --llc` take it. Beside those: `learn.json` (protocol, device, command, the rows, and per curve
its start, end, best and the samples after which it came within 10 % of its best: where it stopped
improving; rewritten at every evaluation, so a run cut short keeps its rows), `curves.png`, and
`grid.mp4`, a 2x2 video of four of the evaluation's latents at the end (`grid.gif` where no ffmpeg
is found; skipped with a note where rendering is not available). Rerun on the same folder, a run
continues from its latest checkpoint (a time box, a killed run, or more `--samples`); `segments`
in learn.json times each invocation. Same seed, same device kind: same numbers, resumed or not.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from rich.console import Console

from ase_jax import cli
from ase_jax.agents import ppo
from ase_jax.agents.ase import networks as ase_networks
from ase_jax.config import Config, config_from_args, to_dict
from ase_jax.errors import AseInputError
from ase_jax.inference.skill_judge import check_sizes
from ase_jax.profiling import peak_memory
from ase_jax.run_loop import pretraining_next_steps, train_loop

# control: the recipe with no skill-discovery pressure (no encoder reward, no diversity term) but the
# encoder still trained, so that its similarity gap measures what the init and imitation alone put
# into the motions; a run minus its control is skill discovery.
ABLATIONS = {"none": {}, "no_sd": {"enc_reward_w": 0.0, "enc_coef": 0.0}, "no_div": {"diversity_coef": 0.0},
             "control": {"enc_reward_w": 0.0, "diversity_coef": 0.0}}
DEFAULT_CONFIG = "cpu"
DEFAULT_SAMPLES = 1_024_000
DEFAULT_EVAL_EVERY = 50
VIDEO_CHARACTERS = 4
# Curves and the direction in which each improves (+1 up, -1 down); `train/...` are training metrics.
CURVES = {
    "train/reward_disc": 1, "train/disc_demo_accuracy": 0, "train/disc_agent_accuracy": 0,
    "train/enc_reward_clipped": 1, "train/episode_length": 1,
    "train/diversity_loss": -1, "eval/survival": 1, "eval/enc_similarity": 1, "eval/enc_similarity_shuffled": 0,
    "eval/enc_similarity_gap": 1, "eval/z_sensitivity": 1, "eval/pose_error": -1, "eval/clips_covered": 1,
    "judge/r2": 1, "judge/cosine": 1, "judge/accuracy": 1, "judge/chance": 0, "judge/close_share": 1,
}
# the skill judge's figures in each row (ase_jax.inference.skill_judge)
JUDGE_KEYS = ("r2", "cosine", "accuracy", "chance", "close_share")
TRAIN_KEYS = {"reward/disc": "train/reward_disc", "reward/enc": "train/reward_enc",
              "reward/enc_clipped": "train/enc_reward_clipped",
              "disc_demo_accuracy": "train/disc_demo_accuracy", "disc_agent_accuracy": "train/disc_agent_accuracy",
              "loss/diversity": "train/diversity_loss", "enc_similarity": "train/enc_similarity",
              "episode/length": "train/episode_length"}


# The reference's own training curve for the sword-and-shield character (the ASE author's log in
# MimicKit's data archive, `ase_humanod_sword_shield_log.txt`: 4096 envs x 32 steps, one row every
# 200 iterations; docs/reference.md §9): samples, Enc_Reward_Mean (max(e.z, 0); chance 0.05 for a
# 64-D latent), Diversity_Loss, training episode length. The log has no row between 1.3e5 and 2.6e7.
REFERENCE_CURVE = (
    {"samples": 1.3e5, "enc_reward": 0.050, "diversity_loss": 0.999997, "episode_length": 22},
    {"samples": 2.6e7, "enc_reward": 0.218, "diversity_loss": 0.99885, "episode_length": 51},
    {"samples": 5.3e7, "enc_reward": 0.362, "diversity_loss": 0.99654, "episode_length": 126},
    {"samples": 7.9e7, "enc_reward": 0.444, "diversity_loss": 0.99411, "episode_length": 235},
    {"samples": 1.3e8, "enc_reward": 0.506, "diversity_loss": 0.99020, "episode_length": 277},
    {"samples": 2.6e8, "enc_reward": 0.549, "diversity_loss": 0.98173, "episode_length": 292},
)
# our training curve beside each of the reference's columns, and the direction in which it improves
REFERENCE_COLUMNS = {"enc_reward": ("train/enc_reward_clipped", 1), "diversity_loss": ("train/diversity_loss", -1),
                     "episode_length": ("train/episode_length", 1)}


def reference_comparison(rows: list[dict]) -> dict:
    """Per reference column and row past its start: the first of our sample counts at which our
    curve reached the reference's value there (None: not reached), and how many times fewer
    samples that took."""
    out = {}
    for column, (key, direction) in REFERENCE_COLUMNS.items():
        points = [(r["env_steps"], r[key]) for r in rows if r.get(key) is not None]
        entries = []
        for ref in REFERENCE_CURVE[1:]:
            reached = next((n for n, v in points if (v - ref[column]) * direction >= 0), None)
            entries.append({"reference_samples": ref["samples"], "reference_value": ref[column],
                            "our_samples": reached,
                            "fewer_samples_x": round(ref["samples"] / reached, 1) if reached else None})
        out[column] = {"ours_end": points[-1][1] if points else None, "rows": entries}
    return out


@dataclasses.dataclass(frozen=True)
class Protocol:
    samples: int = DEFAULT_SAMPLES
    eval_every: int = DEFAULT_EVAL_EVERY
    eval_envs: int = 32
    eval_seconds: float = 5.0
    minutes: float | None = None  # a time box: stop after this much wall time (whole iterations)
    video: bool = True
    ablation: str = "none"
    config: str = DEFAULT_CONFIG  # the config file the run started from (before the ablation and flags)
    judge_latents: int = 8  # the skill judge's latents (0: no judge) ...
    judge_episodes: int = 4  # ... and episodes of each


# --- evaluation ----------------------------------------------------------------------------------


def make_evaluator(config: Config, env, dataset, nets: ase_networks.ASENetworks, protocol: Protocol):
    """`evaluate(params, obs_norm, amp_norm) -> (metrics, qpos of the first characters, the judge's
    records or None)`, compiled once, and its env and the judge's plan (None for plain AMP or
    --judge_latents=0). The evaluation's characters and the judge's run in one batch (one
    `unroll`, one compile): the evaluation's each hold one latent for one episode, which cannot be
    split into halves, so the judge has its own N x K episodes beside them."""
    from ase_jax.env_factory import make_env
    from ase_jax.inference import skill_judge
    from ase_jax.inference.rollout import reset_batch, unroll
    from ase_jax.inference.skill_metrics import PoseReference

    n, steps = protocol.eval_envs, max(2, round(protocol.eval_seconds / env.control_dt))
    eval_env = make_env(config, "evaluate", character=env.character, num_envs=n, episode_length=steps + 2)
    key = jax.random.PRNGKey(config.run.seed + 12345)
    k_z, k_reset = jax.random.split(key)
    z = ase_networks.sample_latents(k_z, (n,), config.ase.latent_dim)
    z_other = jnp.roll(z, 1, axis=0)  # each character's neighbour's latent: a random latent for it
    pose = PoseReference.of(env, dataset)
    num_clips = len(dataset.clips)
    pair = 2 * env.amp_obs_size
    clip = config.ppo.normalize_obs_clip
    shown = min(VIDEO_CHARACTERS, n)
    plan = None
    if nets.latent_dim > 0 and protocol.judge_latents > 0:
        k_plan, k_judge = jax.random.split(jax.random.fold_in(key, 1))
        plan = skill_judge.plan_episodes(k_plan, protocol.judge_latents, protocol.judge_episodes, nets.latent_dim,
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
            obs = ppo.normalize(state.obs, obs_norm, clip)
            mu = jnp.clip(nets.actor_apply(params["actor"], obs, z), -1.0, 1.0)
            mu_other = jnp.clip(nets.actor_apply(params["actor"], obs[:n], z_other), -1.0, 1.0)
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
        counts = jnp.zeros(num_clips).at[nearest_clip.ravel()].add(w.ravel())
        metrics = {
            "eval/survival": jnp.mean(jnp.sum(w, axis=0) - jnp.any(done, axis=0)) / steps,
            "eval/falls": jnp.mean(jnp.any(done, axis=0).astype(jnp.float32)),
            "eval/pose_error": mean(distance),
            "eval/clips_covered": jnp.sum(counts >= 0.01 * jnp.sum(counts)).astype(jnp.float32),
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
    from ase_jax.inference import skill_judge

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


# --- the protocol --------------------------------------------------------------------------------


def first_device(tree):
    return jax.tree.map(lambda x: x[0], tree)


def improvement_summary(rows: list[dict]) -> dict:
    """Per curve: start, end, best, and the samples after which it stayed within 10 % of the way
    from its start to its best (None where it never improved)."""
    out = {}
    for name, direction in CURVES.items():
        points = [(r["env_steps"], r[name]) for r in rows if name in r and r[name] is not None]
        if not points:
            continue
        steps, values = map(np.asarray, zip(*points))
        entry = {"start": float(values[0]), "end": float(values[-1])}
        if direction:
            best = float(values.max() if direction > 0 else values.min())
            entry["best"] = best
            gain = (best - values[0]) * direction
            if gain > 0:
                close = (best - values) * direction <= 0.1 * gain
                # the first sample count from which every later point is within 10 % of the best
                later_ok = np.flip(np.cumprod(np.flip(close)))
                if later_ok[-1]:  # a curve that fell back from its best at the end has not plateaued
                    entry["samples_to_plateau"] = int(steps[int(np.argmax(later_ok))])
        out[name] = entry
    return out


RESUMABLE_PROTOCOL = ("eval_every", "eval_envs", "eval_seconds", "ablation", "config", "judge_latents",
                      "judge_episodes")
# keys that runs written before them lack: such a run continues with the judge from then on
LATER_PROTOCOL = ("judge_latents", "judge_episodes")


def earlier_run(out: Path, protocol: Protocol, config: Config) -> dict | None:
    """The learn.json of the bench learn run in `out` that this one continues (None when there is
    none). The folder is a run folder (`checkpoints/`): a rerun resumes from its latest checkpoint,
    as `pretrain` does, and `--samples` may grow. A training run's folder, or a bench learn run of
    another protocol or config, is refused, and nothing in it is changed."""
    from ase_jax.checkpoint import config_differences

    learn = out / "learn.json"
    if (out / "checkpoints").exists() and not learn.is_file():
        raise AseInputError(f"--out={out} holds checkpoints/ of a training run, not of bench learn; choose another folder")
    if (out / "metrics.jsonl").is_file() and not learn.is_file():
        raise AseInputError(f"--out={out} holds another run's metrics.jsonl; choose another folder")
    if not learn.is_file():
        return None
    try:
        earlier = json.loads(learn.read_text())
        saved_protocol, saved_config = earlier["protocol"], earlier["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise AseInputError(f"{learn}: unreadable ({type(e).__name__}: {e}); choose another --out") from None
    if not (out / "checkpoints").exists():
        return None  # an output without checkpoints (written before runs were resumable): written anew
    saved_value = lambda k: saved_protocol.get(k, getattr(protocol, k) if k in LATER_PROTOCOL else None)
    differ = [f"{k} {saved_value(k)!r} -> {getattr(protocol, k)!r}" for k in RESUMABLE_PROTOCOL
              if saved_value(k) != getattr(protocol, k)]
    differ += config_differences(saved_config, to_dict(config))
    if differ:
        raise AseInputError(f"--out={out} holds a bench learn run that this one cannot continue (it differs in "
                            f"{'; '.join(differ[:6])}); choose another --out")
    return earlier


def run(config: Config, protocol: Protocol, out: Path, console: Console, command: str = "") -> dict:
    """Trains `config` by the protocol in `out`, through the training loop of `pretrain`
    (`run_loop.train_loop`: checkpoints, resume, divergence stop), evaluating from its progress
    hook; rerun on the same folder, it continues from the latest checkpoint."""
    from ase_jax.launch import compiled_train_fns

    hp = config.ppo
    per_iteration = hp.num_envs * hp.horizon
    iterations = max(1, math.ceil(protocol.samples / per_iteration))
    # Checkpoints where rows are, so that a time-boxed or killed run resumes at an evaluation.
    config = dataclasses.replace(config, run=dataclasses.replace(
        config.run, workdir=str(out), total_steps=iterations * per_iteration, checkpoint_every=protocol.eval_every,
        keep_checkpoints=2))
    earlier = earlier_run(out, protocol, config)
    out.mkdir(parents=True, exist_ok=True)
    wall0 = time.perf_counter()
    with console.status("building the environment and compiling the training step"):
        env, dataset, fns = compiled_train_fns(config)
        evaluate, eval_env, judge_plan = make_evaluator(config, env, dataset, fns.networks, protocol)
    clip_names = [c.name for c in dataset.clips]
    console.print(f"bench learn: {env.character.name}, {len(dataset.clips)} clips, {hp.num_envs} envs, "
                  f"{iterations} iterations of {per_iteration} samples, ablation {protocol.ablation}, "
                  f"seed {config.run.seed}, on {jax.devices()[0].platform}", highlight=False)

    segments = list(earlier.get("segments", [])) if earlier else []
    segment = {"device": str(jax.devices()[0].device_kind), "start_iteration": None, "end_iteration": None,
               "compile_s": 0.0, "train_wall_s": 0.0, "timed_iterations": 0}
    rows, window = [], []
    last = {"qpos": None, "iteration": 0, "mark": 0.0, "judge": earlier.get("judge") if earlier else None}
    trained_before = sum(s["train_wall_s"] for s in segments)

    def result() -> dict:
        done = last["iteration"]
        device_bytes = peak_memory().get("peak_device_bytes")  # None on the CPU, which keeps no statistics
        this = dict(segment, end_iteration=done, compile_s=round(segment["compile_s"], 1),
                    train_wall_s=round(segment["train_wall_s"], 1),
                    peak_device_memory_gib=None if device_bytes is None else round(device_bytes / 2**30, 2))
        every = [*segments, this]
        train_s = sum(s["train_wall_s"] for s in every)
        timed = sum(s["timed_iterations"] for s in every) * per_iteration
        peaks = [s["peak_device_memory_gib"] for s in every if s.get("peak_device_memory_gib") is not None]
        return {
            "protocol": dataclasses.asdict(protocol),
            "command": command, "device": this["device"], "platform": jax.devices()[0].platform,
            "num_devices": jax.local_device_count(), "jax": jax.__version__, "seed": config.run.seed,
            "config": to_dict(config), "iterations": done, "samples": done * per_iteration,
            "compile_s": round(sum(s["compile_s"] for s in every), 1), "train_wall_s": round(train_s, 1),
            "total_wall_s": round(time.perf_counter() - wall0, 1),
            "samples_per_s": round(timed / train_s, 1) if train_s > 0 else None,
            "peak_device_memory_gib": max(peaks) if peaks else None,
            "segments": every,  # one per invocation: a resumed run has several
            "summary": improvement_summary(rows), "reference_comparison": reference_comparison(rows), "rows": rows,
            "judge": last["judge"],  # the skill judge's whole report at the latest evaluation
        }

    # On a GPU the evaluator compiles in a thread while the training step compiles (two XLA programs
    # at once on the host's cores: about a minute less before training; on a 2-core CPU the two
    # compiles only slow each other); the evaluation of the starting state runs after the first
    # iteration, on the state as it was (`pending`).
    pending = {}

    def evaluated_part(state):
        """What the evaluator reads of a training state: (params, obs_norm, amp_norm) of device 0."""
        return first_device(state.params), first_device(state.obs_norm), first_device(state.amp_norm)

    def evaluate_state(state, part=None):
        if "compiling" in pending:
            pending["compiling"].join()
            pending["compiled"] = pending.pop("compiling").result
        return pending.get("compiled", evaluate)(*(part or evaluated_part(state)))

    def evaluation(done_iterations, part=None):
        start = time.perf_counter()
        metrics, qpos, records = evaluate_state(last["state"], part)
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        judged, report = judge_metrics(records, judge_plan, clip_names)
        metrics.update(judged)
        if report is not None:
            last["judge"] = dict(report, iteration=done_iterations)
        if done_iterations == segment["start_iteration"]:
            segment["compile_s"] += time.perf_counter() - start  # the evaluation's compile
        row = {"iteration": done_iterations, "env_steps": done_iterations * per_iteration,
               "train_wall_s": round(trained_before + segment["train_wall_s"], 2), **metrics}
        if window:
            row.update({k: float(np.mean([w[k] for w in window if k in w])) for k in window[-1]})
        if "eval/enc_similarity" in row:
            row["eval/enc_similarity_gap"] = row["eval/enc_similarity"] - row["eval/enc_similarity_shuffled"]
        rows.append(row)
        fmt = lambda key, spec: "n/a" if row.get(key) is None else format(row[key], spec)  # n/a: plain AMP
        last["qpos"] = qpos
        # rewritten at every evaluation, so that a run cut short keeps its rows
        (out / "learn.json").write_text(json.dumps(result(), indent=2))
        console.print(
            f"{row['env_steps']:>10,} samples  {row['train_wall_s']:7.0f} s  survival {row['eval/survival']:.2f}  "
            f"enc sim {fmt('eval/enc_similarity', '+.3f')} (shuffled {fmt('eval/enc_similarity_shuffled', '+.3f')})  "
            f"pose err {row['eval/pose_error']:.2f}  clips {row['eval/clips_covered']:.0f}"
            + (f"  judge acc {row['judge/accuracy']:.2f} (chance {row['judge/chance']:.2f}) "
               f"r2 {row['judge/r2']:+.2f}" if "judge/accuracy" in row else "")
            + (f"  disc rew {row['train/reward_disc']:.3f}  acc demo/agent {row['train/disc_demo_accuracy']:.2f}/"
               f"{row['train/disc_agent_accuracy']:.2f}  div loss {fmt('train/diversity_loss', '.4f')}" if window else ""),
            highlight=False)
        window.clear()

    def progress(done, state, metrics):
        last["state"], last["iteration"] = state, done
        if metrics is None:  # before the first iteration: the rows so far, and an evaluation at the start
            segment["start_iteration"] = done
            if earlier is not None:
                rows.extend(r for r in earlier["rows"] if r["iteration"] <= done)
                console.print(f"continuing the bench learn run in {out} at iteration {done} ({len(rows)} rows)",
                              highlight=False)
            if not rows or rows[-1]["iteration"] != done:
                pending["start"] = jax.device_get(evaluated_part(state))  # evaluated once the evaluator has compiled
                if jax.devices()[0].platform != "cpu":  # a GPU machine's host has cores for two compiles at once
                    pending["compiling"] = CompileAhead(evaluate, pending["start"])
            last["mark"] = time.perf_counter()
            return False
        metrics = jax.device_get(metrics)
        elapsed = time.perf_counter() - last["mark"]
        if "start" in pending:  # the starting state's row, now that the evaluator has compiled
            evaluation(segment["start_iteration"], pending.pop("start"))
        if done == segment["start_iteration"] + 1:
            segment["compile_s"] += elapsed  # the first iteration compiles the step; not counted as training
            console.print(f"first iteration (compiling the training step) took {elapsed:.0f} s", highlight=False)
        else:
            segment["train_wall_s"] += elapsed
            segment["timed_iterations"] += 1
        window.append({TRAIN_KEYS[k]: float(np.asarray(v)[0]) for k, v in metrics.items() if k in TRAIN_KEYS})
        over_time = protocol.minutes is not None and time.perf_counter() - wall0 > 60 * protocol.minutes
        if done % protocol.eval_every == 0 or done == iterations or over_time:
            evaluation(done)
        if over_time and done < iterations:
            console.print(f"time box of {protocol.minutes} min reached after {done} iterations; rerun the same "
                          "command to continue from here", highlight=False)
        last["mark"] = time.perf_counter()
        return over_time

    train_loop(config, fns, console, "bench learn", progress_fn=progress, next_steps=pretraining_next_steps(config, NEXT_STEPS))
    if "start" in pending:  # resumed with nothing left to train: the starting state's row
        evaluation(segment["start_iteration"], pending.pop("start"))
    if protocol.video and last["qpos"] is None:  # resumed with nothing left to train: the video of the state as saved
        _, last["qpos"], _ = evaluate_state(last["state"])
    done = last["iteration"]
    out_result = result()
    (out / "learn.json").write_text(json.dumps(out_result, indent=2))
    plot_curves([out_result], out / "curves.png")
    if protocol.video and last["qpos"] is not None:
        out_result["video"] = write_grid_video(eval_env, np.asarray(last["qpos"]), out / "grid.mp4", console)
        (out / "learn.json").write_text(json.dumps(out_result, indent=2))
    print_reference_comparison(out_result["reference_comparison"], done * per_iteration, console)
    console.print(f"wrote {out / 'learn.json'}, {out / 'curves.png'}", highlight=False)
    return out_result


NEXT_STEPS = (
    "python -m ase_jax.play --checkpoint={workdir} --grid=4 --video={workdir}/grid4.mp4   # four random skills",
    "python -m ase_jax.evaluate diversity --checkpoint={workdir}                        # clips the skills cover",
    "python -m ase_jax.evaluate judge --checkpoint={workdir}                            # skills told apart",
)


def print_reference_comparison(comparison: dict, samples: int, console: Console) -> None:
    """One line per reference column: where ours ended, and the first reference row it reached."""
    console.print(f"beside the reference's training log (ours at {samples:,} samples; the reference's first "
                  "skill signal is its row at 2.6e7):", highlight=False)
    for column, entry in comparison.items():
        reached = [r for r in entry["rows"] if r["our_samples"] is not None]
        first_ref = entry["rows"][0]
        status = (f"reached the reference's {reached[-1]['reference_value']} (its {reached[-1]['reference_samples']:.2g} "
                  f"samples) at {reached[-1]['our_samples']:,}: {reached[-1]['fewer_samples_x']}x fewer samples"
                  if reached else f"not yet at the reference's {first_ref['reference_value']} "
                  f"(its {first_ref['reference_samples']:.2g} samples)")
        end = entry["ours_end"]
        console.print(f"  {column}: ours {end:.5g} at the end; {status}" if end is not None else f"  {column}: no data",
                      highlight=False)


def write_grid_video(env, qpos: np.ndarray, path: Path, console: Console) -> str | None:
    """A 2x2 video of the evaluation's first characters (qpos (N, T, nq)); None where rendering
    is not possible here."""
    try:
        from ase_jax import render

        problem = render.gl_problem()
        if problem is not None:
            console.print(f"[yellow]note:[/] no video: {problem}")
            return None
        tiles = [render.render_frames(env.mj_model, q, width=240, height=180) for q in qpos]
        frames = render.grid(tiles, 2)
        return str(render.write_video(path.with_suffix(render.video_suffix()), frames, 1.0 / env.control_dt))
    except Exception as e:  # noqa: BLE001 - the curves and numbers are written; the video is extra
        console.print(f"[yellow]note:[/] no video: {e}")
        return None


# --- why skills start slowly: the latent path at initialisation -------------------------------------


def latent_path_diagnostics(config: Config, obs_size: int, amp_dim: int, action_size: int,
                            minibatches=(None, 16384), seed: int = 0) -> dict:
    """How much the freshly initialised actor's actions depend on z, and how the diversity term's
    gradient compares with the PPO actor term's on one minibatch. Synthetic batch: normalised
    observations ~ N(0, 1), actions drawn around mu with the policy's std, standardised advantages
    ~ N(0, 1), i.e. the PPO gradient that an uninformative advantage gives (its noise). Network-only:
    no simulation, seconds on a CPU."""
    from ase_jax.agents.ase import losses

    hp, ase = config.ppo, config.ase
    nets = ase_networks.networks_for(config, obs_size, amp_dim, action_size)
    actor = ase_networks.init_params(nets, jax.random.PRNGKey(seed))["actor"]
    m = 4096
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), 3)
    obs = jax.random.normal(keys[0], (m, obs_size))
    z, z2 = (ase_networks.sample_latents(k, (m,), ase.latent_dim) for k in keys[1:])
    mu, mu2 = nets.actor_apply(actor, obs, z), nets.actor_apply(actor, obs, z2)
    out = {"action_std": float(np.exp(hp.action_log_std)), "z_sensitivity": float(jnp.sqrt(jnp.mean((mu - mu2) ** 2))),
           "mu_rms": float(jnp.sqrt(jnp.mean(mu**2))), "gradients": []}

    def grads(n, key):
        k = jax.random.split(key, 5)
        o = jax.random.normal(k[0], (n, obs_size))
        zs, zp = (ase_networks.sample_latents(kk, (n,), ase.latent_dim) for kk in k[1:3])
        mean0 = nets.actor_apply(actor, o, zs)
        actions = mean0 + jnp.exp(hp.action_log_std) * jax.random.normal(k[3], mean0.shape)
        logp0 = ppo.gaussian_log_prob(actions, mean0, hp.action_log_std)
        adv = jax.random.normal(k[4], (n,))
        adv = (adv - adv.mean()) / adv.std()
        mask = jnp.ones(n)
        g_ppo = jax.grad(lambda q: ppo.ppo_actor_loss(ppo.gaussian_log_prob(actions, nets.actor_apply(q, o, zs),
                                                                              hp.action_log_std), logp0, adv, mask))(actor)
        g_div = jax.grad(lambda q: losses.diversity_loss(nets.actor_apply(q, o, zs), nets.actor_apply(q, o, zp),
                                                         zs, zp, mask, ase.diversity_target))(actor)
        return g_ppo, g_div

    norm = lambda g: float(jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(g))))
    for n in dict.fromkeys(n or hp.minibatch_size for n in minibatches):
        g_ppo, g_div = grads(n, jax.random.PRNGKey(seed + 2))
        out["gradients"].append({"minibatch": n, "ppo_actor_norm": norm(g_ppo), "diversity_norm": norm(g_div),
                                 "weighted_ratio": ase.diversity_coef * norm(g_div) / norm(g_ppo)})
    return out


def print_diagnostics(config: Config, console: Console) -> dict:
    from ase_jax.character import load_character
    from ase_jax.env import observations as obs_lib

    character = load_character(config.env.character)
    d = latent_path_diagnostics(config, obs_lib.policy_obs_size(character),
                                config.env.demo_history * obs_lib.amp_obs_size(character), character.num_actions,
                                seed=config.run.seed)
    console.print(f"actor at initialisation (actor {list(config.ppo.actor_units)}, style {list(config.ase.style_units)}, "
                  f"latent {config.ase.latent_dim}-D, seed {config.run.seed}):", highlight=False)
    console.print(f"  RMS of mu(obs, z) - mu(obs, z') over random obs and latents: {d['z_sensitivity']:.4f}; "
                  f"RMS of mu {d['mu_rms']:.4f}; the policy's action std {d['action_std']:.4f}", highlight=False)
    for g in d["gradients"]:
        console.print(f"  minibatch {g['minibatch']:>6}: |grad PPO actor term| {g['ppo_actor_norm']:.3f} (uninformative "
                      f"advantages), |grad diversity| {g['diversity_norm']:.2e}, diversity_coef x ratio "
                      f"{g['weighted_ratio']:.2e}", highlight=False)
    return d


# --- curves ----------------------------------------------------------------------------------------

PANELS = [
    ("disc reward (training)", ["train/reward_disc"]),
    ("disc accuracy (training): demo -, agent --", ["train/disc_demo_accuracy", "train/disc_agent_accuracy"]),
    ("enc reward max(e.z, 0) (training)", ["train/enc_reward_clipped"]),
    ("episode length (training)", ["train/episode_length"]),
    ("diversity loss (training; 1 = actions ignore z)", ["train/diversity_loss"]),
    ("skills told apart: e(o).z for own z minus shuffled z", ["eval/enc_similarity_gap"]),
    ("survival under random z (share of 5 s)", ["eval/survival"]),
    ("pose error to nearest demo transition", ["eval/pose_error"]),
    ("judge: fresh decoder's accuracy -, chance --", ["judge/accuracy", "judge/chance"]),
    ("judge: held-out R2 -, cosine --", ["judge/r2", "judge/cosine"]),
]


def plot_curves(results: list[dict], path: Path, labels: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(21, 6.5))
    for i, result in enumerate(results):
        label = (labels[i] if labels else None) or f"ablation {result['protocol']['ablation']}"
        color = f"C{i}"
        for ax, (title, keys) in zip(axes.ravel(), PANELS):
            for k, key in enumerate(keys):
                points = [(r["env_steps"], r[key]) for r in result["rows"] if r.get(key) is not None]
                if points:
                    x, y = zip(*points)
                    ax.plot(x, y, color=color, linestyle="-" if k == 0 else "--",
                            label=label if k == 0 else None, marker=".")
            column = next((c for c, (key, _) in REFERENCE_COLUMNS.items() if keys[0] == key), None)
            if column is not None and i == 0:  # the reference's value at its first skill signal (2.6e7 samples)
                ref = REFERENCE_CURVE[1]
                ax.axhline(ref[column], color="gray", linestyle=":", linewidth=1,
                           label=f"reference at {ref['samples']:.2g} samples")
                ax.legend(fontsize=7)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("policy samples", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=8)
    first = results[0]
    fig.suptitle(f"ase_jax bench learn: {first['config']['env']['character']}, {first['config']['ppo']['num_envs']} "
                 f"envs, seed {first['seed']}, {first['device']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# --- command line ----------------------------------------------------------------------------------


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="python -m ase_jax.bench learn", description=__doc__,
                        epilog="Other --key=value flags are pre-training config keys (python -m ase_jax.pretrain "
                               "--help lists them), e.g. --motions=PATH or --num_envs=4096.")
    parser.add_argument("--out", default="runs/bench_learn", help="output folder (default runs/bench_learn)")
    parser.add_argument("--ablation", default="none", choices=sorted(ABLATIONS),
                        help="none; no_sd: no skill-discovery reward or encoder loss; no_div: no diversity loss; "
                             "control: no skill-discovery reward and no diversity loss, encoder still trained "
                             "(a run minus its control is skill discovery)")
    parser.add_argument("--samples", type=cli.positive_int, default=DEFAULT_SAMPLES, help="policy samples to train for")
    parser.add_argument("--minutes", type=cli.positive_float, default=None, help="also stop after this much wall time")
    parser.add_argument("--eval_every", type=cli.positive_int, default=DEFAULT_EVAL_EVERY, help="iterations between evaluations")
    parser.add_argument("--eval_envs", type=cli.positive_int, default=32, help="characters per evaluation")
    parser.add_argument("--eval_seconds", type=cli.positive_float, default=5.0, help="seconds per evaluation rollout")
    parser.add_argument("--judge_latents", type=int, default=Protocol.judge_latents,
                        help=f"the skill judge's latents (default {Protocol.judge_latents}; 0: no judge)")
    parser.add_argument("--judge_episodes", type=int, default=Protocol.judge_episodes,
                        help=f"the skill judge's episodes per latent (default {Protocol.judge_episodes})")
    parser.add_argument("--video", type=cli.boolean, default=True, help="write grid.mp4 at the end (default true)")
    parser.add_argument("--diagnose", action="store_true",
                        help="only print how much the initial actor's actions depend on z and how the diversity "
                             "gradient compares with the PPO term's (seconds, no simulation)")
    parser.add_argument("--plot", default=None,
                        help="only plot: the curves of the bench learn output folders given after it, into this PNG")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"pre-training config (default {DEFAULT_CONFIG})")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parsed = cli.parse(build_parser(), argv, known=True)  # the flags left over are config keys
    if isinstance(parsed, int):
        return parsed
    args, rest = parsed
    console = Console()
    try:
        folders = [a for a in rest if not a.startswith("-")]
        if args.plot:
            results = []
            for folder in folders:
                path = Path(folder) / "learn.json"
                if not path.is_file():
                    raise AseInputError(f"{folder}: no learn.json (not a bench learn output folder)")
                results.append(json.loads(path.read_text()))
            if not results:
                raise AseInputError("--plot needs one or more bench learn output folders")
            plot_curves(results, Path(args.plot), labels=[Path(f).name for f in folders])
            console.print(f"wrote {args.plot}")
            return 0
        if args.diagnose:
            print_diagnostics(config_from_args([f"--config={args.config}", *rest], command="pretrain"), console)
            return 0
        overrides = [f"--{k}={v}" for k, v in ABLATIONS[args.ablation].items()]
        config = config_from_args([f"--config={args.config}", *overrides, *rest], command="pretrain")
        protocol = Protocol(samples=args.samples, eval_every=args.eval_every, eval_envs=args.eval_envs,
                            eval_seconds=args.eval_seconds, minutes=args.minutes, video=args.video,
                            ablation=args.ablation, config=args.config, judge_latents=args.judge_latents,
                            judge_episodes=args.judge_episodes)
        if args.judge_latents != 0:
            check_sizes(args.judge_latents, args.judge_episodes, "--judge_latents", "--judge_episodes")
        run(config, protocol, Path(args.out), console,
            command="python -m ase_jax.bench learn " + " ".join(argv))
    except AseInputError as e:
        return cli.error(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
