"""Robustness to pushes: characters under a trained policy are pushed at a random moment and we count
who stays up, who falls and gets up again, and how long that takes (`python -m ase_jax.evaluate
perturb`; the reference's `HumanoidPerturb` shows the same skill with projectiles, docs/reference.md
§7.5).

The push. `Pushed` wraps an env so that its step takes `(action, dv)`: dv (3,) is added to the free
root joint's linear velocity (qvel[0:3], world frame) before the env's step. Shifting the root's
linear velocity moves every body with it, so the character's linear momentum changes by exactly
M dv, M its total mass: an instantaneous horizontal push through the centre of mass of impulse
J = M dv. Each character gets its push at a random control step of a window (default 1-2 s after
the start), in a random horizontal direction; all else (start, latent, push time and direction) is
the same at every strength, so the strengths are compared on the same characters. The rollout is
`rollout.unroll`, with the push as part of the policy's actions (`pushing_policy`).

The outcome, per character (`classify`), from the env's own fall test (`env.termination.has_fallen`
on the contact list) evaluated after every control step, with the env's early termination off so a
fall does not end the episode:

  * fell before the push: fallen at some step before its push (counted apart from the others);
  * stayed up: not fallen within `seconds` after the push (a character still in the air at the end
    of it counts here: give `seconds` long enough for the strongest push to land);
  * recovered: fell (first fallen step f within `seconds` after the push), then was up (not fallen,
    a foot on the ground, the head above UP_FRACTION of its height in the start pose: a character
    thrown through the air is not up) for HOLD_SECONDS in a row, starting within `recover_seconds`
    of f; the time to recover is from f to the start of that hold;
  * did not recover: fell and was not up again within `recover_seconds`.

Every character is simulated long enough (last push + `seconds` + `recover_seconds` + the hold) for
its outcome to be known. Task runs are pushed too: their high-level controller keeps choosing the
latents (`inference.policy.Policy.act`).

Projectiles (the reference's way of pushing) are left out: each projectile is one more free body
with contacts against every character geom in MJX's fixed contact list, which is paid on every
physics step of every env whether a projectile flies or not, and a hit's impulse then depends on
the contact solver rather than being known; a velocity change gives the impulse exactly and costs
nothing.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ase_jax.agents.ase.networks import sample_latents
from ase_jax.env import termination
from ase_jax.env.interface import vmap_envs
from ase_jax.errors import AseInputError
from ase_jax.inference.rollout import StepPolicy, latent_policy, reset_batch, task_controller, unroll

PUSH_WINDOW = (1.0, 2.0)  # s after the start: each character's push falls at a random control step in it
UP_FRACTION = 0.8  # up again: head above this fraction of its height in the start pose (and not fallen)
HOLD_SECONDS = 0.5  # ... for this long in a row
HEAD_BODY = "head"
OUTCOMES = ("stayed_up", "recovered", "not_recovered", "fell_before_push")


@dataclasses.dataclass(frozen=True)
class Pushed:
    """An env whose step takes `(action, dv)`: dv is added to the root's linear velocity first."""

    env: object

    def step(self, state, inputs):
        action, dv = inputs
        return self.env.step(push(state, dv), action)


def push(state, dv: jax.Array):
    """The env state with dv (3,) added to the free root joint's linear velocity (world frame): the
    character's linear momentum changes by its total mass times dv. Body velocities in `data` (cvel)
    are recomputed from qvel by the next physics step."""
    data = state.data
    return state.replace(data=data.replace(qvel=data.qvel.at[0:3].add(dv.astype(data.qvel.dtype))))


def pushing_policy(policy: StepPolicy, push_step: jax.Array, dv: jax.Array) -> StepPolicy:
    """`policy`'s actions paired with each env's push: dv[i] (N, 3) at control step push_step[i] (N,),
    zero at every other step (a `Pushed` env's input)."""

    def act(carry, state, t):
        carry, actions, extras = policy(carry, state, t)
        return carry, (actions, jnp.where((t == push_step)[:, None], dv, 0.0)), extras

    return act


def character_mass(env) -> float:
    """Total mass of the character (kg): the subtree of its root, body 1 (task props come after it)."""
    return float(env.mj_model.body_subtreemass[1])


def classify(fallen: np.ndarray, up: np.ndarray, push_step: np.ndarray, observe_steps: int, recover_steps: int,
             hold_steps: int) -> dict:
    """The outcome of each character from its per-step records (module docstring).

    fallen, up: (T, N) bool, row t the state after control step t (the push of character i acts at
    step push_step[i]); observe_steps: steps after the push in which a fall counts; recover_steps:
    steps after the fall in which the hold must start; hold_steps: steps up in a row. Returns arrays
    over characters: `outcome` (index into OUTCOMES), `fall_step`, `fall_after_push` (steps from the
    push to the fall) and `recover_steps` (-1 where none).
    """
    fallen, up = np.asarray(fallen, bool), np.asarray(up, bool)
    num_steps = fallen.shape[0]
    t = np.arange(num_steps)[:, None]
    p = np.asarray(push_step)[None]
    before = (fallen & (t < p)).any(0)
    falls = fallen & (t >= p) & (t < p + observe_steps)
    fell = falls.any(0) & ~before
    fall_step = np.where(fell, falls.argmax(0), -1)
    # held[t]: up at steps t .. t + hold_steps - 1 (False where the records end first)
    count = np.concatenate([np.zeros((1, up.shape[1]), int), np.cumsum(up, 0)])
    held = np.zeros_like(up)
    held[: num_steps - hold_steps + 1] = (count[hold_steps:] - count[: num_steps - hold_steps + 1]) == hold_steps
    f = fall_step[None]
    gets_up = held & (t > f) & (t <= f + recover_steps) & fell[None]
    recovered = gets_up.any(0)
    outcome = np.where(before, 3, np.where(~fell, 0, np.where(recovered, 1, 2)))
    return {"outcome": outcome, "fall_step": fall_step, "fall_after_push": np.where(fell, fall_step - push_step, -1),
            "recover_steps": np.where(recovered, gets_up.argmax(0) - fall_step, -1)}


def summarize(outcome: dict, dt: float) -> dict:
    """Counts and shares of the outcomes, and the recovery times (s), of one push strength."""
    n = len(outcome["outcome"])
    counts = {name: int(np.sum(outcome["outcome"] == k)) for k, name in enumerate(OUTCOMES)}
    times = outcome["recover_steps"][outcome["outcome"] == 1] * dt
    falls = outcome["fall_after_push"][np.isin(outcome["outcome"], (1, 2))] * dt
    return {"counts": counts, "shares": {k: v / n for k, v in counts.items()},
            "fall_seconds_after_push": {"mean": float(falls.mean()) if len(falls) else None,
                                        "median": float(np.median(falls)) if len(falls) else None},
            "recover_seconds": {"mean": float(times.mean()) if len(times) else None,
                                "median": float(np.median(times)) if len(times) else None,
                                "values": [round(float(x), 4) for x in times]}}


@dataclasses.dataclass(frozen=True)
class Controller:
    """What acts in the env: a pre-training run's low-level policy under random latents, or a task run's
    high-level controller driving its frozen low-level policy."""

    env: object
    step: int
    kind: str  # "low-level policy under random latents" or "<task> controller"
    make_policy: object  # (key, start states) -> (StepPolicy, initial carry)


def load_controller(checkpoint) -> Controller:
    """The controller of a pre-training or task run folder (or one of its checkpoints), in its env with
    the evaluation overrides (standing starts, no time-out, no early termination)."""
    from ase_jax.inference.policy_loading import load_policy

    policy = load_policy(checkpoint, purpose="perturb")
    if policy.env is None:
        raise AseInputError(f"{checkpoint}: an export folder; the push test needs the run folder")
    if policy.is_task:
        return Controller(policy.env, policy.step, f"{policy.task_name} controller",
                          lambda key, start: task_controller(policy, start))

    def make(key, start):
        z = sample_latents(key, (start.obs.shape[0],), policy.latent_dim)
        return latent_policy(policy.low_level, z), ()

    return Controller(policy.env, policy.step, "low-level policy under random latents", make)


def check_options(impulses, num_envs: int, seconds: float, recover_seconds: float, push_window) -> None:
    if not impulses:
        raise AseInputError("--impulses: give at least one impulse (N s), e.g. 0,50,100")
    bad = [j for j in impulses if not (math.isfinite(j) and j >= 0)]
    if bad:
        raise AseInputError(f"--impulses: impulses are magnitudes in N s, >= 0; got {bad[0]}")
    if num_envs < 1:
        raise AseInputError(f"--num_envs must be at least 1, got {num_envs}")
    if not (seconds > 0 and recover_seconds > 0):
        raise AseInputError(f"--seconds and --recover_seconds must be positive, got {seconds} and {recover_seconds}")
    a, b = push_window
    if not 0 <= a < b:
        raise AseInputError(f"--push_at: expected START,END seconds with 0 <= START < END, got {a},{b}")


def perturb(checkpoint, impulses=(0.0, 50.0, 100.0, 150.0, 200.0), num_envs: int = 64, seconds: float = 3.0,
            recover_seconds: float = 5.0, push_window=PUSH_WINDOW, seed: int = 0, keep_qpos: int = 0):
    """Pushes `num_envs` characters once each at every impulse of `impulses` (N s) and summarises the
    outcomes (module docstring). Returns (result dict for JSON, qpos (len(impulses), keep_qpos, T+1, nq)
    of the first `keep_qpos` characters, the env's MuJoCo model)."""
    impulses = [float(j) for j in impulses]
    check_options(impulses, num_envs, seconds, recover_seconds, push_window)
    controller = load_controller(checkpoint)
    env = controller.env
    dt = env.control_dt
    mass = character_mass(env)
    first, last = (max(0, round(s / dt)) for s in push_window)
    last = max(last, first + 1)
    observe, recover, hold = (max(1, round(s / dt)) for s in (seconds, recover_seconds, HOLD_SECONDS))
    steps = last + observe + recover + hold
    head = 1 + env.character.body_id(HEAD_BODY)
    nb = env.character.num_bodies
    keep = min(keep_qpos, num_envs)

    k_reset, k_z, k_step, k_dir = jax.random.split(jax.random.PRNGKey(seed), 4)
    start = reset_batch(env, k_reset, num_envs)
    push_step = jax.random.randint(k_step, (num_envs,), first, last)
    angle = jax.random.uniform(k_dir, (num_envs,), maxval=2 * jnp.pi)
    direction = jnp.stack([jnp.cos(angle), jnp.sin(angle), jnp.zeros_like(angle)], -1)
    policy, carry = controller.make_policy(k_z, start)

    feet = jnp.asarray(env.scene.is_contact_body)

    def fallen_and_footed(data):
        """(the env's fall test, whether a foot touches something) of one env's data."""
        contacts = env.contacts(data)
        fallen = termination.has_fallen(contacts, data.xpos[1: 1 + nb, 2], env.scene)
        return fallen, jnp.any(termination.body_contacts(contacts, env.scene) & feet)

    @jax.jit
    def run(start, push_step, dv):
        stand = start.data.xpos[:, head, 2]  # the head's height in the start pose

        def record(state, _):
            down, footed = vmap_envs(fallen_and_footed)(state.data)
            up = ~down & footed & (state.data.xpos[:, head, 2] >= UP_FRACTION * stand)
            return down, up, state.data.qpos[:keep]

        act = pushing_policy(policy, push_step, dv)
        return unroll(Pushed(env), start, act, steps, record, carry=carry)[2]

    result = {"checkpoint": str(checkpoint), "step": controller.step, "controller": controller.kind,
              "num_envs": num_envs, "character_mass_kg": mass, "control_dt": dt, "push_window_s": list(push_window),
              "seconds": seconds, "recover_seconds": recover_seconds, "hold_seconds": hold * dt,
              "up_fraction": UP_FRACTION, "seed": seed, "impulses": []}
    qpos = []
    for j in impulses:
        down, up, q = run(start, push_step, direction * (j / mass))
        outcome = classify(np.asarray(down), np.asarray(up), np.asarray(push_step), observe, recover, hold)
        result["impulses"].append({"impulse_Ns": j, "dv_m_per_s": j / mass, **summarize(outcome, dt)})
        qpos.append(np.concatenate([np.asarray(start.data.qpos[:keep])[None], np.asarray(q)]).swapaxes(0, 1))
    return result, np.stack(qpos), env.mj_model


def plot(result: dict, path) -> None:
    """Shares of the outcomes per impulse (stacked bars) and the recovery times (dots, median as a line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["impulses"]
    x = np.arange(len(rows))
    labels = [f"{r['impulse_Ns']:g}" for r in rows]
    fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(10, 4))
    bottom = np.zeros(len(rows))
    colours = {"stayed_up": "tab:green", "recovered": "tab:blue", "not_recovered": "tab:red",
               "fell_before_push": "tab:gray"}
    for name in OUTCOMES:
        share = np.array([r["shares"][name] for r in rows])
        ax.bar(x, share, bottom=bottom, color=colours[name], label=name.replace("_", " "))
        bottom += share
    ax.set_xticks(x, labels)
    ax.set_xlabel(f"impulse (N s); mass {result['character_mass_kg']:.1f} kg")
    ax.set_ylabel(f"share of {result['num_envs']} characters")
    ax.legend(fontsize=8)
    for i, r in enumerate(rows):
        times = r["recover_seconds"]["values"]
        ax_t.scatter(np.full(len(times), i), times, s=8, alpha=0.5, color="tab:blue")
    medians = [r["recover_seconds"]["median"] for r in rows]
    ax_t.plot(x, [np.nan if m is None else m for m in medians], "k-o", label="median")
    ax_t.set_xticks(x, labels)
    ax_t.set_xlim(-0.5, len(rows) - 0.5)
    ax_t.set_ylim(0, result["recover_seconds"])
    ax_t.set_xlabel("impulse (N s)")
    ax_t.set_ylabel("time to get up after the fall (s)")
    ax_t.legend(fontsize=8)
    fig.suptitle(f"{result['checkpoint']} (step {result['step']}): {result['controller']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_video(model, qpos: np.ndarray, path, fps: float, width: int = 320, height: int = 240):
    """Renders characters' qpos (k, T, nq) side by side into a video."""
    from ase_jax import render

    tiles = [render.render_frames(model, q, width=width, height=height) for q in qpos]
    return render.write_video(path, render.grid(tiles), fps)
