"""The host side of training: the iteration loop with progress bar, logging, checkpoints, resume
and the divergence stop, shared by `ase_jax.pretrain` and `ase_jax.task`."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import platform
import shlex
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import jax
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ase_jax import distributed, run_log
from ase_jax.checkpoint.checkpointer import Checkpointer
from ase_jax.config.flags import config_from_args
from ase_jax.config.schema import Config, to_dict
from ase_jax.errors import AseInputError
from ase_jax.run_log import RunLogger


class TrainingDiverged(AseInputError):
    """Training produced only non-finite gradients for several iterations in a row."""


class TrainingStopped(SystemExit):
    """Training was asked to stop (SIGINT: Ctrl-C; SIGTERM: `kill`, a scheduler) and did, at an
    iteration boundary with a checkpoint there. A SystemExit whose code is the shell's for the
    signal (130, 143), so that a command ends with it and no traceback; `message` is the line that
    said where the run stands and how to resume it."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + signum)
        self.signum, self.message = signum, message


class StopRequests:
    """While entered (in the main thread), SIGINT and SIGTERM do not end the process: `signum` records
    the first, and the loop stops at its next iteration boundary. The first one also gives both
    signals back their default action, so a second ends the process at once without saving (the
    checkpoints already written are whole: orbax renames a checkpoint folder into place when it is
    complete). A signal the process ignores (SIG_IGN, e.g. SIGINT of a background job) stays ignored.

    Python runs a signal's handler between bytecodes of the main thread, so a signal that arrives
    while a compiled step runs (or compiles) is acted on when that step returns."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                previous = signal.getsignal(sig)
                if previous is not signal.SIG_IGN:
                    self._previous[sig] = signal.SIG_DFL if previous is None else previous
                    signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = self.signum or signum
        for sig in self._previous:
            signal.signal(sig, signal.SIG_DFL)

    def requested(self) -> bool:
        """Whether this process (or, in a multi-process run, any of them: a collective that all
        call once per iteration, so that they stop at the same one) was asked to stop."""
        return distributed.any_process(self.signum is not None)

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def resume_command() -> str | None:
    """The command line that started this process, as it was typed, when it is an ase_jax command
    (`python -m ase_jax.pretrain ...`, `python -m ase_jax task ...`, an installed script); None in a
    notebook or a test."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name.startswith("ase_jax"):
        return shlex.join(getattr(sys, "orig_argv", [sys.executable, "-m", spec.name, *sys.argv[1:]]))
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if script.startswith(("ase-jax", "ase_jax")):
        return shlex.join([script if shutil.which(script) == sys.argv[0] else sys.argv[0], *sys.argv[1:]])
    return None


def stopped_message(signum: int, label: str, done: int, total: int, checkpoint: Path | None, workdir: Path) -> str:
    """The one line a stopped run ends with: the signal, the iteration, the checkpoint, how to resume."""
    name = signal.Signals(signum).name
    again = resume_command()
    how = f"resume with: {again}" if again else f"train again with the same config and workdir {workdir} to resume"
    if checkpoint is None:
        return f"{label}: stopped by {name} before the first checkpoint; nothing saved. {how.replace('resume', 'start')}"
    return f"{label}: stopped by {name} after iteration {done} of {total}; checkpoint {checkpoint}; {how}"


# What to look at after a plain AMP pre-training (latent_dim 0): one policy, no latents to pick, no
# skills for a task to reuse.
AMP_NEXT_STEPS = (
    "python -m ase_jax.play --checkpoint={workdir} --video={workdir}/amp.mp4          # the policy",
    "python -m ase_jax.export --checkpoint={workdir} --out={workdir}/export           # ONNX + policy.json",
)


def pretraining_next_steps(config: Config, skill_steps: tuple[str, ...]) -> tuple[str, ...]:
    """The commands printed at the end of a pre-training: a command's `skill_steps` for ASE, the
    policy's for plain AMP; each as it runs when pasted on this machine (`runs_here`)."""
    return tuple(runs_here(line) for line in (AMP_NEXT_STEPS if config.ase.latent_dim == 0 else skill_steps))


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def runs_here(line: str) -> str:
    """A suggested command line ("COMMAND   # comment", "{workdir}" for the run folder) as it runs
    on this machine: `play` without `--video` opens MuJoCo's viewer, so where there is no display it
    writes a video instead; `export` needs onnx, so where it is missing the line installs it first.
    (Task lines need nothing: `task` picks a CPU-sized config where there is no accelerator.)"""
    from ase_jax.render import has_display  # here: importing render chooses MuJoCo's GL backend

    command, mark, comment = line.partition("#")
    width = len(command)
    command = command.rstrip()
    if " -m ase_jax.play " in command and "--video" not in command and not has_display():
        command += " --video={workdir}/play.mp4"
        comment = comment.replace("in the viewer", "as a video (no display here for the viewer)")
    if " -m ase_jax.export " in command and not (installed("onnx") and installed("onnxruntime")):
        command = "pip install onnx onnxruntime && " + command
    return f"{command:<{width - 1}} {mark}{comment}" if mark else command


PACKAGES = ("jax", "jaxlib", "mujoco", "mujoco-mjx", "brax", "flax", "optax", "orbax-checkpoint", "numpy")


class _NoLogger:
    """The metrics logger of the processes other than 0 in a multi-process run."""

    def log(self, step: int, metrics: dict) -> None:
        pass

    def close(self) -> None:
        pass


def run_command(train, argv: list[str], command: str, default_config) -> int:
    """The body of a training command: config from `argv` (`--config=NAME --key=value ...`, read
    once, by `config.flags.config_from_args`; a config written for `command`; without --config
    `default_config`, a name or a function of the console returning one), then
    `train(config, console)`; bad input is printed as one clear line and exits with status 1.

    With `--coordinator_address` (or under srun/mpirun) this process first joins the others of a
    multi-process run (`ase_jax.distributed`), and all check that they run the same thing; only
    process 0 prints progress.

    `--help` (`-h`) prints every config key of the command's sections, with type, default and help
    (`ase_jax.config.help.config_help`), and returns 0."""
    from ase_jax import cli
    from ase_jax.config.help import config_help

    if cli.wants_help(argv):  # the defaults shown are those of the config this machine would run
        print(config_help(command, default_config(None) if callable(default_config) else default_config), end="")
        return 0
    console = command_console()
    try:
        default = (lambda: default_config(console)) if callable(default_config) else default_config
        config = config_from_args(argv, command, default)
        if distributed.initialize(config.run):  # before anything touches a jax device
            distributed.check_agreement(config)
            console = command_console(quiet=not distributed.is_primary())
        train(config, console)
    except AseInputError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        distributed.exit_now_if_joined(1)
        return 1
    except TrainingStopped as e:  # its line is printed
        distributed.exit_now_if_joined(e.code)
        return e.code
    except KeyboardInterrupt:  # before the loop, which handles Ctrl-C itself (StopRequests)
        Console(stderr=True).print(f"{command}: stopped by SIGINT while starting, before any iteration; nothing was "
                                   "saved", highlight=False, soft_wrap=True)
        distributed.exit_now_if_joined(128 + signal.SIGINT)
        return 128 + signal.SIGINT
    except BaseException:
        if distributed.joined():  # the others must not wait for this process
            traceback.print_exc()
            distributed.exit_now_if_joined(1)
        raise
    return 0


def command_console(**kwargs) -> Console:
    """The console a training command prints on. Where stdout is not a terminal (a log file, nohup,
    a batch scheduler, `| tee`) its lines are written whole: rich would wrap them at 80 columns."""
    console = Console(**kwargs)
    console.soft_wrap = not console.is_terminal
    return console


def tensorboard_hint(workdir) -> str:
    """How to look at a run's TensorBoard scalars (tensorboardX writes them; viewing them needs the
    tensorboard package, which is not a dependency)."""
    view = f"tensorboard --logdir {shlex.quote(str(workdir))}"
    return view if installed("tensorboard") else f"pip install tensorboard, then {view}"


def run_info(config: Config) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"config": to_dict(config), "versions": versions, "python": platform.python_version(),
            "devices": [str(d) for d in jax.local_devices()], "processes": jax.process_count(),
            "global_devices": jax.device_count()}


PLAIN_PROGRESS_S = 30.0


def clock(seconds: float | None) -> str:
    return "-" if seconds is None else f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"


def plain_progress_line(label: str, done: int, total: int, per_iteration: int, elapsed_s: float, metrics: dict) -> str:
    """One line of progress for logs: iteration, samples, samples/s, elapsed, ETA and a few metrics."""
    sps = metrics.get("perf/env_steps_per_s")
    eta = (total - done) * per_iteration / sps if sps else None
    shown = {"disc reward": "reward/disc", "enc reward": "reward/enc", "episode length": "episode/length",
             "task reward": "reward/task"}
    values = "  ".join(f"{name} {metrics[key]:.3g}" for name, key in shown.items() if key in metrics)
    return (f"{label}: iteration {done}/{total}  {done * per_iteration:,} samples  "
            f"{'-' if sps is None else f'{sps:,.0f}'} samples/s  elapsed {clock(elapsed_s)}  ETA {clock(eta)}  {values}")


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
        (workdir / "run_info.json").write_text(json.dumps(run_info(config), indent=2, default=str))

    steps_per_iteration = hp.num_envs * hp.horizon
    total_iterations = math.ceil(run.total_steps / steps_per_iteration)
    if max_iterations is not None:
        total_iterations = min(total_iterations, start + max_iterations)
    logger = _NoLogger()
    if primary:
        moved, aside = run_log.cut_back(workdir, start * steps_per_iteration)
        if moved:
            console.print(f"{workdir / run_log.METRICS_FILE}: moved the {moved} row(s) logged after iteration {start} "
                          f"(which this run does again) to {aside}", highlight=False, soft_wrap=True)
        logger = RunLogger(workdir, purge_after=start * steps_per_iteration if start or moved else None)
    last = {}
    # The first iteration compiles the whole training step (minutes on a CPU for the reference
    # sizes): the bar says so, with the elapsed time ticking, until it returns.
    progress = Progress(TextColumn(f"[bold]{label}"), TextColumn("{task.fields[phase]}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total} it"), TextColumn("{task.fields[sps]} samples/s"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                        transient=False)
    # Where there is no terminal (nohup, a batch scheduler, CI, `| tee`) the live bar prints nothing:
    # a plain line every PLAIN_PROGRESS_S instead, as rl_games does.
    plain = not console.is_terminal
    wall0 = last_plain = time.perf_counter()
    try:
        with progress:
            task = progress.add_task("train", total=total_iterations, completed=start, sps="-",
                                     phase="[yellow]compiling the training step[/]")
            if plain:
                console.print(f"{label}: compiling the training step (minutes on a CPU), then {total_iterations - start} "
                              f"iterations of {steps_per_iteration:,} samples", highlight=False, soft_wrap=True)
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
                    compiled_s = time.perf_counter() - wall0
                    progress.update(task, phase="")
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
                        progress.update(task, sps=f"{metrics['perf/env_steps_per_s']:,.0f}")
                    tick, tick_iteration = now, done
                    metrics["control_steps"] = float(done * steps_per_iteration * control_steps_per_sample)
                    logger.log(done * steps_per_iteration, metrics)
                    last = metrics
                if done % run.checkpoint_every == 0 or last_one:
                    checkpointer.save(done, state, config_dict)
                progress.update(task, completed=done)
                now = time.perf_counter()
                if plain and (now - last_plain >= PLAIN_PROGRESS_S or last_one):
                    last_plain = now
                    console.print(plain_progress_line(label, done, total_iterations, steps_per_iteration, now - wall0,
                                                      last), highlight=False, soft_wrap=True)
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
    took = time.perf_counter() - wall0
    console.print(f"done: {done} iterations ({done * steps_per_iteration:,} samples); "
                  f"checkpoints in {checkpointer.directory}", highlight=False, soft_wrap=True)
    if compiled_s is not None:
        console.print(f"time: {clock(took)} = {clock(compiled_s)} until the first iteration ran (compiling the training "
                      f"step) + {clock(took - compiled_s)} training", highlight=False, soft_wrap=True)
    console.print(f"results in {workdir}: metrics.jsonl, TensorBoard scalars ({tensorboard_hint(workdir)}), "
                  "run_info.json, checkpoints/", highlight=False, soft_wrap=True)
    if next_steps:
        console.print("look at them:", highlight=False)
        for line in next_steps:
            console.print("  " + line.format(workdir=shlex.quote(str(workdir))), highlight=False, soft_wrap=True)
    return last
