"""One command-line convention (ase_jax/cli.py): every command answers --help, values are parsed as
users type them, a bad value is one error line with exit status 1; videos need no system ffmpeg.

Nothing here compiles MJX: commands are run in-process up to their argument parsing (or with the
training function replaced)."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from ase_jax import render  # first: sets MUJOCO_GL before a GL context exists

from ase_jax import cli  # noqa: E402
from ase_jax import __main__ as top  # noqa: E402
from ase_jax import bench, evaluate, play, pretrain, task  # noqa: E402
from ase_jax.config.flags import config_from_args, parse_config_flags  # noqa: E402
from ase_jax.config.help import config_help  # noqa: E402
from ase_jax.config.keys import format_value  # noqa: E402
from ase_jax.config.sections import COMMANDS, SECTIONS  # noqa: E402
from ase_jax.motions.__main__ import main as motions_main  # noqa: E402
from ase_jax.run_loop import run_command  # noqa: E402
from conftest import REPO_ROOT  # noqa: E402

IDLE = REPO_ROOT / "motions" / "bundled" / "idle.npy"


def _help_lines(text: str) -> dict[str, str]:
    """'--key' -> its line in a training command's help."""
    out = {}
    for line in text.splitlines():
        if line.startswith("  --"):
            out[line.split()[0].split("=")[0]] = line
    return out


# --- --help -----------------------------------------------------------------------------------

@pytest.mark.parametrize("command, main", [("pretrain", pretrain.main), ("task", task.main)])
def test_training_help_lists_every_key_with_type_and_default(command, main, capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    lines = _help_lines(text)
    for section in COMMANDS[command]:
        assert f"\n{section}: " in text
        for f in dataclasses.fields(SECTIONS[section]):
            flag = f"--{f.name}" if f"--{f.name}" in lines else f"--{section}.{f.name}"
            assert flag in lines, f"{command} --help misses {section}.{f.name}"
            assert f"(default: {format_value(f.default)}" in lines[flag], lines[flag]
            assert f.metadata["help"].split()[0] in text
    assert "--config=NAME" in text
    unused = [s for s in SECTIONS if s not in COMMANDS[command]]
    for section in unused:
        assert f"\n{section}: " not in text
        only_there = {f.name for f in dataclasses.fields(SECTIONS[section])} - {
            f.name for s in COMMANDS[command] for f in dataclasses.fields(SECTIONS[s])}
        assert not only_there & {k.lstrip("-") for k in lines}, f"{command} --help lists {section} keys"


def test_task_help_is_task_section_not_ase(capsys):
    assert task.main(["-h"]) == 0
    lines = _help_lines(capsys.readouterr().out)
    assert "--llc" in lines and "--scratch" in lines and "--disc_coef" not in lines
    assert "-> default" in lines["--state_init"]  # configs/task.yaml sets it: shown after the default


@pytest.mark.parametrize("main, argv, expected", [
    (play.main, ["--help"], ["--checkpoint", "--latent", "--seconds", "--video", "--grid", "--interpolate",
                             "--task", "--width", "--height", "--engine"]),
    (evaluate.main, ["--help"], ["diversity", "judge", "compare"]),
    (evaluate.main, ["judge", "--help"], ["--checkpoint", "--num_latents", "--episodes", "--seconds", "--close", "--out"]),
    (evaluate.main, ["diversity", "--help"], ["--checkpoint", "--motions", "--num_latents", "--seconds", "--out"]),
    (evaluate.main, ["compare", "--help"], ["RUN", "--out"]),
    (bench.main, ["--help"], ["env", "train", "all", "learn"]),
    (bench.main, ["env", "--help"], ["--steps", "--config=NAME"]),
    (bench.main, ["train", "--help"], ["--iterations", "--profile"]),
    (bench.main, ["all", "--help"], ["--sizes", "--steps", "--out", "--compare", "--tiny_compile"]),
    (bench.main, ["learn", "--help"], ["--ablation", "--samples", "--minutes", "--eval_every",
                                       "--judge_latents", "--judge_episodes", "--diagnose", "--plot", "--config"]),
    (lambda argv: __import__("ase_jax.export", fromlist=["main"]).main(argv), ["--help"], ["--checkpoint", "--out"]),
    (motions_main, ["--help"], ["inspect", "track", "download", "play", "import"]),
    (motions_main, ["import", "--help"], ["--out", "--character", "--map", "--up", "--scale", "--fps", "--weights",
                                          "--max_error_cm", "--force"]),
    (motions_main, ["inspect", "--help"], ["path", "--character", "--json"]),
    (motions_main, ["track", "--help"], ["--pd_torque_limit", "--no_self_collision"]),
    (motions_main, ["download", "--help"], ["reallusion", "--cache-dir", "--base-url"]),
    (motions_main, ["play", "--help"], ["--clip", "--video", "--width", "--height"]),
    (top.main, ["--help"], list(top.COMMANDS)),
    (top.main, [], list(top.COMMANDS)),
])
def test_every_command_answers_help(main, argv, expected, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    for word in expected:
        assert word in out, f"{argv}: {word!r} not in the help"


@pytest.mark.timeout(120)
def test_python_m_ase_jax_lists_the_commands():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-m", "ase_jax", "--help"], capture_output=True, text=True,
                            cwd=REPO_ROOT, env=env, timeout=100)
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(top.COMMANDS)
    assert "export" in listed
    result = subprocess.run([sys.executable, "-m", "ase_jax", "pretrain", "--help"], capture_output=True,
                            text=True, cwd=REPO_ROOT, env=env, timeout=100)
    assert result.returncode == 0 and "--learning_rate=float" in result.stdout, result.stderr


# --- values as users type them ----------------------------------------------------------------

def test_floats_and_lists_as_typed():
    config = config_from_args(["--config=tiny", "--learning_rate=1e-4", "--actor_units=[256,256]",
                               "--critic_units=256,256", "--disc_weight_decay=3E-5"])
    assert config.ppo.learning_rate == 1e-4 and isinstance(config.ppo.learning_rate, float)
    assert config.ase.disc_weight_decay == 3e-5
    assert config.ppo.actor_units == (256, 256) and config.ppo.critic_units == (256, 256)
    # --key value, and a bare bool key
    config = config_from_args(["--config", "tiny", "--learning_rate", "3E-5", "--early_termination",
                               "--self_collision", "false", "--ppo.horizon", "8"])
    assert (config.ppo.learning_rate, config.env.early_termination, config.env.self_collision,
            config.ppo.horizon) == (3e-5, True, False, 8)
    assert parse_config_flags(["--learning_rate=1e-4"]) == (None, {"learning_rate": "1e-4"})  # checked later
    assert cli.int_list("[256,256]") == cli.int_list("256, 256") == (256, 256)


def test_learning_rate_1e_4_reaches_training(capsys):
    seen = []
    code = run_command(lambda config, console: seen.append(config), ["--config=tiny", "--learning_rate=1e-4"],
                       command="pretrain", default_config="default")
    assert code == 0 and seen[0].ppo.learning_rate == 1e-4


@pytest.mark.parametrize("flags, scratch", [(["--scratch"], True), (["--scratch", "false"], False),
                                            (["--scratch", "true"], True), (["--scratch=false"], False), ([], False)])
def test_task_scratch_in_every_form_help_shows(flags, scratch, monkeypatch):
    """`--scratch false`, as --help documents bool keys, used to end in 'expected flags of the form
    --key=value, got 'false'' (task's own rewrite of a bare --scratch read argv a second time)."""
    from ase_jax import task

    seen = []
    monkeypatch.setattr(task, "train", lambda config, console: seen.append(config))
    assert task.main(["--config=task_tiny", "--name=heading", *flags, "--llc=runs/x"]) == 0
    assert seen[0].task.scratch is scratch


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error:"), err
    return err


@pytest.mark.parametrize("main, argv, names", [
    (pretrain.main, ["--config=tiny", "--num_envs=abc"], ["num_envs", "abc"]),
    (pretrain.main, ["--config=tiny", "--num_env=4"], ["num_env", "did you mean 'num_envs'"]),
    (pretrain.main, ["--config=tiny", "--learning_rate=fast"], ["learning_rate", "fast"]),
    (pretrain.main, ["--config=tiny", "--actor_units=a,b"], ["actor_units"]),
    (pretrain.main, ["tiny"], ["'tiny'"]),
    (task.main, ["--config=task_tiny", "--disc_coef=1"], ["disc_coef", "ase section"]),
    (evaluate.main, ["diversity", "--checkpoint=x", "--num_latents=abc"], ["--num_latents", "abc"]),
    (evaluate.main, ["diversity", "--num_latents=4"], ["--checkpoint"]),
    (evaluate.main, ["divers"], ["divers"]),
    (evaluate.main, ["judge", "--checkpoint=x", "--episodes=1"], ["--episodes=1"]),
    (play.main, ["--checkpoint=x", "--seconds=x"], ["--seconds", "'x'"]),
    (play.main, ["--checkpoint=x", "--bogus=1"], ["--bogus"]),
    (play.main, ["--seconds=1"], ["--checkpoint"]),
    (bench.main, ["env", "--steps=x"], ["--steps"]),
    (bench.main, ["env", "--num_envs=abc"], ["num_envs"]),
    (bench.main, ["all", "--sizes=16,x"], ["--sizes"]),
    (bench.main, ["nope"], ["nope"]),
    (motions_main, ["play", str(IDLE), "--width=abc"], ["--width"]),
    (motions_main, ["inspect"], ["path"]),
    (motions_main, ["import", "x.bvh"], ["--out"]),
    (motions_main, ["import", "x.bvh", "--out=o", "--up=w"], ["--up", "'w'"]),
    (motions_main, ["import", "x.bvh", "--out=o", "--scale=0"], ["--scale"]),
    (top.main, ["pretrian"], ["did you mean 'pretrain'"]),
])
def test_bad_values_are_one_line_and_exit_1(main, argv, names, capsys):
    assert main(argv) == 1
    err = _one_error_line(capsys)
    for name in names:
        assert name in err, err


# --- videos without a system ffmpeg -----------------------------------------------------------

@pytest.mark.timeout(120)
def test_video_without_system_ffmpeg(tmp_path, monkeypatch):
    import imageio_ffmpeg
    import mediapy

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no ffmpeg (nor anything else) on PATH
    assert render.ffmpeg_path() == imageio_ffmpeg.get_ffmpeg_exe()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (7, 48, 64, 3), dtype=np.uint8)
    path = render.write_video(tmp_path / "v.mp4", frames, fps=30)
    assert path.is_file() and path.stat().st_size > 0
    video = mediapy.read_video(path)
    assert video.shape == (7, 48, 64, 3)
    assert video.metadata.fps == pytest.approx(30)
    odd = render.write_video(tmp_path / "odd.mp4", frames[:3, :47, :63], fps=30)  # padded to even sizes
    assert mediapy.read_video(odd).shape == (3, 48, 64, 3)


def test_system_ffmpeg_is_kept_when_present(monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: "/opt/bin/ffmpeg" if name == "ffmpeg" else None)
    assert render.ffmpeg_path() == "/opt/bin/ffmpeg"


def test_no_gl_backend_is_one_clear_error_reported_once(monkeypatch):
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("eglInitialize failed")

    monkeypatch.setattr(render, "_GL_FAILURE", None)
    monkeypatch.setattr(render.mujoco, "Renderer", broken)
    import mujoco

    model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>")
    for _ in range(2):
        with pytest.raises(render.RenderError) as e:
            render.make_renderer(model, 16, 16)
        message = str(e.value)
        assert "tried MUJOCO_GL=" in message and "eglInitialize failed" in message
        assert "libegl1" in message and "libosmesa6" in message and "\n" not in message
    assert len(calls) == 1  # not retried


def test_config_help_is_generated_from_the_dataclasses():
    text = config_help("pretrain", "default")
    assert "--learning_rate=float  (default: 2e-05)" in text
    assert "--actor_units=int,int,...  (default: 1024,1024,512)" in text
