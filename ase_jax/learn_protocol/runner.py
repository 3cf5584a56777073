"""The learning protocol's run: a pre-training config trained through `pretrain`'s loop
(`run_loop.train_loop`: checkpoints, resume, divergence stop) and evaluated from its progress hook
every `eval_every` iterations (inference.evaluator), its rows written to learn.json at every
evaluation, then the curves, the grid video and the comparison with the reference's log. A rerun on
the same folder continues from the latest checkpoint. `python -m ase_jax.bench learn` is its
command (its --help has the protocol in full)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import jax
import numpy as np
from rich.console import Console

from ase_jax.compile_cache import CompileCache
from ase_jax.config.schema import Config, to_dict
from ase_jax.errors import AseInputError
from ase_jax.inference.evaluator import CompileAhead, judge_metrics, make_evaluator
from ase_jax.learn_protocol.curves import (TRAIN_KEYS, improvement_summary, plot_curves, print_reference_comparison,
                                           reference_comparison)
from ase_jax.profiling import peak_memory
from ase_jax.run_loop import train_loop
from ase_jax.run_loop.results import pretraining_next_steps

# control: the recipe with no skill-discovery pressure (no encoder reward, no diversity term) but the
# encoder still trained, so that its similarity gap measures what the init and imitation alone put
# into the motions; a run minus its control is skill discovery.
ABLATIONS = {"none": {}, "no_sd": {"enc_reward_w": 0.0, "enc_coef": 0.0}, "no_div": {"diversity_coef": 0.0},
             "control": {"enc_reward_w": 0.0, "diversity_coef": 0.0}}
DEFAULT_CONFIG = "cpu"
DEFAULT_SAMPLES = 1_024_000
DEFAULT_EVAL_EVERY = 50
VIDEO_CHARACTERS = 4
_EVALUATORS = CompileCache("bench learn evaluators", max_entries=2)


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


def first_device(tree):
    return jax.tree.map(lambda x: x[0], tree)


RESUMABLE_PROTOCOL = ("eval_every", "eval_envs", "eval_seconds", "ablation", "config", "judge_latents",
                      "judge_episodes")
# keys that runs written before them lack: such a run continues with the judge from then on
LATER_PROTOCOL = ("judge_latents", "judge_episodes")


def earlier_run(out: Path, protocol: Protocol, config: Config) -> dict | None:
    """The learn.json of the bench learn run in `out` that this one continues (None when there is
    none). The folder is a run folder (`checkpoints/`): a rerun resumes from its latest checkpoint,
    as `pretrain` does, and `--samples` may grow. A training run's folder, or a bench learn run of
    another protocol or config, is refused, and nothing in it is changed."""
    from ase_jax.checkpoint.mismatch import config_differences

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
    from ase_jax.training_setup import compiled_train_fns

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
        # The evaluator of these training functions (the same object for an equal config and data,
        # training_setup's cache) and sizes is traced and compiled once per process.
        sizes = dict(eval_envs=protocol.eval_envs, eval_seconds=protocol.eval_seconds,
                     judge_latents=protocol.judge_latents, judge_episodes=protocol.judge_episodes)
        _, (evaluate, eval_env, judge_plan) = _EVALUATORS.get(
            (id(fns), *sizes.values()),  # the entry holds fns, so its id is not reused while cached
            lambda: (fns, make_evaluator(config, env, dataset, fns.networks, shown=VIDEO_CHARACTERS, **sizes)))
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
                # Evaluated once the evaluator has compiled, on a copy (the step donates the state's
                # buffers) that stays on the device as later rows' arguments do: a host copy would be
                # an uncommitted argument, and jit compiles the evaluator once more for those.
                pending["start"] = jax.tree.map(jax.numpy.copy, evaluated_part(state))
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
