"""What a training run tells its user: the run folder first, progress lines whole in a log, one name
for throughput, the config a command picks on a machine without an accelerator, and closing hints
that run as pasted on the machine that printed them.

The runs here train the pure-JAX toy env (seconds, no MJX) through the real loop (`train_loop`)."""

import io
import re
import shlex
import sys

import pytest
from rich.console import Console

from ase_jax import evaluate, play, pretrain, task
from ase_jax.agents.ase.train import make_train_fns
from ase_jax.config import load_config
from ase_jax.config.flags import config_from_args
from ase_jax.config.schema import to_dict
from ase_jax.env.toy import ToyEnv, toy_config
from ase_jax.run_loop import run_command, train_loop
from ase_jax.run_loop.results import pretraining_next_steps, runs_here, tensorboard_hint

pytestmark = pytest.mark.timeout(300)
ITERATION = 64 * 16  # the toy config's samples per iteration


@pytest.fixture(scope="module")
def toy_fns():
    return make_train_fns(toy_config(), ToyEnv())


def _toy(workdir):
    return toy_config(total_steps=2 * ITERATION, workdir=str(workdir))


def _no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")


# --- the task command on a CPU ----------------------------------------------------------------------


def test_task_picks_the_cpu_config_without_an_accelerator(monkeypatch, capsys):
    """`python -m ase_jax.task --name=heading --llc=runs/cpu` on a CPU trains task_cpu, not the
    reference's 4096 characters; with an accelerator the reference's `task`; --config wins."""
    seen = []
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert run_command(lambda config, console: seen.append(config), ["--name=heading", "--llc=runs/cpu"], "task",
                       task.default_config_name) == 0
    assert "CPU-sized config 'task_cpu'" in capsys.readouterr().out
    assert seen[0].ppo.num_envs == 64 and seen[0].task.llc == "runs/cpu"
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    assert task.default_config_name() == "task"
    run_command(lambda config, console: seen.append(config), ["--config=task_tiny", "--name=heading"], "task",
                lambda console: pytest.fail("the default config was chosen over --config"))
    assert seen[1].ppo.num_envs == load_config("task_tiny", {}).ppo.num_envs


def test_task_cpu_config_keeps_the_reference_task_settings():
    """task_cpu differs from the reference's task config in sizes and CPU costs alone."""
    cpu, ref = to_dict(load_config("task_cpu", {})), to_dict(load_config("task", {}))
    differing = {f"{section}.{key}" for section in ("env", "ppo", "task") for key in ref[section]
                 if cpu[section][key] != ref[section][key]}
    assert differing == {"env.self_collision", "ppo.num_envs", "ppo.minibatch_size", "ppo.actor_units",
                         "ppo.critic_units"}
    assert cpu["ppo"]["num_envs"] * cpu["ppo"]["horizon"] < 65536  # below the run loop's "sized for a GPU" note


# --- a run's output without a terminal ----------------------------------------------------------------


def _hints(out: str) -> list[list[str]]:
    lines = out.splitlines()
    return [shlex.split(line, comments=True) for line in lines[lines.index("look at them:") + 1:]]


def test_without_a_terminal_lines_are_whole_and_the_hints_run_as_pasted(toy_fns, tmp_path, capsys, monkeypatch):
    """As `python -m ase_jax.pretrain > log` on a CPU machine with no display: the run folder named
    first, every progress line whole (rich wraps at 80 columns where it sees no terminal), the time
    spent compiling and training, and each closing hint parsed by its command: the viewer's line
    writes a video, the task's line gets the CPU-sized config, and a run folder with a space in its
    path stays one argument."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    _no_display(monkeypatch)
    workdir = tmp_path / "my runs" / "toy"
    config = _toy(workdir)
    loop = lambda _, console: train_loop(config, toy_fns, console, "pretrain",
                                         next_steps=pretraining_next_steps(config, pretrain.NEXT_STEPS))
    assert run_command(loop, ["--config=tiny"], "pretrain", "tiny") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"pretrain: run folder {workdir.resolve()}"
    (last,) = [line for line in lines if line.startswith("pretrain: iteration 2/2")]
    assert f"{2 * ITERATION:,} samples" in last and "samples/s" in last and "ETA" in last, out
    assert f"done: 2 iterations ({2 * ITERATION:,} samples)" in out
    assert re.search(r"^time: \d+:\d\d:\d\d = \d+:\d\d:\d\d until the first iteration ran \(compiling the training "
                     r"step\) \+ \d+:\d\d:\d\d training$", out, re.M), out

    hints = _hints(out)
    assert len(hints) == len(pretrain.NEXT_STEPS)
    for argv in hints:
        assert argv[:2] == ["python", "-m"], argv
        module, args = argv[2], argv[3:]
        if module == "ase_jax.play":
            parsed = play.build_parser().parse_args(args)
            assert parsed.checkpoint == str(workdir) and parsed.video, argv  # no display: a video
        elif module == "ase_jax.evaluate":
            assert evaluate.build_parser().parse_args(args).checkpoint == str(workdir)
        else:
            assert module == "ase_jax.task", argv
            parsed = config_from_args(args, "task", task.default_config_name)
            assert parsed.task.llc == str(workdir) and parsed.ppo.num_envs == load_config("task_cpu", {}).ppo.num_envs


def test_progress_lines_are_whole_on_any_console(toy_fns, tmp_path):
    """A console made elsewhere (a notebook's, bench learn's) at rich's default 80 columns: the
    loop's own lines still come whole."""
    log = io.StringIO()
    train_loop(_toy(tmp_path / ("a_long_folder_name_" * 4)), toy_fns, Console(file=log), "pretrain")
    lines = log.getvalue().splitlines()
    assert any(line.startswith("pretrain: iteration 2/2") and "ETA" in line for line in lines), lines
    assert all(line.startswith(("pretrain", "done", "time", "results", "  ")) for line in lines if line.strip()), lines


def test_throughput_has_one_name(toy_fns, tmp_path):
    """The progress bar, the plain lines and the closing line all say samples (policy samples, the
    figure BENCHMARKS.md gives in samples/s), never steps/s for the same number."""
    log = io.StringIO()
    train_loop(_toy(tmp_path), toy_fns, Console(file=log, force_terminal=True, width=200), "pretrain")
    out = log.getvalue()
    assert "samples/s" in out and "steps/s" not in out and "env steps" not in out


def test_the_hints_say_what_to_install(monkeypatch):
    """TensorBoard scalars need the tensorboard package to be viewed, export needs onnx: neither is
    a dependency, so a hint installs it first where it is missing."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # not importable
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert tensorboard_hint("runs/a b") == "pip install tensorboard, then tensorboard --logdir 'runs/a b'"
    export = [line for line in pretraining_next_steps(load_config("amp_tiny", {}), ()) if "ase_jax.export" in line]
    assert export and all(line.startswith("pip install onnx onnxruntime && python -m ase_jax.export") for line in export)
    monkeypatch.setitem(sys.modules, "tensorboard", sys)  # any module will do: it is there
    assert tensorboard_hint("runs/a") == "tensorboard --logdir runs/a"


def test_the_viewer_hint_stays_where_there_is_a_display(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(sys, "platform", "linux")
    line = "python -m ase_jax.play --checkpoint={workdir} --latent=e0   # one skill, in the viewer"
    assert runs_here(line) == line
    _no_display(monkeypatch)
    assert runs_here(line).startswith("python -m ase_jax.play --checkpoint={workdir} --latent=e0 --video=")
