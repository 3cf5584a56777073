"""The iteration loop of training, shared by `ase_jax.pretrain`, `ase_jax.task` and `bench learn`:
the state restored from the run folder's newest checkpoint or initialised, then `fns.step` once per
iteration with metrics logged, checkpoints saved, the divergence stop and a clean stop on a signal."""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path

import jax
import numpy as np
from rich.console import Console

from ase_jax import distributed
from ase_jax.checkpoint.checkpointer import Checkpointer
from ase_jax.config.schema import Config, to_dict
from ase_jax.errors import AseInputError
from ase_jax.run_loop.progress import IterationProgress
from ase_jax.run_loop.results import print_results
from ase_jax.run_loop.run_files import open_metrics_log, write_run_info
from ase_jax.run_loop.stop import StopRequests, TrainingStopped, stopped_message


class TrainingDiverged(AseInputError):
    """Training produced only non-finite gradients for several iterations in a row."""


def train_loop(config: Config, fns, console: Console, label: str, max_iterations: int | None = None,
               control_steps_per_sample: int = 1, saved_config: dict | None = None,
               next_steps: tuple[str, ...] = (), progress_fn=None) -> dict:
    """Runs (or resumes) the iterations of `fns` (init, step) in `config.workdir`; returns the last
    logged metrics. Shared by pre-training and task training.

    `total_steps` and `env_steps` count the policy's samples; `control_steps` in metrics.jsonl
    counts simulated 30 Hz control steps (`control_steps_per_sample` per sample: a high-level
    controller's sample spans `llc_steps` of them), the axis on which runs with and without a
    skill embedding are compared. `saved_config` is what checkpoints store as the run's config
    (`to_dict(config)` by default; task runs add their frozen LLC's config). `next_steps`: commands
    printed at the end for looking at the results ("{workdir}" stands for the run folder).

    `progress_fn(iteration, state, metrics)`, as brax's `progress_fn`, sees the state before the
    first iteration (metrics None; `iteration` is where a resumed run starts) and after each
    iteration (the step's metrics, on the device); it returning True ends the run after that
    iteration, which is then logged and checkpointed as the last one (a time box).

    SIGINT (Ctrl-C) or SIGTERM stops the run at the end of the iteration under way, which is then
    logged and checkpointed as the last one, and raises TrainingStopped (a SystemExit with status
    130 or 143) after one line saying where the checkpoint is and the command that resumes; a
    second signal ends the process at once (`StopRequests`). On resume, the rows of metrics.jsonl
    logged after the checkpoint are moved aside (`run_log.cut_back`) and TensorBoard hides them."""
    with StopRequests() as stop_requests:
        return _train_loop(config, fns, console, label, max_iterations, control_steps_per_sample, saved_config,
                           next_steps, progress_fn, stop_requests)


def _train_loop(config: Config, fns, console: Console, label: str, max_iterations: int | None,
                control_steps_per_sample: int, saved_config: dict | None, next_steps: tuple[str, ...], progress_fn,
                stop_requests: StopRequests) -> dict:
    hp, run = config.ppo, config.run
    workdir = Path(run.workdir)
    # Lines of plain text are printed whole (soft_wrap) on any console: a log is read, and grepped, by line.
    console.print(f"{label}: run folder {workdir.resolve()}", highlight=False, soft_wrap=True)
    if jax.devices()[0].platform == "cpu" and hp.num_envs * hp.horizon >= 65536:
        cpu_config = "task_cpu" if config.command == "task" else "cpu"
        console.print(f"[yellow]note:[/] {hp.num_envs} envs with these networks are sized for a GPU; on this CPU one "
                      f"iteration takes many minutes. For a CPU-sized run use --config={cpu_config}.")
    checkpointer = Checkpointer(workdir, run.keep_checkpoints, run.keep_checkpoint_period)
    config_dict = to_dict(config) if saved_config is None else saved_config
    init_key = jax.random.PRNGKey(run.seed)
    # The saved state is checked against the tree the init builds (traced, not compiled or run);
    # the real init runs only when there is nothing to resume.
    try:
        restored, start = checkpointer.restore_latest_readable(
            jax.eval_shape(fns.init, init_key), config=config_dict,
            log=lambda message: console.print(f"[yellow]warning:[/] {message}"))
    except BaseException:
        checkpointer.close()
        raise
    if restored is None:
        start = 0
        state = fns.init(init_key)
    else:
        state = fns.place(restored)  # host arrays -> the devices, as the init leaves a state
        console.print(f"resumed from {checkpointer.directory / str(start)} (iteration {start})")
    try:
        distributed.check_same_state((getattr(state, "params", None), getattr(state, "llc", None)))
    except BaseException:
        checkpointer.close()
        raise
    primary = distributed.is_primary()  # process 0 alone writes logs and shows progress
    if not primary:
        console = Console(quiet=True)
    workdir.mkdir(parents=True, exist_ok=True)
    if primary:
        write_run_info(workdir, config)

    steps_per_iteration = hp.num_envs * hp.horizon
    total_iterations = math.ceil(run.total_steps / steps_per_iteration)
    if max_iterations is not None:
        total_iterations = min(total_iterations, start + max_iterations)
    logger = open_metrics_log(workdir, start, steps_per_iteration, console, primary)
    last = {}
    progress = IterationProgress(console, label, start, total_iterations, steps_per_iteration)
    try:
        with progress:
            tick, tick_iteration = None, start
            compiled_s = None  # until the first step returns: compiling it (unless it was compiled before)
            bad_iterations, warned_overflow = 0, False
            done = start
            if progress_fn is not None:
                progress_fn(start, state, None)
            signalled = stop_requests.requested()  # e.g. during the restore: no iteration is run
            for iteration in range(start, total_iterations):
                if signalled:
                    break
                state, metrics = fns.step(state)
                done = iteration + 1
                stop = bool(progress_fn(done, state, metrics)) if progress_fn is not None else False
                signalled = stop_requests.requested()
                last_one = stop or signalled or done == total_iterations
                if iteration == start:
                    compiled_s = progress.elapsed()
                    progress.compiled()
                # Every update of this iteration skipped for non-finite gradients: count, and stop if it persists.
                if float(np.asarray(metrics["skipped_updates"])[0]) >= 1.0:
                    bad_iterations += 1
                    if bad_iterations >= run.max_bad_iterations:
                        checkpointer.wait()
                        last_good = checkpointer.latest_step()  # params stay finite: skipped updates
                        raise TrainingDiverged(
                            f"{bad_iterations} consecutive iterations had only non-finite gradients (iteration {done}); "
                            f"stopped. The last checkpoint, {checkpointer.directory / str(last_good)}, is intact; "
                            f"lower learning_rate or check the motion data and config")
                else:
                    bad_iterations = 0
                if not warned_overflow and float(np.asarray(metrics.get("env/contact_overflow", [0.0]))[0]) > 0:
                    warned_overflow = True  # once a run: the metric counts every step after this
                    console.print(f"[yellow]warning:[/] iteration {done}: MJX's Warp back end found more contacts or "
                                  f"constraints than it has slots and dropped the rest (env/contact_overflow); raise "
                                  f"warp_contacts_per_env / warp_constraints_per_env", soft_wrap=True)
                if done % run.log_every == 0 or last_one:
                    metrics = {k: float(np.asarray(v)[0]) for k, v in jax.device_get(metrics).items()}
                    now = time.perf_counter()
                    if tick is not None:  # the first iteration includes compilation
                        metrics["perf/env_steps_per_s"] = (done - tick_iteration) * steps_per_iteration / (now - tick)
                        progress.rate(metrics["perf/env_steps_per_s"])
                    tick, tick_iteration = now, done
                    metrics["control_steps"] = float(done * steps_per_iteration * control_steps_per_sample)
                    logger.log(done * steps_per_iteration, metrics)
                    last = metrics
                if done % run.checkpoint_every == 0 or last_one:
                    checkpointer.save(done, state, config_dict)
                progress.advance(done, last, last_one)
                if stop:
                    break
    finally:
        checkpointer.wait()
        checkpointer.close()
        logger.close()
    if signalled and done < total_iterations:
        saved = done if done > start else (start if restored is not None else None)  # the iteration it ended at
        message = stopped_message(stop_requests.signum or signal.SIGTERM, label, done, total_iterations,
                                  None if saved is None else checkpointer.directory / str(saved), workdir)
        console.print(message, highlight=False, soft_wrap=True)
        raise TrainingStopped(stop_requests.signum or signal.SIGTERM, message)
    print_results(console, workdir, checkpointer.directory, done, done * steps_per_iteration, progress.elapsed(),
                  compiled_s, next_steps)
    return last
