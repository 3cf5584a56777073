"""Measuring skills: `python -m ase_jax.evaluate diversity|judge|perturb|compare ...`.

    diversity --checkpoint=RUN [--motions=DATASET] [--num_latents=64] [--seconds=10] [--out=DIR]
        Rolls out the low-level policy under many random latents (one per character, held for the
        whole episode) and, for every transition, finds the motion clip holding the nearest demo
        transition (two consecutive discriminator frames, each feature in the data's own standard
        deviations, as bench learn's pose error and the judge measure it: nothing the run learned
        or normalised). Prints JSON: the share of transitions per clip (top 50), the number of
        clips covered (holding at least 1 % of the transitions, as bench learn counts them) and
        the entropy of that distribution; saves a bar plot (PNG).
        The paper's diversity ablation (Peng et al. 2022, section 8).
    judge --checkpoint=RUN [--num_latents=16] [--episodes=4] [--seconds=6] [--close=1] [--out=DIR]
        The skill judge (ase_jax.inference.skill_judge), independent of everything the run
        optimised: N latents, K episodes each from the standing pose under the policy's own action
        noise (fixed draws; deterministic episodes would be copies), a fresh ridge decoder from
        motion features (per second: mean and std of the discriminator's frame) to the latent,
        fitted on half of each latent's episodes and scored on the other half: held-out R^2,
        cosine, and nearest-latent accuracy against chance 1/N. Per latent, what a user sees: root
        speed, turning rate, falls, and the nearest clip where the pose is close to the data.
        Prints a table and writes judge.json (in --out, else the run folder).
    perturb --checkpoint=RUN [--impulses=0,50,100,150,200] [--num_envs=64] [--seconds=3]
            [--recover_seconds=5] [--push_at=1,2] [--video=PATH] [--out=DIR]
        Pushes characters (a pre-training run's policy under random latents, or a task run's
        controller) once each, at a random moment of --push_at seconds, in a random horizontal
        direction, with every impulse (N s) in turn, and counts per impulse those that stay up, fall
        and get up again within --recover_seconds, fall and do not, or fell before their push, with
        the time to get up. Prints JSON and writes perturb.json and perturb.png; --video renders a
        few characters pushed with the strongest impulse (ase_jax.inference.perturb).
    compare RUN [RUN ...] [--out=compare.png]
        Plots the learning curves (reward/task, else reward/total, against env steps) of several
        runs side by side, with each run's diversity (diversity.json, if measured) in the legend.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ase_jax import cli
from ase_jax.errors import AseInputError
from ase_jax.checkpoint import find_checkpoint
from ase_jax.inference import perturb, skill_judge
from ase_jax.inference.perturb import PUSH_WINDOW
from ase_jax.inference.skill_metrics import PoseReference, agent_transitions, nearest_clip_counts, summarize
from ase_jax.motions.dataset import load_dataset
from ase_jax.package_data import resolve_path


def diversity(checkpoint, motions=None, num_latents: int = 64, seconds: float = 10.0, seed: int = 0) -> dict:
    from ase_jax.inference.policy_loading import load_policy

    # the rollout vmaps over its own num_latents characters
    pretrained = load_policy(checkpoint).pretraining_model("evaluate diversity")
    dataset = load_dataset(resolve_path(motions or pretrained.config.env.motions),
                           pretrained.env.character)
    pairs, valid = agent_transitions(pretrained, num_latents, int(round(seconds / pretrained.env.control_dt)), seed)
    counts = nearest_clip_counts(PoseReference.of(pretrained.env, dataset), pairs, valid, len(dataset.clips))
    result = summarize(counts, [c.name for c in dataset.clips])
    result.update({"checkpoint": str(checkpoint), "step": pretrained.step, "motions": str(dataset.path),
                   "num_latents": num_latents, "seconds": seconds})
    return result


def print_judge(result: dict, path: Path) -> None:
    print(f"skill judge of {result['checkpoint']} (step {result['step']}): {result['latents']} latents x "
          f"{result['episodes']} episodes, {result['measured_seconds']:.1f} s measured each "
          f"({result['windows']} windows), fitted on {result['train_episodes']}, scored on {result['test_episodes']}")
    print(f"  held-out R2 {result['r2']:+.3f}  cosine {result['cosine']:+.3f}  accuracy {result['accuracy']:.3f} "
          f"(chance {result['chance']:.3f})  ridge penalty {result['ridge_penalty']:g}")
    print(f"  transitions close to the data (pose error < {result['close_pose_error']:g}): {result['close_share']:.2f}")
    print(f"  {'latent':>6}  {'speed m/s':>9}  {'turn rad/s':>10}  {'fell':>5}  {'close':>5}  nearest clip where close")
    for row in result["table"]:
        share = "" if row["nearest_clip_share"] is None else f" ({row['nearest_clip_share']:.2f})"
        print(f"  {row['latent']:>6}  {row['speed_m_s']:>9.2f}  {row['turn_rad_s']:>+10.2f}  {row['fell']:>5.2f}  "
              f"{row['close_share']:>5.2f}  {row['nearest_clip']}{share}")
    print(f"wrote {path}")


def plot_histogram(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = result["top"]
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(top)), 4))
    ax.bar(range(len(top)), [t["share"] for t in top])
    ax.set_xticks(range(len(top)), [t["clip"].removeprefix("RL_Avatar_").removesuffix("_Motion") for t in top],
                  rotation=90, fontsize=7)
    ax.set_ylabel("share of transitions")
    ax.set_title(f"{result['clips_covered']}/{result['clips']} clips, entropy {result['entropy_nats']:.2f} "
                 f"of {result['max_entropy_nats']:.2f} nats")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compare(runs: list[str], out: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    summary = {}
    for run in runs:
        path = Path(run) / "metrics.jsonl"
        if not path.is_file():
            raise AseInputError(f"{run}: no metrics.jsonl (not a training run folder)")
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        key = "reward/task" if lines and "reward/task" in lines[0] else "reward/total"
        # Simulated control steps: a high-level sample spans llc_steps of them, a Scratch one only 1.
        steps = [line.get("control_steps", line["env_steps"]) for line in lines]
        values = [line.get(key, float("nan")) for line in lines]
        label = Path(run).name
        div_path = Path(run) / "diversity.json"
        if div_path.is_file():
            div = json.loads(div_path.read_text())
            label += f" ({div['clips_covered']} clips, H={div['entropy_nats']:.2f})"
            summary[run] = {"diversity": {k: div[k] for k in ("clips_covered", "entropy_nats")}}
        ax.plot(steps, values, label=label)
        summary.setdefault(run, {})[key] = values[-1] if values else None
    ax.set_xlabel("simulated control steps (30 Hz)")
    ax.set_ylabel("reward")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return summary


def run_and_motions(parser: cli.Parser, motions_help: str) -> None:
    """--checkpoint (a pre-training run) and --motions, of the subcommands that roll out skills."""
    parser.add_argument("--checkpoint", required=True, metavar="RUN", help="a pre-training run folder or one of its "
                        "checkpoints")
    parser.add_argument("--motions", default=None, metavar="DATASET", help=motions_help)


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="python -m ase_jax.evaluate", description=__doc__)
    sub = cli.subcommands(parser)
    div = cli.add_subcommand(sub, "diversity", "share of transitions per motion clip under random latents "
                             "(writes diversity.json and diversity.png)")
    run_and_motions(div, "motion clip or dataset to attribute transitions to (default: the run's)")
    div.add_argument("--num_latents", type=cli.positive_int, default=64,
                     help="random latents, one character each (default 64)")
    div.add_argument("--seconds", type=cli.positive_float, default=10.0, help="episode length (default 10)")
    div.add_argument("--seed", type=int, default=0, help="seed of the latents and initial states (default 0)")
    div.add_argument("--out", default=None, metavar="DIR", help="where to write the results (default: --checkpoint)")
    jud = cli.add_subcommand(sub, "judge", "can a fresh decoder tell the latents apart from the motion, on held-out "
                             "episodes; speed, turning and nearest clip per latent (writes judge.json)")
    run_and_motions(jud, "motion clip or dataset for the pose error and nearest clips (default: the run's)")
    jud.add_argument("--num_latents", type=cli.positive_int, default=16, help="latents judged (default 16)")
    jud.add_argument("--episodes", type=cli.positive_int, default=4, help="episodes per latent, half fitted on and "
                     "half scored (default 4)")
    jud.add_argument("--seconds", type=cli.positive_float, default=6.0,
                     help="episode length; the first second is not measured (default 6)")
    jud.add_argument("--close", type=cli.positive_float, default=skill_judge.CLOSE_POSE_ERROR,
                     help="pose error below which a transition's nearest clip is named (data std units, default 1)")
    jud.add_argument("--seed", type=int, default=0, help="seed of the latents, action noise and starts (default 0)")
    jud.add_argument("--out", default=None, metavar="DIR", help="where to write judge.json (default: the run folder)")
    per = cli.add_subcommand(sub, "perturb", "who stays up, falls, or gets up again after a push, per impulse "
                             "(writes perturb.json and perturb.png)")
    per.add_argument("--checkpoint", required=True, metavar="RUN", help="a pre-training or task run folder, or one of "
                     "its checkpoints")
    per.add_argument("--impulses", type=cli.float_list, default=(0.0, 50.0, 100.0, 150.0, 200.0), metavar="J,J,...",
                     help="push strengths in N s, each >= 0 (default 0,50,100,150,200)")
    per.add_argument("--num_envs", type=cli.positive_int, default=64, help="characters per impulse (default 64)")
    per.add_argument("--seconds", type=cli.positive_float, default=3.0,
                     help="a fall this long after the push counts (default 3)")
    per.add_argument("--recover_seconds", type=cli.positive_float, default=5.0,
                     help="time limit to get up after a fall (default 5)")
    per.add_argument("--push_at", type=cli.float_list, default=PUSH_WINDOW, metavar="START,END",
                     help="the push falls at a random moment in this window, seconds after the start (default 1,2)")
    per.add_argument("--seed", type=int, default=0, help="seed of the starts, latents, push times and directions")
    per.add_argument("--video", default=None, metavar="PATH", help="also render a few characters pushed with the "
                     "strongest impulse (mp4, or .gif)")
    per.add_argument("--video_count", type=cli.positive_int, default=4, help="characters in the video (default 4)")
    per.add_argument("--out", default=None, metavar="DIR", help="where to write the results (default: --checkpoint)")
    cmp = cli.add_subcommand(sub, "compare", "learning curves of several runs side by side, with their diversity")
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    cmp.add_argument("--out", default="compare.png", help="the plot (default compare.png)")
    return parser


def _run(args) -> int:
    if args.command == "diversity":
        result = diversity(args.checkpoint, args.motions, args.num_latents, args.seconds, args.seed)
        out = Path(args.out or args.checkpoint)
        out.mkdir(parents=True, exist_ok=True)
        (out / "diversity.json").write_text(json.dumps(result, indent=2))
        plot_histogram(result, out / "diversity.png")
        print(json.dumps(result))
    elif args.command == "judge":
        skill_judge.check_sizes(args.num_latents, args.episodes)
        out = Path(args.out) if args.out else find_checkpoint(args.checkpoint)[0]
        result = skill_judge.judge_checkpoint(args.checkpoint, args.motions, args.num_latents, args.episodes,
                                              args.seconds, args.seed, close=args.close)
        out.mkdir(parents=True, exist_ok=True)
        (out / "judge.json").write_text(json.dumps(result, indent=2))
        print_judge(result, out / "judge.json")
    elif args.command == "perturb":
        if len(args.push_at) != 2:
            raise AseInputError(f"--push_at: expected START,END seconds, got {len(args.push_at)} numbers")
        result, qpos, model = perturb.perturb(args.checkpoint, args.impulses, args.num_envs, args.seconds,
                                              args.recover_seconds, args.push_at, args.seed,
                                              args.video_count if args.video else 0)
        out = Path(args.out or args.checkpoint)
        out.mkdir(parents=True, exist_ok=True)
        (out / "perturb.json").write_text(json.dumps(result, indent=2))
        perturb.plot(result, out / "perturb.png")
        if args.video:
            strongest = max(range(len(args.impulses)), key=lambda i: args.impulses[i])
            perturb.write_video(model, qpos[strongest], args.video, 1.0 / result["control_dt"])
        print(json.dumps(result))
    else:
        print(json.dumps(compare(args.runs, Path(args.out))))
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())
