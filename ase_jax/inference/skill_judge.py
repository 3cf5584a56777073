"""An independent skill judge: from the motion alone, can a decoder fitted on half of the episodes
tell which latent each episode of the other half held? And what does each latent look like?

Nothing here reads the run's encoder, discriminator or any other network the run optimised: the
policy was trained to make motions its own encoder decodes, so the encoder's score is the run
grading itself. The judge fits a fresh decoder on features of the motion and scores it on episodes
it was not fitted on (`python -m ase_jax.evaluate judge`; `bench learn` reports it at every
evaluation as judge/r2, judge/cosine, judge/accuracy against judge/chance).

The rollout (`plan_episodes`, `judge_policy`, `episode_records`). N latents (drawn from a fixed
seed), K episodes each, every one from the standing pose and holding its latent throughout, in one
`rollout.unroll` batch of N x K characters. The actions are the policy's own: its mean plus its
Gaussian noise (the config's fixed action std, as in training), drawn from a fixed key, so the
figures are reproducible. Not deterministic actions (what `play` shows, the noise's mean): from one
standing pose they make the K episodes of a latent one episode K times, and a held-out episode a
copy of a training one. Starting the episodes apart (a lead-in of random length under another
latent) was tried and is not enough: a character that falls starts again standing, and from there
on its episodes are copies again; on the `cpu` config the untrained policy (which falls within a
second) scored R^2 0.995 and accuracy 1.0 that way in bench learn's judge (8 latents x 4 episodes;
with the noise: R^2 -0.03, accuracy 0.19 against chance 0.125). Noise of the scale training
explores at makes every episode its own, and a latent counts as a skill only where its effect on
the motion stands out of that noise's. The first second (at most a fifth of the episode) leaves
the standing pose and is not measured. A character that falls starts again standing under the same
latent, as in training; its windows count as they are (falling is what it does).

The features (`window_features`). The measured span is cut into windows of about a second; per
window, the mean and the standard deviation over its frames of every feature of the discriminator's
frame (root height and rotation, root linear and angular velocity in the heading frame, joint
rotations and velocities, key bodies relative to the root in the heading frame): the motion as the
motion data describes it, heading-invariant, with no policy observation or network output in it.
The mean says where the body is and how fast it goes, the standard deviation how much it moves (a
swing and a guard can share a mean pose).

The decoder (`decode`). Ridge regression from standardised window features to the latent, fitted
on the even-numbered episodes of each latent and scored on the odd-numbered ones (`split_episodes`:
every latent is in both halves, no scored episode is fitted on). Ridge because it is closed form
(deterministic, no optimiser, seeds or stopping rule to tune), its one penalty is chosen by 2-fold
cross-validation between the training episodes only, and a linear read-out of generic features is a
lower bound on what the motion says about the latent that cannot memorise its few dozen training
episodes the way a network could. An episode's decoded latent is the mean of its windows' (the
decoder sees motion over seconds, not one frame's noise). With z̄ the mean latent of the training
episodes:

    r2        1 - sum |ẑ - z|^2 / sum |z - z̄|^2 over held-out episodes: 1 perfect, 0 what predicting
              z̄ scores, below 0 worse
    cosine    mean cos(ẑ - z̄, z - z̄): 0 for a decoder that knows nothing (about z̄ because the
              mean of N random unit latents has cosine about 1/sqrt(N) with each, which an
              uninformed decoder would collect for free)
    accuracy  share of held-out episodes whose ẑ - z̄ is nearest in cosine to its own latent's
              z - z̄ among the N; chance 1/N

A latent's held-out episodes tend to be alike (one skill), so they tend to be classified right or
wrong together: the accuracy's noise is nearer that of N trials than of the
N x K / 2 held-out episodes (16 latents: chance 0.06, and 0.25 is reached by chance about 2 % of the
time). Compare a run with its control at the same N and seed rather than with 1/N alone.

What a user sees (`latent_table`), per latent over its episodes' measured spans (under the
policy's noise, whose mean `play` shows): root speed (horizontal path length per second), turning
rate (signed heading change per second, + counter-clockwise seen from above), the share of episodes that fell, the share of transitions whose pose
error (`skill_metrics.PoseReference`: RMS over features, in the data's std units) is below `close`
(default 1), and among those the clip of the nearest demo transition most often ("none close" when
no transition is close: a nearest clip of a pose far from all data says little).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ase_jax import quat
from ase_jax.agents.ase.networks import sample_latents
from ase_jax.errors import AseInputError
from ase_jax.compile_cache import CompileCache
from ase_jax.inference.rollout import StepPolicy, load_for_playback, reset_batch, unroll
from ase_jax.inference.skill_metrics import PoseReference

SETTLE_SECONDS = 1.0  # not measured: leaving the standing pose; at most a fifth of the episode
WINDOW_SECONDS = 1.0  # one decoder sample: mean and std of the frames over this long
CLOSE_POSE_ERROR = 1.0  # a transition this close to the data (data std units, RMS) has a nearest clip worth naming
# Ridge penalties tried, per training window (the features are standardised, so X'X / n is their
# correlation matrix and the penalty compares with its eigenvalues); DEFAULT_RIDGE where the training
# half has one episode per latent and cannot be split for cross-validation.
RIDGE_GRID = 10.0 ** np.arange(-3.0, 4.0)
DEFAULT_RIDGE = 1.0
NONE_CLOSE = "none close"


@dataclasses.dataclass(frozen=True)
class Plan:
    """Who holds which latent: N judged latents, K episodes each (E = N x K, latent-major), and
    the key and scale of their action noise."""

    latents: np.ndarray  # (N, D) the judged latents
    latent_index: np.ndarray  # (E,) which judged latent each episode holds
    episode_index: np.ndarray  # (E,) its rank among that latent's episodes
    noise_key: np.ndarray  # a jax PRNG key's data: the action noise of step t is drawn from fold_in(key, t)
    noise_std: float
    measure_from: int  # first measured step
    window: int  # steps per window
    num_windows: int
    dt: float

    @property
    def episode_latents(self) -> np.ndarray:
        return self.latents[self.latent_index]

    def noise(self, t: jax.Array, shape) -> jax.Array:
        """The action noise (E, A) of step t."""
        return self.noise_std * jax.random.normal(jax.random.fold_in(jnp.asarray(self.noise_key), t), shape)

    @property
    def num_episodes(self) -> int:
        return len(self.latent_index)

    @property
    def measured(self) -> slice:
        return slice(self.measure_from, self.measure_from + self.window * self.num_windows)


def action_noise_std(config) -> float:
    """The policy's action noise in training: its fixed Gaussian std."""
    return math.exp(config.ppo.action_log_std)


def check_sizes(num_latents: int, episodes: int, what: str = "--num_latents", per: str = "--episodes") -> None:
    if num_latents < 2:
        raise AseInputError(f"{what}={num_latents}: the judge tells latents apart and needs at least 2")
    if episodes < 2:
        raise AseInputError(f"{per}={episodes}: the judge fits on half of each latent's episodes and scores on "
                            "the other half, so it needs at least 2")


def plan_episodes(key: jax.Array, num_latents: int, episodes: int, latent_dim: int, steps: int, dt: float,
                  noise_std: float, settle_seconds: float = SETTLE_SECONDS,
                  window_seconds: float = WINDOW_SECONDS) -> Plan:
    """The judge's episodes over `steps` control steps of `dt`: the latents, the action noise, and
    the measured span (after the settling steps, in whole windows)."""
    check_sizes(num_latents, episodes)
    steps = max(2, steps)
    settle = max(1, min(round(settle_seconds / dt), steps // 5))
    window = max(1, min(round(window_seconds / dt), steps - settle))
    k_z, k_noise = jax.random.split(key)
    z = np.asarray(sample_latents(k_z, (num_latents,), latent_dim), np.float32)
    n, k = np.meshgrid(np.arange(num_latents), np.arange(episodes), indexing="ij")
    return Plan(latents=z, latent_index=n.ravel(), episode_index=k.ravel(), noise_key=np.asarray(k_noise),
                noise_std=float(noise_std), measure_from=settle, window=window,
                num_windows=(steps - settle) // window, dt=float(dt))


def judge_policy(action, plan: Plan) -> StepPolicy:
    """The judge's characters under `action(obs, z) -> actions` (the policy's mean, clipped to
    [-1, 1]) plus the plan's noise (the env clips again). Its extras are the latents held."""
    z = jnp.asarray(plan.episode_latents)

    def policy(carry, state, t):
        mu = action(state.obs, z)
        return carry, mu + plan.noise(t, mu.shape), z

    return policy


def window_features(frames: jax.Array, window: int) -> jax.Array:
    """(E, W, 2F): per episode and window of `window` steps, the mean and the standard deviation of
    each feature over the window's frames (T', E, F), T' = W x window."""
    t, e, f = frames.shape
    x = frames.reshape(t // window, window, e, f)
    return jnp.swapaxes(jnp.concatenate([x.mean(axis=1), x.std(axis=1)], axis=-1), 0, 1)


def episode_records(pairs: jax.Array, done: jax.Array, root: jax.Array, pose: PoseReference, plan: Plan) -> dict:
    """What the judge keeps of a rollout (inside jit): `pairs` (T, E, 2, F) the discriminator's two
    newest frames after each step (before any reset), `done` (T, E), `root` (T, E, 7) the root's
    position and rotation after each step (after any reset)."""
    span = plan.measured
    pairs, root, done_span = pairs[span], root[span], done[span]
    distance, clip = pose.match(pairs.reshape(*pairs.shape[:2], -1))
    return {"features": window_features(pairs[:, :, 0], plan.window), "distance": distance, "clip": clip,
            "root": root, "done": done_span, "fell": jnp.any(done > 0, axis=0)}


# --- the decoder --------------------------------------------------------------------------------


def split_episodes(episode_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(training mask, cross-validation fold) of episodes by their rank among their latent's
    episodes: even ranks are fitted on, odd ranks scored; the training episodes alternate between
    folds 0 and 1. Every latent with 2 or more episodes is in both halves."""
    episode_index = np.asarray(episode_index)
    return episode_index % 2 == 0, (episode_index // 2) % 2


def _ridge(x: np.ndarray, y: np.ndarray, penalties) -> list[np.ndarray]:
    """Ridge coefficients (F, D) of centred y (n, D) on centred x (n, F) for each total penalty,
    from one SVD."""
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    uy = u.T @ y
    return [vt.T @ ((s / (s**2 + lam))[:, None] * uy) for lam in penalties]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def decode(features: np.ndarray, latent_index: np.ndarray, latents: np.ndarray, train: np.ndarray,
           fold: np.ndarray) -> dict:
    """Fits the ridge decoder on the `train` episodes' windows and scores it on the others.
    `features` (E, W, F), `latent_index` (E,) into `latents` (N, D)."""
    x = np.asarray(features, np.float64)
    e, w, f = x.shape
    latents = np.asarray(latents, np.float64)
    latent_index, train, fold = np.asarray(latent_index), np.asarray(train, bool), np.asarray(fold)
    test = ~train
    seen = x[train].reshape(-1, f)
    std = seen.std(0)
    x = (x - seen.mean(0)) / np.where(std > 1e-8, std, 1.0)  # a constant feature stays 0
    z = latents[latent_index]
    z_bar = z[train].mean(0)
    y = z - z_bar

    def fit(mask, penalties):
        return _ridge(x[mask].reshape(-1, f), np.repeat(y[mask], w, axis=0), [p * mask.sum() * w for p in penalties])

    folds = np.unique(fold[train])
    if len(folds) >= 2:  # choose the penalty on the training episodes only
        errors = np.zeros(len(RIDGE_GRID))
        for k in folds:
            held = train & (fold == k)
            for i, beta in enumerate(fit(train & (fold != k), RIDGE_GRID)):
                errors[i] += np.sum(((x[held] @ beta).mean(axis=1) - y[held]) ** 2)
        penalty = float(RIDGE_GRID[len(errors) - 1 - np.argmin(errors[::-1])])  # ties: the stronger penalty
    else:
        penalty = DEFAULT_RIDGE
    beta, = fit(train, [penalty])
    predicted = (x[test] @ beta).mean(axis=1)  # centred on z̄
    true = y[test]
    nearest = np.argmax(_unit(predicted) @ _unit(latents - z_bar).T, axis=-1)
    return {"r2": float(1.0 - np.sum((predicted - true) ** 2) / np.sum(true**2)),
            "cosine": float(np.mean(np.sum(_unit(predicted) * _unit(true), axis=-1))),
            "accuracy": float(np.mean(nearest == latent_index[test])), "chance": 1.0 / len(latents),
            "test_episodes": int(test.sum()), "train_episodes": int(train.sum()), "ridge_penalty": penalty}


# --- what a user sees ---------------------------------------------------------------------------


def root_motion(root: np.ndarray, done: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per episode (path length, signed heading change, seconds) of root positions and rotations
    (T, E, 7) after each step, skipping the steps that ended an episode (their root is the next
    episode's start)."""
    root = np.asarray(root, np.float64)
    ok = np.asarray(done)[1:] == 0
    step = np.linalg.norm(np.diff(root[..., :2], axis=0), axis=-1)
    yaw = np.diff(quat.heading(root[..., 3:7]), axis=0)
    yaw = (yaw + np.pi) % (2 * np.pi) - np.pi
    return np.sum(step * ok, axis=0), np.sum(yaw * ok, axis=0), np.sum(ok, axis=0) * dt


def latent_table(records: dict, plan: Plan, clip_names, close: float = CLOSE_POSE_ERROR) -> list[dict]:
    """Per judged latent: speed, turning rate, falls and the nearest clip where the pose is close."""
    path, turn, seconds = root_motion(records["root"], records["done"], plan.dt)
    distance, clip = np.asarray(records["distance"]), np.asarray(records["clip"])
    fell = np.asarray(records["fell"])
    rows = []
    for i in range(len(plan.latents)):
        mine = plan.latent_index == i
        near = distance[:, mine] < close
        counts = np.bincount(clip[:, mine][near], minlength=len(clip_names))
        t = max(float(seconds[mine].sum()), 1e-9)
        rows.append({"latent": i, "speed_m_s": float(path[mine].sum() / t), "turn_rad_s": float(turn[mine].sum() / t),
                     "fell": float(np.mean(fell[mine])), "close_share": float(near.mean()),
                     "nearest_clip": clip_names[int(np.argmax(counts))] if near.any() else NONE_CLOSE,
                     "nearest_clip_share": float(counts.max() / near.sum()) if near.any() else None})
    return rows


def judge(records: dict, plan: Plan, clip_names, close: float = CLOSE_POSE_ERROR) -> dict:
    """The judge's figures of a rollout's records (`episode_records`, fetched to the host)."""
    records = jax.device_get(records)
    train, fold = split_episodes(plan.episode_index)
    out = decode(records["features"], plan.latent_index, plan.latents, train, fold)
    distance = np.asarray(records["distance"])
    out.update({"latents": len(plan.latents), "episodes": plan.num_episodes // len(plan.latents),
                "windows": plan.num_windows, "window_seconds": plan.window * plan.dt,
                "measured_seconds": plan.window * plan.num_windows * plan.dt,
                "settle_seconds": plan.measure_from * plan.dt, "action_noise_std": plan.noise_std,
                "close_pose_error": close, "close_share": float(np.mean(distance < close)),
                "table": latent_table(records, plan, clip_names, close)})
    return out


# --- the judge of a saved run -----------------------------------------------------------------


# The judge's rollouts, compiled once per process for a loaded run and the judge's sizes (a notebook
# or a test judges the same run again).
_JUDGE_RUNS = CompileCache("skill judge rollouts", max_entries=2)


def judge_checkpoint(checkpoint, motions=None, num_latents: int = 16, episodes: int = 4, seconds: float = 6.0,
                     seed: int = 0, settle_seconds: float = SETTLE_SECONDS, window_seconds: float = WINDOW_SECONDS,
                     close: float = CLOSE_POSE_ERROR) -> dict:
    """The judge of a pre-training run's checkpoint: N x K characters from the standing pose
    (playback's env: no fallen starts, no time-out) for `seconds` each."""
    from ase_jax.package_data import resolve_path
    from ase_jax.motions.dataset import load_dataset

    check_sizes(num_latents, episodes)
    policy = load_for_playback(checkpoint, "the skill judge")
    pretrained = policy.pretraining_model("the skill judge")
    if pretrained.config.ase.latent_dim == 0:
        raise AseInputError(f"{checkpoint}: a plain AMP run (latent_dim 0) has no latents to judge")
    env = pretrained.env
    dataset = load_dataset(resolve_path(motions or pretrained.config.env.motions), env.character)
    steps = max(2, round(seconds / env.control_dt))
    k_plan, k_reset = jax.random.split(jax.random.PRNGKey(seed))
    plan = plan_episodes(k_plan, num_latents, episodes, pretrained.config.ase.latent_dim, steps, env.control_dt,
                         action_noise_std(pretrained.config), settle_seconds, window_seconds)

    def build():
        pose = PoseReference.of(env, dataset)

        @jax.jit
        def run(params, obs_norm, key):  # the networks as arguments: another checkpoint of the run is the same program
            model = dataclasses.replace(pretrained, params=params, obs_norm=obs_norm)
            record = lambda s, _: (s.next_amp_obs[:, :2], s.done, s.data.qpos[:, :7])
            start = reset_batch(env, key, plan.num_episodes)
            pairs, done, root = unroll(env, start, judge_policy(model.action, plan), steps, record)[2]
            return episode_records(pairs, done, root, pose, plan)

        return policy, run  # the entry keeps the policy alive, so its id is not reused while cached

    key = (id(policy), str(dataset.path), num_latents, episodes, steps, seed, settle_seconds, window_seconds)
    _, run = _JUDGE_RUNS.get(key, build)
    records = run(pretrained.params, pretrained.obs_norm, k_reset)
    result = judge(records, plan, [c.name for c in dataset.clips], close)
    result.update({"checkpoint": str(checkpoint), "step": pretrained.step, "motions": str(dataset.path),
                   "seconds": steps * env.control_dt, "seed": seed})
    return result
