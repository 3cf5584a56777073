"""The commands that read a run folder (play, play --engine=mujoco, task --llc, evaluate, export)
with a damaged newest checkpoint: given by name it is refused in one line (exit 1); given the run
folder, the checkpoint before it is used with a one-line warning. Nothing is moved or changed.

One tiny pre-training run (the session's `tiny_pretrained_run`, one checkpoint) serves every test:
each copies it, adds checkpoint 2 (a copy of checkpoint 1: orbax keeps no step number inside the
folder) and damages that."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from ase_jax import render  # first: sets MUJOCO_GL before a GL context exists
from ase_jax import evaluate, export, play, task  # noqa: E402
from ase_jax.config import load_config  # noqa: E402
from ase_jax.inference.pretrained_loading import load_pretrained  # noqa: E402
from ase_jax.training_setup import load_llc  # noqa: E402
from conftest import CHECKPOINT_DAMAGE  # noqa: E402

GL_PROBLEM = render.gl_problem()
needs_gl = pytest.mark.skipif(GL_PROBLEM is not None, reason=str(GL_PROBLEM))


DAMAGE = {k: CHECKPOINT_DAMAGE[k] for k in ("truncated arrays", "garbage config JSON", "missing array files")}


def _listing(folder):
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def damaged(tiny_pretrained_run, tmp_path):
    """(run folder whose checkpoint 2 is damaged by `how`, its listing) for a test to call with `how`."""

    def make(how: str):
        run = tmp_path / "run"
        shutil.copytree(tiny_pretrained_run, run)
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["1"]
        shutil.copytree(run / "checkpoints" / "1", run / "checkpoints" / "2")
        DAMAGE[how](run / "checkpoints" / "2")
        return run, _listing(run)

    return make


def _one_line(text: str, start: str) -> str:
    text = text.strip()
    assert text.startswith(start) and "\n" not in text and "Traceback" not in text, text
    return text


COMMANDS = {
    "play": lambda ckpt, tmp: play.main([f"--checkpoint={ckpt}", f"--video={tmp / 'x.mp4'}", "--seconds=0.1"]),
    "play --engine=mujoco": lambda ckpt, tmp: play.main([f"--checkpoint={ckpt}", "--engine=mujoco",
                                                         f"--video={tmp / 'x.mp4'}", "--seconds=0.1"]),
    "task --llc": lambda ckpt, tmp: task.main(["--config=task_tiny", "--name=heading", f"--llc={ckpt}",
                                               f"--workdir={tmp / 'task'}"]),
    "evaluate diversity": lambda ckpt, tmp: evaluate.main(["diversity", f"--checkpoint={ckpt}", "--num_latents=1",
                                                           "--seconds=0.1", f"--out={tmp / 'eval'}"]),
    "evaluate perturb": lambda ckpt, tmp: evaluate.main(["perturb", f"--checkpoint={ckpt}", "--num_envs=1",
                                                         f"--out={tmp / 'eval'}"]),
    "export": lambda ckpt, tmp: export.main([f"--checkpoint={ckpt}", f"--out={tmp / 'export'}"]),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_checkpoint_given_by_name_is_refused_in_one_line(damaged, how, command, tmp_path, capsys):
    run, before = damaged(how)
    assert COMMANDS[command](run / "checkpoints" / "2", tmp_path) == 1
    captured = capsys.readouterr()
    error = _one_line(captured.err, "error:")
    assert f"checkpoint {run / 'checkpoints' / '2'} cannot be read (" in error
    assert f"Give the run folder, {run}," in error
    assert _listing(run) == before
    assert not (run / "corrupt_checkpoints").exists()
    assert not any((tmp_path / name).exists() for name in ("task", "eval", "export", "x.mp4"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", DAMAGE)
def test_export_and_task_llc_of_a_run_folder_use_the_checkpoint_before(damaged, how, tmp_path, capsys):
    run, before = damaged(how)
    assert export.main([f"--checkpoint={run}", f"--out={tmp_path / 'export'}"]) == 0
    captured = capsys.readouterr()
    warning = _one_line(captured.err, "warning:")
    assert f"{run / 'checkpoints'}: checkpoint 2 cannot be read (" in warning and "using checkpoint 1" in warning
    assert json.loads((tmp_path / "export" / "policy.json").read_text())["source"]["step"] == 1
    assert "(checkpoint 1)" in captured.out

    # task --llc: the frozen low-level controller comes from the checkpoint before, said once
    llc = load_llc(load_config("task_tiny", {"name": "heading", "llc": str(run), "workdir": str(tmp_path / "task")}))
    assert llc.step == 1
    assert _listing(run) == before


@pytest.mark.timeout(600)
@needs_gl
def test_play_of_a_run_folder_uses_the_checkpoint_before(damaged, tmp_path, capsys):
    """The same clip as test_render's first playback: one compiled rollout serves both in a session."""
    run, before = damaged("truncated arrays")
    assert play.main([f"--checkpoint={run}", "--latent=e3", "--seconds=1", "--width=160", "--height=120",
                      f"--video={tmp_path / 'x.mp4'}"]) == 0
    captured = capsys.readouterr()
    assert "(checkpoint 1)" in captured.out, captured.out
    warning = _one_line(captured.err, "warning:")  # play looks at the run several times: one decision, one line
    assert "checkpoint 2 cannot be read" in warning and "using checkpoint 1" in warning
    assert _listing(run) == before


@pytest.mark.timeout(300)
@needs_gl
def test_the_mujoco_player_and_evaluate_of_a_run_folder_use_the_checkpoint_before(damaged, tmp_path, capsys):
    run, before = damaged("missing array files")
    assert play.main([f"--checkpoint={run}", "--engine=mujoco", f"--video={tmp_path / 'x.mp4'}", "--seconds=0.1",
                      "--width=32", "--height=32"]) == 0
    captured = capsys.readouterr()
    assert "(checkpoint 1)" in captured.out, captured.out
    assert "using checkpoint 1" in _one_line(captured.err, "warning:")
    # evaluate diversity and perturb load the run with load_pretrained (their rollouts are left out: minutes of
    # compiling on a CPU); given the checkpoint by name, they refuse it (test above)
    assert load_pretrained(run, purpose=None).step == 1
    assert _listing(run) == before
