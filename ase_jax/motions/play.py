"""`python -m ase_jax.motions play CLIP_OR_YAML`: play a clip kinematically on our MJCF, to check it by eye.

Each frame's qpos comes from converting the clip for its character (`convert.convert_clip`), so what
you see is exactly the state the motion library and the discriminator's demonstrations use. With
`--video` the clip is rendered offscreen to a video at the clip's fps; without it MuJoCo's viewer
plays it in a loop. A dataset (.yaml) plays one clip (`--clip NAME`) or all of them in sequence.
With `--source=FILE.bvh` (and `--video`) the BVH an imported clip came from is drawn as a skeleton
beside the character, twice as wide (`motions/source_view.py`).
"""

from __future__ import annotations

import difflib

import numpy as np
from rich.console import Console

from ase_jax import cli
from ase_jax.character import CHARACTERS, Character, load_character
from ase_jax.errors import AseInputError, MotionFileError
from ase_jax.motions.convert import ClipStates, convert_clip
from ase_jax.motions.dataset import read_dataset_entries
from ase_jax.motions.inspect import character_for_skeleton
from ase_jax.motions.npy_format import load_clip


def load_clips(path, clip: str | None = None, character: str | None = None) -> tuple[Character, list[ClipStates]]:
    """The converted clips of a .npy clip or .yaml dataset (only `clip` if given, by file name without .npy)."""
    entries = read_dataset_entries(path)
    names = [e.path.name.removesuffix(".npy") for e in entries]
    if clip is not None:
        if clip.removesuffix(".npy") not in names:
            close = difflib.get_close_matches(clip, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise MotionFileError(path, f"no clip named '{clip}'{hint}; clips: {names}")
        entries = [entries[names.index(clip.removesuffix('.npy'))]]
    raw = [load_clip(e.path) for e in entries]
    char = load_character(character) if character else character_for_skeleton(raw[0].skeleton.node_names, raw[0].path)
    return char, [convert_clip(r, char) for r in raw]


def clips_path(path, clip: str | None = None):
    """The .npy file of a clip path, or of `clip` in a dataset (its NAME.report.json sits beside it)."""
    entries = read_dataset_entries(path)
    if clip is not None:
        entries = [e for e in entries if e.path.name.removesuffix(".npy") == clip.removesuffix(".npy")]
    return entries[0].path


def playback_qpos(clips: list[ClipStates], fps: float | None = None) -> tuple[np.ndarray, float]:
    """(T, nq) qpos of the clips one after another, and the fps (default: the first clip's).
    A clip at another fps is resampled to the nearest frame."""
    fps = float(fps or clips[0].fps)
    parts = []
    for c in clips:
        if np.isclose(c.fps, fps):
            parts.append(c.qpos)
        else:
            idx = np.round(np.arange(int(np.floor(c.length * fps + 1e-9)) + 1) * c.fps / fps).astype(int)
            parts.append(c.qpos[np.minimum(idx, c.num_frames - 1)])
    return np.concatenate(parts), fps


def run_play(args) -> int:
    from ase_jax import render

    console = Console()
    try:
        char, clips = load_clips(args.path, args.clip, args.character)
        if args.width < 16 or args.height < 16:
            raise AseInputError(f"--width and --height must be at least 16, got {args.width}x{args.height}")
        qpos, fps = playback_qpos(clips)
        if args.source is not None and (args.video is None or len(clips) != 1):
            raise AseInputError("--source needs --video and one clip (a .npy, or --clip NAME of a dataset)")
        for c in clips:
            console.print(f"{c.name}: {c.num_frames} frames at {c.fps:g} fps ({c.length:.2f} s)", highlight=False)
        if args.video is None:
            render.view(char.model, qpos, fps)
            return 0
        if args.source is not None:
            from ase_jax.motions.source_view import side_by_side

            frames = side_by_side(char.model, qpos, fps, args.source, clips_path(args.path, args.clip),
                                  width=args.width, height=args.height)
        else:
            frames = render.render_frames(char.model, qpos, width=args.width, height=args.height)
        path = render.write_video(args.video, frames, fps)
    except AseInputError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 1
    console.print(f"wrote {path} ({len(frames)} frames, {frames.shape[2]}x{frames.shape[1]}, {fps:g} fps, "
                  f"character {char.name})", highlight=False, soft_wrap=True)
    return 0


def add_play_parser(subparsers) -> None:
    p = cli.add_subcommand(subparsers, "play", description=__doc__,
                           help="play a clip kinematically on the character (viewer or --video)")
    p.add_argument("path", help="a motion clip (.npy) or a dataset (.yaml)")
    p.add_argument("--clip", default=None, help="which clip of a dataset (file name without .npy; default: all)")
    p.add_argument("--video", default=None, help="write an mp4 here instead of opening the viewer")
    p.add_argument("--width", type=cli.positive_int, default=640, help="video width in pixels (default 640)")
    p.add_argument("--height", type=cli.positive_int, default=480, help="video height in pixels (default 480)")
    p.add_argument("--character", default=None, choices=sorted(CHARACTERS),
                   help="character to play on (default: the one whose skeleton matches)")
    p.add_argument("--source", default=None,
                   help="with --video: the BVH file the clip was imported from, drawn as a skeleton beside "
                        "the character (the video is twice as wide)")
    p.set_defaults(func=run_play)
