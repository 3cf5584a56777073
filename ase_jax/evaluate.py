"""Measuring skills: `python -m ase_jax.evaluate diversity|compare ...`.

    diversity --checkpoint=RUN [--motions=DATASET] [--num_latents=64] [--seconds=10] [--out=DIR]
        Rolls out the low-level policy under many random latents (one per character, held for the
        whole episode) and, for every transition, finds the motion clip holding the nearest demo
        transition (two consecutive discriminator frames, normalised with the run's own
        discriminator normaliser). Prints JSON: the share of transitions per clip (top 50), the
        number of clips covered and the entropy of that distribution; saves a bar plot (PNG).
        The paper's diversity ablation (Peng et al. 2022, section 8).
    compare RUN [RUN ...] [--out=compare.png]
        Plots the learning curves (reward/task, else reward/total, against env steps) of several
        runs side by side, with each run's diversity (diversity.json, if measured) in the legend.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ase_jax import cli
from ase_jax.env import observations as obs_lib
from ase_jax.config import resolve_path
from ase_jax.errors import AseInputError
from ase_jax.motions import library as ml
from ase_jax.motions.dataset import load_dataset


def squared_distances(features: jax.Array, demo: jax.Array, demo_sq: jax.Array) -> jax.Array:
    """|f - d|^2 of every feature row against every demo row, (..., D), via the expansion
    |f|^2 - 2 f.d + |d|^2 (`demo_sq` = |d|^2 per demo row, computed once by the caller)."""
    return jnp.sum(features**2, axis=-1, keepdims=True) - 2 * features @ demo.T + demo_sq


def nearest_clip_histogram(agent: jax.Array, demo: jax.Array, demo_clip: jax.Array, num_clips: int,
                           chunk: int = 1024) -> np.ndarray:
    """Counts, per clip, of agent features whose nearest demo feature (Euclidean) belongs to it."""
    agent, demo = jnp.asarray(agent), jnp.asarray(demo)
    demo_sq = jnp.sum(demo**2, axis=-1)

    @jax.jit
    def nearest(block):
        return jnp.argmin(squared_distances(block, demo, demo_sq), axis=-1)

    pad = (-agent.shape[0]) % chunk
    blocks = jnp.pad(agent, ((0, pad), (0, 0))).reshape(-1, chunk, agent.shape[-1])
    idx = np.concatenate([np.asarray(nearest(b)) for b in blocks])[: agent.shape[0]]
    return np.bincount(np.asarray(demo_clip)[idx], minlength=num_clips)


def summarize(counts: np.ndarray, names, top: int = 50) -> dict:
    share = counts / max(counts.sum(), 1)
    nonzero = share[share > 0]
    order = np.argsort(-counts)[:top]
    return {"transitions": int(counts.sum()), "clips": len(names), "clips_covered": int((counts > 0).sum()),
            "entropy_nats": float(-(nonzero * np.log(nonzero)).sum()),
            "max_entropy_nats": float(math.log(len(names))),
            "top": [{"clip": names[i], "share": float(share[i])} for i in order if counts[i] > 0]}


def _pair_features(frames: jax.Array, amp_norm, frame_size: int) -> jax.Array:
    """[frame t+1, frame t] normalised with the first two slots of the discriminator normaliser."""
    mean, std = amp_norm.mean[: 2 * frame_size], amp_norm.std[: 2 * frame_size]
    return (frames - mean) / std


def demo_transitions(pretrained, dataset) -> tuple[jax.Array, np.ndarray]:
    """Features of every consecutive pair of 30 Hz frames of every clip, normalised with the run's
    discriminator normaliser, and their clip index."""
    frames, clip_ids = demo_transition_frames(pretrained.env, dataset)
    return _pair_features(frames, pretrained.amp_norm, pretrained.env.amp_obs_size), clip_ids


def demo_transition_frames(env, dataset) -> tuple[jax.Array, np.ndarray]:
    """Raw [frame t+1, frame t] discriminator features of every consecutive pair of control-rate
    frames of every clip of `dataset` on `env`'s character, and the clip index of each."""
    lib = ml.build_motion_lib(dataset, env.character)
    dt = env.control_dt
    clip_ids, times = [], []
    for c, clip in enumerate(dataset.clips):
        t = np.arange(dt, clip.length + 1e-6, dt)
        clip_ids.append(np.full(len(t), c))
        times.append(t)
    clip_ids, times = np.concatenate(clip_ids), np.concatenate(times)
    pair_times = jnp.stack([times, times - dt], axis=-1)  # newest first, as the discriminator sees it
    states = ml.state_at(lib, jnp.asarray(np.stack([clip_ids, clip_ids], -1)), jnp.asarray(pair_times, jnp.float32))
    frame = jax.vmap(jax.vmap(obs_lib.amp_obs_frame, in_axes=(0, 0, 0, None)), in_axes=(0, 0, 0, None))
    return frame(states.qpos, states.qvel, states.body_pos, env.character).reshape(len(times), -1), clip_ids


def agent_transitions(pretrained, num_latents: int, steps: int, seed: int = 0) -> jax.Array:
    """Features of the policy's transitions, one random latent per character held for `steps` steps."""
    env = pretrained.env
    k_reset, k_z = jax.random.split(jax.random.PRNGKey(seed))
    z = jax.random.normal(k_z, (num_latents, pretrained.config.ase.latent_dim))
    z = z / jnp.linalg.norm(z, axis=-1, keepdims=True)

    @jax.jit
    def rollout(state):
        def step(s, _):
            s = jax.vmap(env.step)(s, pretrained.action(s.obs, z))
            return s, (s.next_amp_obs[:, :2].reshape(num_latents, -1), s.done)
        return jax.lax.scan(step, state, None, steps)[1]

    pairs, done = rollout(jax.vmap(env.reset)(jax.random.split(k_reset, num_latents)))
    pairs = pairs.reshape(-1, pairs.shape[-1])[np.asarray(done).reshape(-1) == 0]  # skip resets' stale pairs
    return _pair_features(pairs, pretrained.amp_norm, env.amp_obs_size)


def diversity(checkpoint, motions=None, num_latents: int = 64, seconds: float = 10.0, seed: int = 0) -> dict:
    from ase_jax.agents.ase.policy import load_pretrained

    pretrained = load_pretrained(checkpoint, num_envs=num_latents)
    dataset = load_dataset(resolve_path(motions or pretrained.config.env.motions),
                           pretrained.env.character)
    demo, demo_clip = demo_transitions(pretrained, dataset)
    agent = agent_transitions(pretrained, num_latents, int(round(seconds / pretrained.env.control_dt)), seed)
    counts = nearest_clip_histogram(agent, demo, demo_clip, len(dataset.clips))
    result = summarize(counts, [c.name for c in dataset.clips])
    result.update({"checkpoint": str(checkpoint), "step": pretrained.step, "motions": str(dataset.path),
                   "num_latents": num_latents, "seconds": seconds})
    return result


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


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="python -m ase_jax.evaluate", description=__doc__)
    sub = cli.subcommands(parser)
    div = cli.add_subcommand(sub, "diversity", "share of transitions per motion clip under random latents "
                             "(writes diversity.json and diversity.png)")
    div.add_argument("--checkpoint", required=True, metavar="RUN", help="a pre-training run folder or one of its "
                     "checkpoints")
    div.add_argument("--motions", default=None, metavar="DATASET",
                     help="motion clip or dataset to attribute transitions to (default: the run's)")
    div.add_argument("--num_latents", type=cli.positive_int, default=64,
                     help="random latents, one character each (default 64)")
    div.add_argument("--seconds", type=cli.positive_float, default=10.0, help="episode length (default 10)")
    div.add_argument("--seed", type=int, default=0, help="seed of the latents and initial states (default 0)")
    div.add_argument("--out", default=None, metavar="DIR", help="where to write the results (default: --checkpoint)")
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
    else:
        print(json.dumps(compare(args.runs, Path(args.out))))
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())
