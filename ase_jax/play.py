"""`python -m ase_jax.play --checkpoint=RUN_OR_CKPT`: watch a pre-trained low-level policy.

Runs the frozen low-level policy (deterministic actions) in the run's own environment with the skill
latent held fixed, and renders the character at the control rate (30 Hz) to a video, or plays it
in MuJoCo's viewer when no `--video` is given.

    --latent=e3          unit vector 3 of the latent space (e0 .. e{latent_dim-1})
    --latent=random      a random unit latent drawn from --seed (the default)
    --latent=z.npy       a latent of shape (latent_dim,) from a file (normalised to unit length)
    --grid=N             N random latents side by side, one character each (needs --video); for a
                         task run, N episodes of its policy side by side, each with its own target
    --interpolate=A,B    move the latent from A to B (two of the specs above) along the sphere

The environment starts from the character's default pose (no motion data needed) and, as in
training, resets after a fall.

Given a task run (`python -m ase_jax.task` folder or checkpoint), it plays the task policy instead:
the high-level controller picks the latents for the frozen low-level policy, and the task target is
drawn as a red sphere (heading: 1.5 m ahead along the target direction; location, reach: the
target; strike: the target box is part of the scene).
"""

from __future__ import annotations

import sys

from ase_jax import render  # first: picks the headless GL backend before mujoco is imported

import jax  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402

from ase_jax import cli  # noqa: E402
from ase_jax.errors import AseInputError  # noqa: E402
from ase_jax.inference.latents import check_latent_spec, parse_latent, slerp  # noqa: E402
from ase_jax.inference.rollout import latent_rollout, load_for_playback, task_rollout  # noqa: E402

VIDEO_FPS = 30  # one frame per control step


def write_tiles(video, tiles, console: Console):
    """Writes the characters' videos (one, or several tiled in a square grid) at VIDEO_FPS; its path."""
    frames = render.grid(tiles)
    path = render.write_video(video, frames, VIDEO_FPS)
    console.print(f"wrote {path} ({len(frames)} frames, {frames.shape[2]}x{frames.shape[1]}, {VIDEO_FPS} fps)",
                  highlight=False, soft_wrap=True)
    return path


def play_task(policy, checkpoint, task: str | None, seconds: float, video, seed: int, width: int, height: int,
              console: Console, grid: int | None = None):
    """Plays a task run's policy (high-level controller + frozen LLC) with the task target drawn; with
    `grid`, that many episodes side by side (each from its own start, with its own target)."""
    if task is not None and task != policy.task_name:
        raise AseInputError(f"--task={task}: {checkpoint} is a run of task '{policy.task_name}'")
    steps = max(1, round(seconds * VIDEO_FPS))
    what = "scratch policy" if policy.low_level is None else "high-level controller"
    console.print(f"{checkpoint} (checkpoint {policy.step}): {policy.task_name} {what}, {grid or 1} episode(s), "
                  f"{steps} steps at {VIDEO_FPS} Hz", highlight=False, soft_wrap=True)
    qpos, marker = task_rollout(policy, steps, seed, n=grid or 1)
    model = policy.env.mj_model
    if video is None:
        render.view(model, qpos[0], VIDEO_FPS, target=marker[0])
        return None
    return write_tiles(video, [render.render_frames(model, q, width=width, height=height, target=m)
                               for q, m in zip(qpos, marker)], console)


def play(checkpoint, latent: str | None = None, seconds: float = 10.0, video=None, seed: int = 0,
         grid: int | None = None, interpolate: str | None = None, task: str | None = None,
         width: int = 640, height: int = 480, console: Console | None = None):
    """Plays the policy (see the module docstring); returns the video path, or None after the viewer."""
    console = console or Console()
    if sum(x is not None for x in (latent, grid, interpolate)) > 1:
        raise AseInputError("use only one of --latent, --grid and --interpolate")
    if not seconds > 0:
        raise AseInputError(f"--seconds must be positive, got {seconds}")
    if grid is not None and grid < 1:
        raise AseInputError(f"--grid must be at least 1, got {grid}")
    if grid is not None and video is None:
        raise AseInputError("--grid needs --video (the viewer shows one character)")
    if width < 16 or height < 16:
        raise AseInputError(f"--width and --height must be at least 16, got {width}x{height}")
    specs = [latent or "random"]
    if interpolate is not None:
        specs = interpolate.split(",")
        if len(specs) != 2:
            raise AseInputError(f"bad --interpolate '{interpolate}': expected two latents A,B (e.g. e0,e3)")
    for spec in specs:
        check_latent_spec(spec)
    policy = load_for_playback(checkpoint)
    if policy.is_task:
        if latent is not None or interpolate is not None:
            raise AseInputError(f"{checkpoint} is a task run: its high-level controller chooses the latents, "
                                "so --latent and --interpolate do not apply")
        return play_task(policy, checkpoint, task, seconds, video, seed, width, height, console, grid=grid)
    if task is not None:
        raise AseInputError(f"--task={task}: {checkpoint} is a pre-training run; give a task run "
                            f"(python -m ase_jax.task --name={task} --llc=...) to watch a task policy")

    dim = policy.latent_dim
    steps = max(1, round(seconds * VIDEO_FPS))
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), max(grid or 1, 2))
    if grid is not None:
        latents = np.stack([np.broadcast_to(parse_latent("random", dim, k), (steps, dim)) for k in keys[:grid]])
    elif interpolate is not None:
        a, b = (parse_latent(s, dim, k) for s, k in zip(specs, keys))
        latents = slerp(a, b, np.linspace(0.0, 1.0, steps))[None]
    else:
        latents = np.broadcast_to(parse_latent(specs[0], dim, keys[0]), (1, steps, dim))
    console.print(f"{checkpoint} (checkpoint {policy.step}): {latents.shape[0]} character(s), "
                  f"{steps} steps at {VIDEO_FPS} Hz", highlight=False, soft_wrap=True)
    qpos = latent_rollout(policy, latents, seed)
    model = policy.env.mj_model
    if video is None:
        render.view(model, qpos[0], VIDEO_FPS)
        return None
    return write_tiles(video, [render.render_frames(model, q, width=width, height=height) for q in qpos], console)


def build_parser() -> cli.Parser:
    """The options of `python -m ase_jax.play` (add new ones here; `main` passes them on)."""
    parser = cli.Parser(prog="python -m ase_jax.play", description=__doc__)
    parser.add_argument("--checkpoint", required=True, help="a run folder (latest checkpoint) or .../checkpoints/N")
    parser.add_argument("--latent", default=None, help="e0 .. e{latent_dim-1}, random (default) or FILE.npy")
    parser.add_argument("--seconds", type=cli.positive_float, default=10.0, help="length of the clip (default 10)")
    parser.add_argument("--video", default=None, help="write an mp4 here instead of opening the viewer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial state and random latents")
    parser.add_argument("--grid", type=cli.positive_int, default=None,
                        help="N random latents side by side (a task run: N episodes side by side)")
    parser.add_argument("--interpolate", default=None, help="A,B: move the latent from A to B over the clip")
    parser.add_argument("--task", default=None, help="expect a run of this task (task runs are recognised without it)")
    parser.add_argument("--width", type=cli.positive_int, default=640,
                        help="width of one character's view (default 640)")
    parser.add_argument("--height", type=cli.positive_int, default=480,
                        help="height of one character's view (default 480)")
    parser.add_argument("--engine", choices=("jax", "mujoco"), default="jax",
                        help="jax (default): the run's MJX env; mujoco: plain C MuJoCo, also for an export folder "
                             "of python -m ase_jax.export (ase_jax.inference.mujoco_player)")
    return parser


def _run(args) -> int:
    player = play
    if args.engine == "mujoco":
        from ase_jax.inference.mujoco_player import play_in_mujoco as player
    player(args.checkpoint, latent=args.latent, seconds=args.seconds, video=args.video, seed=args.seed,
           grid=args.grid, interpolate=args.interpolate, task=args.task, width=args.width, height=args.height)
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())
