"""The learning protocol's curves: which figures a row holds and which way each improves, the
reference's own training log beside ours, the summary of a curve (start, end, best, where it stopped
improving) and the plot of one or several runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console

# Curves and the direction in which each improves (+1 up, -1 down); `train/...` are training metrics.
CURVES = {
    "train/reward_disc": 1, "train/disc_demo_accuracy": 0, "train/disc_agent_accuracy": 0,
    "train/enc_reward_clipped": 1, "train/episode_length": 1,
    "train/diversity_loss": -1, "eval/survival": 1, "eval/enc_similarity": 1, "eval/enc_similarity_shuffled": 0,
    "eval/enc_similarity_gap": 1, "eval/z_sensitivity": 1, "eval/pose_error": -1, "eval/clips_covered": 1,
    "judge/r2": 1, "judge/cosine": 1, "judge/accuracy": 1, "judge/chance": 0, "judge/close_share": 1,
}
TRAIN_KEYS = {"reward/disc": "train/reward_disc", "reward/enc": "train/reward_enc",
              "reward/enc_clipped": "train/enc_reward_clipped",
              "disc_demo_accuracy": "train/disc_demo_accuracy", "disc_agent_accuracy": "train/disc_agent_accuracy",
              "loss/diversity": "train/diversity_loss", "enc_similarity": "train/enc_similarity",
              "episode/length": "train/episode_length"}


# The reference's own training curve for the sword-and-shield character (the ASE author's log in
# MimicKit's data archive, `ase_humanod_sword_shield_log.txt`: 4096 envs x 32 steps, one row every
# 200 iterations; docs/reference.md §9): samples, Enc_Reward_Mean (max(e.z, 0); chance 0.05 for a
# 64-D latent), Diversity_Loss, training episode length. The log has no row between 1.3e5 and 2.6e7.
REFERENCE_CURVE = (
    {"samples": 1.3e5, "enc_reward": 0.050, "diversity_loss": 0.999997, "episode_length": 22},
    {"samples": 2.6e7, "enc_reward": 0.218, "diversity_loss": 0.99885, "episode_length": 51},
    {"samples": 5.3e7, "enc_reward": 0.362, "diversity_loss": 0.99654, "episode_length": 126},
    {"samples": 7.9e7, "enc_reward": 0.444, "diversity_loss": 0.99411, "episode_length": 235},
    {"samples": 1.3e8, "enc_reward": 0.506, "diversity_loss": 0.99020, "episode_length": 277},
    {"samples": 2.6e8, "enc_reward": 0.549, "diversity_loss": 0.98173, "episode_length": 292},
)
# our training curve beside each of the reference's columns, and the direction in which it improves
REFERENCE_COLUMNS = {"enc_reward": ("train/enc_reward_clipped", 1), "diversity_loss": ("train/diversity_loss", -1),
                     "episode_length": ("train/episode_length", 1)}


def reference_comparison(rows: list[dict]) -> dict:
    """Per reference column and row past its start: the first of our sample counts at which our
    curve reached the reference's value there (None: not reached), and how many times fewer
    samples that took."""
    out = {}
    for column, (key, direction) in REFERENCE_COLUMNS.items():
        points = [(r["env_steps"], r[key]) for r in rows if r.get(key) is not None]
        entries = []
        for ref in REFERENCE_CURVE[1:]:
            reached = next((n for n, v in points if (v - ref[column]) * direction >= 0), None)
            entries.append({"reference_samples": ref["samples"], "reference_value": ref[column],
                            "our_samples": reached,
                            "fewer_samples_x": round(ref["samples"] / reached, 1) if reached else None})
        out[column] = {"ours_end": points[-1][1] if points else None, "rows": entries}
    return out


def improvement_summary(rows: list[dict]) -> dict:
    """Per curve: start, end, best, and the samples after which it stayed within 10 % of the way
    from its start to its best (None where it never improved)."""
    out = {}
    for name, direction in CURVES.items():
        points = [(r["env_steps"], r[name]) for r in rows if name in r and r[name] is not None]
        if not points:
            continue
        steps, values = map(np.asarray, zip(*points))
        entry = {"start": float(values[0]), "end": float(values[-1])}
        if direction:
            best = float(values.max() if direction > 0 else values.min())
            entry["best"] = best
            gain = (best - values[0]) * direction
            if gain > 0:
                close = (best - values) * direction <= 0.1 * gain
                # the first sample count from which every later point is within 10 % of the best
                later_ok = np.flip(np.cumprod(np.flip(close)))
                if later_ok[-1]:  # a curve that fell back from its best at the end has not plateaued
                    entry["samples_to_plateau"] = int(steps[int(np.argmax(later_ok))])
        out[name] = entry
    return out


def print_reference_comparison(comparison: dict, samples: int, console: Console) -> None:
    """One line per reference column: where ours ended, and the first reference row it reached."""
    console.print(f"beside the reference's training log (ours at {samples:,} samples; the reference's first "
                  "skill signal is its row at 2.6e7):", highlight=False)
    for column, entry in comparison.items():
        reached = [r for r in entry["rows"] if r["our_samples"] is not None]
        first_ref = entry["rows"][0]
        status = (f"reached the reference's {reached[-1]['reference_value']} (its {reached[-1]['reference_samples']:.2g} "
                  f"samples) at {reached[-1]['our_samples']:,}: {reached[-1]['fewer_samples_x']}x fewer samples"
                  if reached else f"not yet at the reference's {first_ref['reference_value']} "
                  f"(its {first_ref['reference_samples']:.2g} samples)")
        end = entry["ours_end"]
        console.print(f"  {column}: ours {end:.5g} at the end; {status}" if end is not None else f"  {column}: no data",
                      highlight=False)


PANELS = [
    ("disc reward (training)", ["train/reward_disc"]),
    ("disc accuracy (training): demo -, agent --", ["train/disc_demo_accuracy", "train/disc_agent_accuracy"]),
    ("enc reward max(e.z, 0) (training)", ["train/enc_reward_clipped"]),
    ("episode length (training)", ["train/episode_length"]),
    ("diversity loss (training; 1 = actions ignore z)", ["train/diversity_loss"]),
    ("skills told apart: e(o).z for own z minus shuffled z", ["eval/enc_similarity_gap"]),
    ("survival under random z (share of 5 s)", ["eval/survival"]),
    ("pose error to nearest demo transition", ["eval/pose_error"]),
    ("judge: fresh decoder's accuracy -, chance --", ["judge/accuracy", "judge/chance"]),
    ("judge: held-out R2 -, cosine --", ["judge/r2", "judge/cosine"]),
]


def plot_curves(results: list[dict], path: Path, labels: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(21, 6.5))
    for i, result in enumerate(results):
        label = (labels[i] if labels else None) or f"ablation {result['protocol']['ablation']}"
        color = f"C{i}"
        for ax, (title, keys) in zip(axes.ravel(), PANELS):
            for k, key in enumerate(keys):
                points = [(r["env_steps"], r[key]) for r in result["rows"] if r.get(key) is not None]
                if points:
                    x, y = zip(*points)
                    ax.plot(x, y, color=color, linestyle="-" if k == 0 else "--",
                            label=label if k == 0 else None, marker=".")
            column = next((c for c, (key, _) in REFERENCE_COLUMNS.items() if keys[0] == key), None)
            if column is not None and i == 0:  # the reference's value at its first skill signal (2.6e7 samples)
                ref = REFERENCE_CURVE[1]
                ax.axhline(ref[column], color="gray", linestyle=":", linewidth=1,
                           label=f"reference at {ref['samples']:.2g} samples")
                ax.legend(fontsize=7)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("policy samples", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=8)
    first = results[0]
    fig.suptitle(f"ase_jax bench learn: {first['config']['env']['character']}, {first['config']['ppo']['num_envs']} "
                 f"envs, seed {first['seed']}, {first['device']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
