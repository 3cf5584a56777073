"""The config's sections: one frozen dataclass each, every key declared once with its type, default,
allowed values and one line of help; and which sections each command uses (`COMMANDS`).

`python -m ase_jax.pretrain` uses env, ppo, ase and run; `python -m ase_jax.task` uses env, ppo,
task and run. A check returns None for a good value and otherwise the words that say what is
wrong with it (`keys.check_value` turns them into the error naming the key).
"""

from __future__ import annotations

import dataclasses
import difflib
import math


def _field(default, help: str, check=None):
    return dataclasses.field(default=default, metadata={"help": help, "check": check})


def _positive(v):
    return None if v > 0 else "must be > 0"


def _non_negative(v):
    return None if v >= 0 else "must be >= 0"


def _at_least(lo):
    return lambda v: None if v >= lo else f"must be >= {lo}"


def _probability(v):
    return None if 0.0 <= v <= 1.0 else "must be a probability in [0, 1]"


def _one_of(*choices):
    def check(v):
        if v in choices:
            return None
        close = difflib.get_close_matches(v, choices, n=1)
        return f"must be one of {list(choices)}" + (f"; did you mean '{close[0]}'?" if close else "")
    return check


def parse_torque_limit(value) -> float | None:
    """`pd_torque_limit` as a factor of the MJCF's forcerange: "gear" -> 1.0, "none" -> None, "1.5" -> 1.5;
    a ValueError with the allowed forms otherwise."""
    text = str(value).strip().lower()
    if text == "gear":
        return 1.0
    if text == "none":
        return None
    try:
        factor = float(text)
    except ValueError:
        factor = float("nan")
    if not math.isfinite(factor) or factor <= 0:
        raise ValueError("must be 'gear' (the MJCF's forcerange, the reference motor gear), a positive factor "
                         "of it such as 1.5, or 'none'")
    return factor


def _torque_limit(v):
    try:
        parse_torque_limit(v)
    except ValueError as e:
        return str(e)
    return None


# The names of the characters (ase_jax.character.CHARACTERS) and tasks (ase_jax.tasks.TASKS), here
# because the config sits below both and checks names without importing them; a test keeps the
# lists equal to the registries.
CHARACTER_NAMES = ("sword_shield", "amp_humanoid")
TASK_NAMES = ("heading", "location", "reach", "strike", "getup")


def _character(v):
    if v in CHARACTER_NAMES:
        return None
    close = difflib.get_close_matches(v, list(CHARACTER_NAMES), n=1)
    return f"unknown character (known: {sorted(CHARACTER_NAMES)})" + (f"; did you mean '{close[0]}'?" if close else "")


def _task_name(v):
    return _one_of(*TASK_NAMES)(v)


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """The simulated character and its episodes (docs/reference.md §0, §4, §8)."""

    character: str = _field("sword_shield", "character name from ase_jax.character.CHARACTERS", _character)
    motions: str = _field("motions/bundled/dataset.yaml", "motion clip (.npy) or dataset (.yaml); relative paths "
                          "are looked up from the current directory, then from the repository root")
    demo_history: int = _field(10, "frames in the discriminator's observation history (numAMPObsSteps)", _positive)
    episode_length: int = _field(300, "control steps per episode (an episode ends at episode_length - 1)", _at_least(3))
    physics_steps_per_control_step: int = _field(4, "MuJoCo steps of 1/120 s per 30 Hz policy step", _positive)
    state_init: str = _field("hybrid", "initial states: default (spawn pose), reference (motion data at a random "
                             "time), start (a clip's first frame) or hybrid (reference or default)",
                             _one_of("default", "reference", "start", "hybrid"))
    hybrid_init_prob: float = _field(0.5, "probability of a reference-state start under hybrid init", _probability)
    fall_init_prob: float = _field(0.1, "probability of starting from a fallen pose", _probability)
    recovery_episode_prob: float = _field(0.2, "probability that a fall continues as a get-up episode", _probability)
    recovery_steps: int = _field(60, "get-up counter: a fall or recovery episode cannot end in its first "
                                 "recovery_steps - 1 control steps (as the reference)", _non_negative)
    num_fall_states: int = _field(0, "fallen poses generated at start-up for fall initialisation; 0: one per env "
                                  "(num_envs, as the reference); none are made where fall_init_prob is 0", _non_negative)
    early_termination: bool = _field(True, "end an episode when a non-foot body touches the ground low down")
    pd_torque_limit: str = _field("gear", "limit F of the PD drive's total torque clip(kp (q* - q) - kd qdot, -F, F): "
                                  "gear (the MJCF's forcerange, the reference motor gear), a factor of it such as "
                                  "1.5, or none", _torque_limit)
    self_collision: bool = _field(True, "body parts collide with each other (as the reference); self-contact of "
                                  "non-foot bodies counts as fall contact")
    solver_iterations: int = _field(4, "MuJoCo constraint solver iterations", _positive)
    solver_ls_iterations: int = _field(8, "MuJoCo solver line-search iterations", _positive)
    mjx_impl: str = _field("jax", "MJX implementation: jax (everywhere) or warp (NVIDIA GPUs)", _one_of("jax", "warp"))
    warp_contacts_per_env: int = _field(0, "mjx_impl=warp: contact slots per env (MuJoCo Warp keeps one list for all "
                                        "envs, num_envs times this); 0: MuJoCo Warp's own guess for the model. A "
                                        "step that finds more contacts counts in env/contact_overflow", _non_negative)
    warp_constraints_per_env: int = _field(0, "mjx_impl=warp: constraint rows per env (njmax); 0: MuJoCo Warp's "
                                           "own guess for the model", _non_negative)


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Rollouts and the PPO update shared by pre-training and task training (docs/reference.md §5.4-5.7)."""

    num_envs: int = _field(4096, "number of simulated characters", _positive)
    horizon: int = _field(32, "rollout length per iteration (horizon_length)", _positive)
    mini_epochs: int = _field(6, "passes over each rollout batch", _positive)
    minibatch_size: int = _field(16384, "samples per gradient step (must divide num_envs x horizon)", _positive)
    learning_rate: float = _field(2e-5, "Adam learning rate (of every network unless a rate of its own is set)",
                                  _positive)
    critic_learning_rate: float = _field(0.0, "the critic's own Adam learning rate; 0: learning_rate, as the "
                                         "reference (MimicKit 5e-5, ProtoMotions 1e-4)", _non_negative)
    max_grad_norm: float = _field(0.0, "global gradient-norm clip; 0 disables it (the reference does not clip)",
                                  _non_negative)
    gamma: float = _field(0.99, "discount", _probability)
    gae_lambda: float = _field(0.95, "GAE lambda (tau)", _probability)
    ppo_clip: float = _field(0.2, "PPO ratio clip (e_clip)", _positive)
    critic_coef: float = _field(5.0, "value loss weight", _non_negative)
    bounds_coef: float = _field(10.0, "action-bounds loss weight", _non_negative)
    action_log_std: float = _field(-2.9, "fixed log standard deviation of the Gaussian policy")
    actor_units: tuple = _field((1024, 1024, 512), "actor MLP sizes")
    critic_units: tuple = _field((1024, 1024, 512), "critic MLP sizes")
    compute_dtype: str = _field("float32", "dtype of the actor's, critic's, discriminator's and encoder's matmuls "
                                "and activations: float32 (the reference) or bfloat16 (parameters, optimiser "
                                "state, losses and their reductions stay float32)", _one_of("float32", "bfloat16"))
    normalize_obs_clip: float = _field(5.0, "clamp of normalised observations", _positive)
    normalize_value_clip: float = _field(5.0, "clamp of normalised values: the critic's output before it is "
                                         "denormalised and the normalised return targets (the reference's, "
                                         "rl_games' RunningMeanStd); 0 disables it", _non_negative)


@dataclasses.dataclass(frozen=True)
class ASEConfig:
    """Pre-training's adversarial and skill-discovery parts (docs/reference.md §5; ase_humanoid.yaml)."""

    latent_dim: int = _field(64, "skill latent size; 0: plain AMP (one style reward, no latent input, no encoder "
                             "or diversity terms; configs/amp.yaml)", _non_negative)
    latent_steps_min: int = _field(1, "fewest control steps before a latent is resampled", _positive)
    latent_steps_max: int = _field(150, "latents are held for randint(min, max) steps (max exclusive)", _positive)
    style_units: tuple = _field((512, 256), "actor style-branch MLP sizes")
    disc_units: tuple = _field((1024, 1024, 512), "discriminator/encoder trunk sizes")
    separate_encoder: bool = _field(False, "the encoder as a network of its own (disc_units sizes) instead of a "
                                    "head on the discriminator's trunk (the reference shares it; MimicKit does not)")
    style_init_scale: float = _field(1.0, "the style branch's output layer is drawn U(-s, s); the reference's s is 1, "
                                     "larger makes the actions depend on z from the start", _positive)
    disc_learning_rate: float = _field(0.0, "the discriminator's and encoder's own Adam learning rate; 0: "
                                       "ppo.learning_rate, as the reference (MimicKit 5e-5, ProtoMotions 1e-4)",
                                       _non_negative)
    enc_learning_rate: float = _field(0.0, "the encoder's own Adam learning rate (its head, and its trunk with "
                                      "separate_encoder); 0: disc_learning_rate", _non_negative)
    disc_coef: float = _field(5.0, "discriminator loss weight", _non_negative)
    enc_coef: float = _field(5.0, "encoder loss weight", _non_negative)
    diversity_coef: float = _field(0.01, "diversity loss weight (amp_diversity_bonus); 0 disables it", _non_negative)
    diversity_target: float = _field(1.0, "target of the diversity bonus (amp_diversity_tar)", _non_negative)
    disc_logit_reg: float = _field(0.01, "penalty on the discriminator's logit-layer weights", _non_negative)
    disc_grad_penalty: float = _field(5.0, "gradient penalty on demo samples", _non_negative)
    disc_weight_decay: float = _field(1e-4, "L2 penalty on discriminator weights", _non_negative)
    disc_reward_scale: float = _field(2.0, "scale of -log(1 - D)", _non_negative)
    enc_reward_scale: float = _field(1.0, "scale of the encoder reward", _non_negative)
    disc_reward_w: float = _field(0.5, "weight of the discriminator reward", _non_negative)
    enc_reward_w: float = _field(0.5, "weight of the skill-discovery (encoder) reward; 0 disables it", _non_negative)
    enc_reward_form: str = _field("clipped", "encoder reward: clipped max(e.z, 0) (the reference) or shifted "
                                  "(e.z + 1) / 2, dense for every z (ProtoMotions)", _one_of("clipped", "shifted"))
    reward_normalization: bool = _field(False, "divide the discriminator and encoder rewards each by its own running "
                                        "standard deviation before weighting them (ProtoMotions; the reference "
                                        "does not)")
    amp_minibatch_size: int = _field(4096, "agent, replay and demo rows per discriminator/encoder step", _positive)
    replay_buffer_size: int = _field(200_000, "past agent discriminator observations kept", _positive)
    replay_keep_prob: float = _field(0.01, "share of new agent samples stored once the replay buffer is full",
                                     _probability)
    eps_greedy: bool = _field(True, "the reference's split of stochastic and deterministic envs")


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """Stage 2: a high-level controller on a frozen low-level one (docs/reference.md §6-7)."""

    name: str = _field("heading", "task for the high-level controller: heading, location, reach, strike, getup",
                       _task_name)
    llc: str = _field("", "pre-trained low-level controller: a pretrain run folder or one of its checkpoints")
    llc_steps: int = _field(5, "low-level control steps per high-level action", _positive)
    scratch: bool = _field(False, "train a plain policy on the task without the skill embedding (baseline)")
    task_reward_w: float = _field(0.9, "weight of the task reward", _non_negative)
    disc_reward_w: float = _field(0.1, "weight of the frozen discriminator's reward (the motion prior)",
                                  _non_negative)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How long to run, where to write and when to stop; never changes what is computed."""

    seed: int = _field(0, "random seed", _non_negative)
    workdir: str = _field("runs/default", "folder for checkpoints, metrics and logs")
    total_steps: int = _field(10_000_000_000, "policy samples (all envs) to train for", _positive)
    checkpoint_every: int = _field(100, "iterations between checkpoints", _positive)
    keep_checkpoints: int = _field(3, "most recent checkpoints kept", _positive)
    keep_checkpoint_period: int = _field(0, "also keep every checkpoint whose iteration is a multiple of this "
                                         "(0: none)", _non_negative)
    max_bad_iterations: int = _field(5, "stop after this many consecutive iterations whose updates were all "
                                     "skipped for non-finite gradients", _positive)
    log_every: int = _field(1, "iterations between metric logs", _positive)
    memory_check: bool = _field(True, "pretrain on a GPU/TPU: compile the training step ahead of time and refuse "
                                "a num_envs whose step does not fit the device's free memory before allocating "
                                "anything (ase_jax/plan.py; no extra compile)")
    coordinator_address: str = _field("", "HOST:PORT of process 0 for a run over several processes (machines): "
                                      "every process passes the same one; 'auto' reads it, the process count "
                                      "and id from the cluster launcher (SLURM, Open MPI); empty: one process, "
                                      "or the launcher's when srun/mpirun started several")
    num_processes: int = _field(1, "processes of a multi-process run (with coordinator_address)", _positive)
    process_id: int = _field(0, "this process's index, 0 .. num_processes - 1 (with coordinator_address)",
                             _non_negative)
    coordinator_timeout: int = _field(300, "seconds to wait for all processes to reach the coordinator "
                                      "before giving up with an error", _positive)


SECTIONS: dict[str, type] = {"env": EnvConfig, "ppo": PPOConfig, "ase": ASEConfig, "task": TaskConfig,
                             "run": RunConfig}
COMMANDS: dict[str, tuple[str, ...]] = {"pretrain": ("env", "ppo", "ase", "run"),
                                        "task": ("env", "ppo", "task", "run")}


def section_fields(section: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(SECTIONS[section])}
