"""`python -m ase_jax.bench learn`: a fixed protocol that measures what pre-training learns.

    python -m ase_jax.bench learn [--out=DIR] [--ablation=no_sd|no_div|control] [--samples=N] [--minutes=M]
                                  [--eval_every=K] [--eval_envs=E] [--eval_seconds=S] [--video=false]
                                  [--judge_latents=8] [--judge_episodes=4] [--config=cpu] [--key=value ...]
    python -m ase_jax.bench learn --plot=OUT.png DIR [DIR ...]      (curves of earlier runs, overlaid)
    python -m ase_jax.bench learn --diagnose [--config=NAME]        (the latent path at initialisation)

The protocol (the defaults; BENCHMARKS.md, "Learning", has its figures): the `cpu` config (the
sword-and-shield character on the bundled clips, 64 envs, 256-wide networks: what
`python -m ase_jax.pretrain` trains on a CPU), seed 0, 1,024,000 policy samples (500 iterations;
about 20 minutes on 2 CPU cores), evaluated before training and every 50 iterations. Training metrics are
averaged over the iterations since the previous evaluation:

    disc reward, disc accuracy on demo and agent samples     (training metrics)
    diversity loss: how little the actions depend on z       (training metric; 1 = not at all)

Each evaluation rolls out `eval_envs` characters from the standing pose for `eval_seconds` with
deterministic actions, each holding its own random unit latent (the same latents every time), and
measures:

    survival            share of the steps before the first fall
    enc similarity      mean e(o).z of the encoder on the visited states, for the latent being
                        followed, and (enc similarity shuffled) for another character's latent: the
                        gap is how well skills can be told apart (0 when they cannot)
    z sensitivity       RMS difference of the actions for the visited observations under the
                        character's latent and another one's
    pose error          distance of each transition (two consecutive discriminator frames) to the
                        nearest transition of the motion data, in units of the data's own standard
                        deviation per feature (at least 0.1; RMS over features); lower is closer
                        to the data
    clips covered       clips holding the nearest transition of at least 1 % of the transitions

The enc similarity is the run's own encoder grading motions the policy was trained to make it
decode. The skill judge is independent of everything the run optimised (ase_jax.inference.skill_judge
has the full definition): beside those characters, in the same batch, `judge_latents` latents (the
same every time) are held by `judge_episodes` characters each, from the standing pose, acting with
the policy's own action noise (the same draws every time: deterministic actions would make a
latent's episodes copies of each other). After the first second, per second of motion,
the mean and std of each feature of the discriminator's frame (root height, rotation and velocities
in the heading frame, joints, key bodies) are the features; a fresh ridge decoder from them to the
latent is fitted on half of each latent's episodes and scored on the other half:

    judge/r2            held-out R^2 of the decoded latent (0: no better than the mean latent)
    judge/cosine        held-out cosine of decoded and true latent, both about the mean latent (0: chance)
    judge/accuracy      share of held-out episodes whose decoded latent is nearest (cosine) to its own
                        latent among the judge's; judge/chance = 1 / judge_latents
    judge/close_share   share of the judge's transitions with a pose error below 1

learn.json's `judge` holds the latest evaluation's whole report, with per latent what a user sees:
root speed, turning rate, falls, and the nearest clip where the pose is close to the data.

It trains through the same loop as `pretrain` (`run_loop.train_loop`), so `--out` (default
runs/bench_learn) is a run folder: `checkpoints/` (one at every evaluation and at the end),
`metrics.jsonl` and TensorBoard scalars of every iteration, `run_info.json`; `play`, `evaluate` and
`task --llc` take it. Beside those: `learn.json` (protocol, device, command, the rows, and per curve
its start, end, best and the samples after which it came within 10 % of its best: where it stopped
improving; rewritten at every evaluation, so a run cut short keeps its rows), `curves.png`, and
`grid.mp4`, a 2x2 video of four of the evaluation's latents at the end (`grid.gif` where no ffmpeg
is found; skipped with a note where rendering is not available). `checkpoints/` keeps the latest
two; `--keep_checkpoint_period=N` keeps every N-th iteration's as well, for the
skill judge at a larger size on several checkpoints of a window (issue 33's reading: `python -m
ase_jax.evaluate judge --checkpoint=DIR/checkpoints/N --episodes=8` on each, averaged). Rerun on the same folder, a run
continues from its latest checkpoint (a time box, a killed run, or more `--samples`); `segments`
in learn.json times each invocation. Same seed, same device kind: same numbers, resumed or not.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console

from ase_jax import cli
from ase_jax.agents.ase.latent_path import latent_path_diagnostics
from ase_jax.character import load_character
from ase_jax.config import Config
from ase_jax.config.flags import config_from_args
from ase_jax.env import observations as obs_lib
from ase_jax.errors import AseInputError
from ase_jax.inference.skill_judge import check_sizes
from ase_jax.learn_protocol.curves import plot_curves
from ase_jax.learn_protocol.runner import ABLATIONS, DEFAULT_CONFIG, DEFAULT_EVAL_EVERY, DEFAULT_SAMPLES, Protocol, run


def print_diagnostics(config: Config, console: Console) -> dict:
    character = load_character(config.env.character)
    d = latent_path_diagnostics(config, obs_lib.policy_obs_size(character),
                                config.env.demo_history * obs_lib.amp_obs_size(character), character.num_actions,
                                seed=config.run.seed)
    console.print(f"actor at initialisation (actor {list(config.ppo.actor_units)}, style {list(config.ase.style_units)}, "
                  f"latent {config.ase.latent_dim}-D, seed {config.run.seed}):", highlight=False)
    console.print(f"  RMS of mu(obs, z) - mu(obs, z') over random obs and latents: {d['z_sensitivity']:.4f}; "
                  f"RMS of mu {d['mu_rms']:.4f}; the policy's action std {d['action_std']:.4f}", highlight=False)
    for g in d["gradients"]:
        console.print(f"  minibatch {g['minibatch']:>6}: |grad PPO actor term| {g['ppo_actor_norm']:.3f} (uninformative "
                      f"advantages), |grad diversity| {g['diversity_norm']:.2e}, diversity_coef x ratio "
                      f"{g['weighted_ratio']:.2e}", highlight=False)
    return d


# --- command line ----------------------------------------------------------------------------------


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="python -m ase_jax.bench learn", description=__doc__,
                        epilog="Other --key=value flags are pre-training config keys (python -m ase_jax.pretrain "
                               "--help lists them), e.g. --motions=PATH or --num_envs=4096.")
    parser.add_argument("--out", default="runs/bench_learn", help="output folder (default runs/bench_learn)")
    parser.add_argument("--ablation", default="none", choices=sorted(ABLATIONS),
                        help="none; no_sd: no skill-discovery reward or encoder loss; no_div: no diversity loss; "
                             "control: no skill-discovery reward and no diversity loss, encoder still trained "
                             "(a run minus its control is skill discovery)")
    parser.add_argument("--samples", type=cli.positive_int, default=DEFAULT_SAMPLES, help="policy samples to train for")
    parser.add_argument("--minutes", type=cli.positive_float, default=None, help="also stop after this much wall time")
    parser.add_argument("--eval_every", type=cli.positive_int, default=DEFAULT_EVAL_EVERY, help="iterations between evaluations")
    parser.add_argument("--eval_envs", type=cli.positive_int, default=32, help="characters per evaluation")
    parser.add_argument("--eval_seconds", type=cli.positive_float, default=5.0, help="seconds per evaluation rollout")
    parser.add_argument("--judge_latents", type=int, default=Protocol.judge_latents,
                        help=f"the skill judge's latents (default {Protocol.judge_latents}; 0: no judge)")
    parser.add_argument("--judge_episodes", type=int, default=Protocol.judge_episodes,
                        help=f"the skill judge's episodes per latent (default {Protocol.judge_episodes})")
    parser.add_argument("--video", type=cli.boolean, default=True, help="write grid.mp4 at the end (default true)")
    parser.add_argument("--diagnose", action="store_true",
                        help="only print how much the initial actor's actions depend on z and how the diversity "
                             "gradient compares with the PPO term's (seconds, no simulation)")
    parser.add_argument("--plot", default=None,
                        help="only plot: the curves of the bench learn output folders given after it, into this PNG")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"pre-training config (default {DEFAULT_CONFIG})")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parsed = cli.parse(build_parser(), argv, known=True)  # the flags left over are config keys
    if isinstance(parsed, int):
        return parsed
    args, rest = parsed
    console = Console()
    try:
        folders = [a for a in rest if not a.startswith("-")]
        if args.plot:
            results = []
            for folder in folders:
                path = Path(folder) / "learn.json"
                if not path.is_file():
                    raise AseInputError(f"{folder}: no learn.json (not a bench learn output folder)")
                results.append(json.loads(path.read_text()))
            if not results:
                raise AseInputError("--plot needs one or more bench learn output folders")
            plot_curves(results, Path(args.plot), labels=[Path(f).name for f in folders])
            console.print(f"wrote {args.plot}")
            return 0
        if args.diagnose:
            print_diagnostics(config_from_args([f"--config={args.config}", *rest], command="pretrain"), console)
            return 0
        overrides = [f"--{k}={v}" for k, v in ABLATIONS[args.ablation].items()]
        config = config_from_args([f"--config={args.config}", *overrides, *rest], command="pretrain")
        protocol = Protocol(samples=args.samples, eval_every=args.eval_every, eval_envs=args.eval_envs,
                            eval_seconds=args.eval_seconds, minutes=args.minutes, video=args.video,
                            ablation=args.ablation, config=args.config, judge_latents=args.judge_latents,
                            judge_episodes=args.judge_episodes)
        if args.judge_latents != 0:
            check_sizes(args.judge_latents, args.judge_episodes, "--judge_latents", "--judge_episodes")
        run(config, protocol, Path(args.out), console,
            command="python -m ase_jax.bench learn " + " ".join(argv))
    except AseInputError as e:
        return cli.error(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
