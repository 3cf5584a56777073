"""Videos: rendering helpers, motion playback (`ase_jax.motions play`) and policy playback (`ase_jax.play`).

Render tests are skipped, with the reason shown, only where no OpenGL backend (EGL or OSMesa) works.
The policy tests share one tiny pre-training run (one iteration) and one compiled step per batch size.
"""

import numpy as np
import pytest

from ase_jax import render  # first: sets MUJOCO_GL before a GL context exists

import mediapy  # noqa: E402

from ase_jax.motions.__main__ import main as motions_main  # noqa: E402
from ase_jax.motions.npy_format import load_clip  # noqa: E402
from ase_jax.play import main as play_main  # noqa: E402
from conftest import REPO_ROOT  # noqa: E402

IDLE = REPO_ROOT / "motions" / "bundled" / "idle.npy"
W, H = 160, 120

GL_PROBLEM = render.gl_problem()
needs_gl = pytest.mark.skipif(GL_PROBLEM is not None, reason=str(GL_PROBLEM))


def _error(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_pretrained_run):
    return tiny_pretrained_run


def test_grid_tiles_videos():
    videos = [np.full((2, 3, 4, 3), i, np.uint8) for i in range(1, 4)]
    out = render.grid(videos, cols=2)
    assert out.shape == (2, 6, 8, 3)
    assert out[0, 0, 0, 0] == 1 and out[0, 0, 4, 0] == 2 and out[0, 3, 0, 0] == 3
    assert out[0, 3, 4, 0] == 0  # the empty fourth tile is black
    with pytest.raises(ValueError, match="one shape"):
        render.grid([videos[0], videos[0][:1]], cols=2)


@needs_gl
def test_render_frames_follow_camera_and_target(sword_shield):
    qpos = np.repeat(sword_shield.model.qpos0[None], 3, axis=0)
    qpos[:, 0] = [0.0, 1.0, 2.0]  # walk along x: the follow camera keeps the character in view
    plain = render.render_frames(sword_shield.model, qpos, width=W, height=H)
    marked = render.render_frames(sword_shield.model, qpos, width=W, height=H, target=[0.0, -1.0, 1.0])
    assert plain.shape == (3, H, W, 3) and plain.dtype == np.uint8
    red = lambda f: np.sum((f[..., 0] > 150) & (f[..., 1] < 80) & (f[..., 2] < 80))
    assert red(marked[0]) > red(plain[0]) + 20
    assert plain[:, H // 2:].std() > 5  # the checker floor fills the lower half


@needs_gl
def test_motion_playback_video(tmp_path):
    out = tmp_path / "idle.mp4"
    assert motions_main(["play", str(IDLE), "--video", str(out), "--width", str(W), "--height", str(H)]) == 0
    video = mediapy.read_video(out)
    assert video.shape == (load_clip(IDLE).num_frames, H, W, 3)
    assert video.metadata.fps == pytest.approx(load_clip(IDLE).fps)


def test_motion_playback_unknown_clip(tmp_path, capsys):
    dataset = REPO_ROOT / "motions" / "bundled" / "dataset.yaml"
    assert motions_main(["play", str(dataset), "--clip", "idel", "--video", str(tmp_path / "x.mp4")]) == 1
    assert "no clip named 'idel' (did you mean 'idle'?)" in _error(capsys)
    assert not (tmp_path / "x.mp4").exists()


def test_viewer_without_display_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert motions_main(["play", str(IDLE)]) == 1
    assert "MuJoCo's viewer needs a display" in _error(capsys)


@needs_gl
def test_policy_playback_video(tiny_checkpoint, tmp_path):
    out = tmp_path / "e3.mp4"
    size = [f"--width={W}", f"--height={H}"]
    assert play_main(["--checkpoint", str(tiny_checkpoint), "--latent=e3", "--seconds=1", *size,
                      "--video", str(out)]) == 0
    assert mediapy.read_video(out).shape == (30, H, W, 3)
    # A checkpoint folder, and interpolation towards a latent from a file: the latents are the
    # rollout's input, so the same compiled program plays them.
    z = tmp_path / "z.npy"
    np.save(z, np.ones(64, np.float32))
    out = tmp_path / "interp.mp4"
    assert play_main(["--checkpoint", str(tiny_checkpoint / "checkpoints" / "1"), f"--interpolate=e0,{z}",
                      "--seconds=1", *size, "--video", str(out)]) == 0
    assert mediapy.read_video(out).shape == (30, H, W, 3)


@needs_gl
def test_policy_playback_of_another_length(tiny_checkpoint, tmp_path, monkeypatch):
    """0.5 s plays 15 frames under 15 latents at 30 Hz, the first e0 and the last the file's (unit)
    latent. The MJX rollout is replaced by the rest pose (each length is a compiled
    program of its own: minutes of the suite for a count of frames)."""
    import ase_jax.play as play_module

    asked = []

    def rest_pose(policy, latents, seed=0):
        asked.append(np.asarray(latents))
        model = policy.env.mj_model
        return np.broadcast_to(model.qpos0, latents.shape[:2] + (model.nq,)).copy()

    monkeypatch.setattr(play_module, "latent_rollout", rest_pose)
    z = tmp_path / "z.npy"
    np.save(z, np.ones(64, np.float32) / 8)
    out = tmp_path / "interp.mp4"
    assert play_main(["--checkpoint", str(tiny_checkpoint), f"--interpolate=e0,{z}", "--seconds=0.5",
                      f"--width={W}", f"--height={H}", "--video", str(out)]) == 0
    assert mediapy.read_video(out).shape == (15, H, W, 3)
    (latents,) = asked
    assert latents.shape == (1, 15, 64)
    np.testing.assert_allclose(latents[0, 0], np.eye(64)[0], atol=1e-6)
    np.testing.assert_allclose(latents[0, -1], np.ones(64) / 8, atol=1e-6)


@needs_gl
def test_policy_playback_grid(tiny_checkpoint, tmp_path):
    out = tmp_path / "grid.mp4"
    assert play_main(["--checkpoint", str(tiny_checkpoint), "--grid=2", "--seconds=1", f"--width={W}",
                      f"--height={H}", "--video", str(out)]) == 0
    video = mediapy.read_video(out)
    assert video.shape == (30, H, 2 * W, 3)  # two tiles side by side
    assert np.abs(video[:, :, :W].astype(int) - video[:, :, W:]).mean() > 1  # different latents and starts


@pytest.mark.parametrize("argv, message", [
    (["--latent=foo"], "bad latent 'foo'"),
    (["--latent=missing.npy"], "latent file missing.npy: not found"),
    (["--interpolate=e0"], "bad --interpolate 'e0'"),
])
def test_policy_playback_bad_flags(argv, message, tmp_path, capsys):
    assert play_main(["--checkpoint", str(tmp_path), *argv, "--video", str(tmp_path / "x.mp4")]) == 1
    assert message in _error(capsys)


def test_policy_playback_missing_checkpoint(tmp_path, capsys):
    missing = tmp_path / "no_such_run"
    assert play_main(["--checkpoint", str(missing), "--video", str(tmp_path / "x.mp4")]) == 1
    assert f"{missing}: no such run folder or checkpoint" in _error(capsys)


def test_policy_playback_errors_that_need_the_checkpoint(tiny_checkpoint, tmp_path, capsys):
    base = ["--checkpoint", str(tiny_checkpoint), "--video", str(tmp_path / "x.mp4")]
    assert play_main([*base, "--latent=e64"]) == 1
    assert "latent 'e64' is out of range: this checkpoint's latent_dim is 64 (e0 .. e63)" in _error(capsys)
    bad = tmp_path / "short.npy"
    np.save(bad, np.ones(5))
    assert play_main([*base, f"--latent={bad}"]) == 1
    assert f"latent file {bad}: shape (5,), expected (64,)" in _error(capsys)
    assert not (tmp_path / "x.mp4").exists()


@needs_gl
def test_task_playback_draws_the_target(tiny_heading_run, tmp_path):
    run, _ = tiny_heading_run
    out = tmp_path / "heading.mp4"
    assert play_main(["--checkpoint", str(run), "--task=heading", "--grid=2", "--seconds=1", f"--width={W}",
                      f"--height={H}", "--video", str(out)]) == 0
    video = mediapy.read_video(out)
    assert video.shape == (30, H, 2 * W, 3)  # two episodes side by side
    red = (video[..., 0] > 150) & (video[..., 1] < 80) & (video[..., 2] < 80)
    for tile in (red[:, :, :W], red[:, :, W:]):
        assert tile.reshape(30, -1).sum(axis=1).min() > 5, "each episode's heading marker is drawn in every frame"
    assert np.abs(video[:, :, :W].astype(int) - video[:, :, W:]).mean() > 1  # their own starts and targets


@needs_gl
def test_task_playback_without_grid_is_one_episode_at_full_size(tiny_heading_run, tmp_path, monkeypatch):
    """Without --grid a task run plays one episode, one tile of the full size. The MJX rollout is
    replaced by the model's rest pose (the rollout itself is the test above's: a second compiled
    program would add minutes to the suite), so this checks what play does with one episode."""
    import ase_jax.play as play_module

    run, _ = tiny_heading_run
    asked = []

    def rest_pose(policy, steps, seed=0, n=1):
        asked.append(n)
        model = policy.env.mj_model
        return np.broadcast_to(model.qpos0, (n, steps, model.nq)).copy(), np.zeros((n, steps, 3))

    monkeypatch.setattr(play_module, "task_rollout", rest_pose)
    out = tmp_path / "one.mp4"
    assert play_main(["--checkpoint", str(run), "--seconds=1", f"--width={W}", f"--height={H}",
                      "--video", str(out)]) == 0
    assert asked == [1]
    assert mediapy.read_video(out).shape == (30, H, W, 3)


def test_task_playback_errors(tiny_checkpoint, tiny_heading_run, tmp_path, capsys):
    run, _ = tiny_heading_run
    video = ["--video", str(tmp_path / "x.mp4")]
    assert play_main(["--checkpoint", str(run), "--task=reach", *video]) == 1
    assert f"--task=reach: {run} is a run of task 'heading'" in _error(capsys)
    assert play_main(["--checkpoint", str(run), "--latent=e0", *video]) == 1
    assert "is a task run: its high-level controller chooses the latents" in _error(capsys)
    assert play_main(["--checkpoint", str(tiny_checkpoint), "--task=heading", *video]) == 1
    assert "is a pre-training run; give a task run" in _error(capsys)
    assert not (tmp_path / "x.mp4").exists()
