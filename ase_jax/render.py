"""Offscreen rendering of qpos sequences to frames and videos (`mujoco.Renderer` + mediapy).

Headless by default: unless `MUJOCO_GL` is set, EGL is used (OSMesa where libEGL is missing). MuJoCo
reads `MUJOCO_GL` when it is imported; if `mujoco` was imported before this module with `MUJOCO_GL`
unset, the backend is switched when the first renderer is made. When no backend works, the first
renderer raises one `RenderError` naming what was tried and how to fix it (later ones repeat it
without trying again).

Videos are encoded by ffmpeg: the system's when it is on PATH, else the binary that the
imageio-ffmpeg package (a dependency) bundles, so `pip install` alone is enough.
"""

from __future__ import annotations

import ctypes.util
import importlib
import math
import os
import shutil
import sys
from pathlib import Path

if "MUJOCO_GL" not in os.environ:
    for _backend, _library in (("egl", "EGL"), ("osmesa", "OSMesa")):
        if ctypes.util.find_library(_library):  # with neither, MuJoCo's default (GLFW) stays
            os.environ["MUJOCO_GL"] = _backend
            break

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from ase_jax.errors import AseInputError  # noqa: E402

# Follow camera: fixed distance (m), elevation and azimuth (degrees), look-at height (m), and the
# fraction of the remaining distance to the pelvis the look-at point moves per frame.
FOLLOW_DISTANCE = 4.0
FOLLOW_ELEVATION = -15.0
FOLLOW_AZIMUTH = 90.0  # looking along +y: the character's side when it walks along +x
FOLLOW_HEIGHT = 0.9
FOLLOW_SMOOTHING = 0.15
TARGET_RGBA = np.array([0.9, 0.15, 0.1, 1.0], np.float32)


class RenderError(AseInputError):
    """What was asked for cannot be shown here (no display for the viewer, no ffmpeg for videos)."""


def _use_headless_backend() -> None:
    """If mujoco picked GLFW because MUJOCO_GL was unset when it was imported, use ours instead."""
    from mujoco.rendering.classic import gl_context

    wanted = os.environ.get("MUJOCO_GL", "")
    if getattr(gl_context, "_MUJOCO_GL", None) == "" and wanted in ("egl", "osmesa"):
        gl_context.GLContext = importlib.import_module(f"mujoco.{wanted}").GLContext


_GL_FAILURE: str | None = None  # why offscreen rendering failed here, once known (not retried)


def _gl_failure_message(error: BaseException) -> str:
    found = {lib: ctypes.util.find_library(lib) for lib in ("EGL", "OSMesa")}
    looked = ", ".join(f"lib{lib} {'found' if path else 'not found'}" for lib, path in found.items())
    backend = os.environ.get("MUJOCO_GL") or "unset (GLFW, needs a display)"
    detail = " ".join(f"{type(error).__name__}: {error}".split())
    return (f"offscreen rendering (videos) needs a working OpenGL backend and none works here: tried "
            f"MUJOCO_GL={backend} ({looked}) and it failed with {detail}. Fix: install EGL "
            f"(Debian/Ubuntu: apt-get install libegl1, with a GPU driver or Mesa) or OSMesa (apt-get install "
            f"libosmesa6, then export MUJOCO_GL=osmesa)")


def make_renderer(model: mujoco.MjModel, width: int, height: int) -> mujoco.Renderer:
    global _GL_FAILURE
    if _GL_FAILURE is not None:
        raise RenderError(_GL_FAILURE)
    # The offscreen buffer must hold the image; the MJCF's <global offwidth/offheight> may be smaller.
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
    try:
        _use_headless_backend()
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as e:  # noqa: BLE001 - whatever the GL stack raises: one clear message
        _GL_FAILURE = _gl_failure_message(e)
        raise RenderError(_GL_FAILURE) from e


def gl_problem() -> str | None:
    """None if offscreen rendering works here, else why not (for skipping tests)."""
    try:
        model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>")
        with make_renderer(model, 16, 16) as renderer:
            renderer.update_scene(mujoco.MjData(model))
            renderer.render()
    except Exception as e:  # noqa: BLE001 - any failure means: no usable GL backend
        return f"no OpenGL backend for offscreen rendering (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}): {e}"
    return None


def add_geom(scene: mujoco.MjvScene, kind, size, pos, rgba) -> None:
    """A decoration geom (unrotated) added to a rendered scene; nothing once the scene is full."""
    if scene.ngeom >= scene.maxgeom:
        return
    mujoco.mjv_initGeom(scene.geoms[scene.ngeom], kind, np.asarray(size, np.float64), np.asarray(pos, np.float64),
                        np.eye(3).ravel(), rgba)
    scene.ngeom += 1


def _add_marker(scene: mujoco.MjvScene, pos, size: float = 0.12) -> None:
    """A red sphere at `pos`; nothing when `pos` is NaN (a task with no target to draw)."""
    if np.all(np.isfinite(pos)):
        add_geom(scene, mujoco.mjtGeom.mjGEOM_SPHERE, [size, 0.0, 0.0], pos, TARGET_RGBA)


def follow_camera(xy) -> mujoco.MjvCamera:
    """The follow camera: a free camera at a fixed distance, elevation and azimuth, looking at the
    point over `xy` at FOLLOW_HEIGHT; `follow` moves it after the character."""
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.distance, cam.elevation, cam.azimuth = FOLLOW_DISTANCE, FOLLOW_ELEVATION, FOLLOW_AZIMUTH
    cam.lookat[:] = [xy[0], xy[1], FOLLOW_HEIGHT]
    return cam


def follow(cam: mujoco.MjvCamera, xy) -> None:
    """The follow camera's look-at point a FOLLOW_SMOOTHING step towards the point over `xy`."""
    cam.lookat[:2] += FOLLOW_SMOOTHING * (np.asarray(xy[:2]) - cam.lookat[:2])


def render_frames(model: mujoco.MjModel, qpos_seq, width: int = 640, height: int = 480, camera="follow",
                  target=None) -> np.ndarray:
    """Renders each row of `qpos_seq` (T, nq) kinematically: (T, height, width, 3) uint8.

    camera: "follow" (a free camera whose look-at point tracks the root's xy, smoothed, at a fixed
    distance, elevation and azimuth), or a camera name or id of the model. target: an optional task
    target, (3,) or (T, 3) world positions, drawn as a red sphere (rows of NaN draw nothing).
    """
    qpos_seq = np.asarray(qpos_seq, np.float64)
    if qpos_seq.ndim != 2 or qpos_seq.shape[1] != model.nq:
        raise ValueError(f"qpos_seq must have shape (T, {model.nq}), got {qpos_seq.shape}")
    if target is not None:
        target = np.broadcast_to(np.asarray(target, np.float64), (len(qpos_seq), 3))
    data = mujoco.MjData(model)
    cam = follow_camera(qpos_seq[0, :2]) if camera == "follow" else camera
    frames = np.empty((len(qpos_seq), height, width, 3), np.uint8)
    with make_renderer(model, width, height) as renderer:
        for t, qpos in enumerate(qpos_seq):
            data.qpos[:] = qpos
            mujoco.mj_forward(model, data)
            if camera == "follow":
                follow(cam, qpos[:2])
            renderer.update_scene(data, camera=cam)
            if target is not None:
                _add_marker(renderer.scene, target[t])
            frames[t] = renderer.render()
    return frames


def grid(frames_list, cols: int | None = None) -> np.ndarray:
    """Tiles videos of equal shape (T, H, W, 3) into rows of `cols` (default: the smallest square that
    holds them); empty tiles are black. One video comes back as it is."""
    frames_list = [np.asarray(f) for f in frames_list]
    if not frames_list:
        raise ValueError("grid needs at least one video")
    shape = frames_list[0].shape
    if any(f.shape != shape for f in frames_list):
        raise ValueError(f"grid needs videos of one shape, got {sorted({f.shape for f in frames_list})}")
    if cols is None:
        cols = math.ceil(math.sqrt(len(frames_list)))
    cols = max(1, min(cols, len(frames_list)))
    rows = -(-len(frames_list) // cols)
    t, h, w, c = shape
    out = np.zeros((t, rows * h, cols * w, c), frames_list[0].dtype)
    for i, f in enumerate(frames_list):
        r, k = divmod(i, cols)
        out[:, r * h:(r + 1) * h, k * w:(k + 1) * w] = f
    return out


def has_display() -> bool:
    """Whether MuJoCo's interactive viewer can open a window here (on Linux: DISPLAY or WAYLAND_DISPLAY)."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def view(model: mujoco.MjModel, qpos_seq, fps: float, target=None) -> None:
    """Plays `qpos_seq` in a loop in MuJoCo's interactive viewer (needs a display) until it is closed."""
    import time

    import mujoco.viewer

    if not has_display():
        raise RenderError("MuJoCo's viewer needs a display and none is set (DISPLAY); write a video with "
                          "--video=out.mp4 instead")
    data = mujoco.MjData(model)
    target = None if target is None else np.broadcast_to(np.asarray(target, np.float64), (len(qpos_seq), 3))
    with mujoco.viewer.launch_passive(model, data) as viewer:
        viewer.cam.type, viewer.cam.trackbodyid = mujoco.mjtCamera.mjCAMERA_TRACKING, 1
        t = 0
        while viewer.is_running():
            tick = time.perf_counter()
            data.qpos[:] = qpos_seq[t % len(qpos_seq)]
            mujoco.mj_forward(model, data)
            if target is not None:
                viewer.user_scn.ngeom = 0
                _add_marker(viewer.user_scn, target[t % len(qpos_seq)])
            viewer.sync()
            t += 1
            time.sleep(max(0.0, 1.0 / fps - (time.perf_counter() - tick)))


def ffmpeg_path() -> str:
    """The ffmpeg program that writes (and reads) videos: the system's when it is on PATH, else the
    one bundled with the imageio-ffmpeg package."""
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        raise RenderError(f"writing videos needs ffmpeg: none is on PATH and imageio-ffmpeg's bundled one is "
                          f"missing ({e}); pip install imageio-ffmpeg (a dependency of ase_jax), or install "
                          f"ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)") from None


def use_ffmpeg() -> str:
    """Points mediapy (write_video, read_video) at `ffmpeg_path()`; returns that path."""
    import mediapy

    path = ffmpeg_path()
    mediapy.set_ffmpeg(path)
    return path


def video_suffix() -> str:
    """".mp4" where ffmpeg is found (the system's or imageio-ffmpeg's), else ".gif", which
    `write_video` writes without ffmpeg (e.g. on a machine that carries no imageio-ffmpeg)."""
    try:
        ffmpeg_path()
    except RenderError:
        return ".gif"
    return ".mp4"


def _write_gif(path: Path, frames: np.ndarray, fps: float) -> Path:
    """An animated GIF with Pillow (a matplotlib dependency): no ffmpeg needed."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000.0 / fps), loop=0)
    return path


def write_video(path, frames, fps: float) -> Path:
    """Writes (T, H, W, 3) uint8 frames as a video (mp4/H.264 unless the suffix says otherwise;
    a .gif is written with Pillow, without ffmpeg)."""
    import mediapy

    frames = np.asarray(frames)
    path = Path(path)
    if path.suffix.lower() == ".gif":
        path.parent.mkdir(parents=True, exist_ok=True)
        return _write_gif(path, frames, fps)
    use_ffmpeg()
    # H.264 with yuv420p needs even sizes: pad odd ones by one black row/column.
    pad = [(0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)]
    if any(p[1] for p in pad):
        frames = np.pad(frames, pad)
    path.parent.mkdir(parents=True, exist_ok=True)
    mediapy.write_video(path, frames, fps=fps)
    return path
