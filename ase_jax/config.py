"""Run configurations: YAML files in `configs/`, overridden by `--key=value` flags, validated at load.

A config file is a flat mapping of keys to values and may start from another one with
`base: NAME`. Every key is declared once in `Config` below, with its type, default, allowed range and
help text; unknown keys, wrong types and out-of-range values are rejected with a message naming the
key (and, for typos, the closest known key).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path

import yaml

from ase_jax.errors import AseInputError

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"


class ConfigError(AseInputError):
    pass


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


def _torque_limit(v):
    from ase_jax.drive import parse_torque_limit

    try:
        parse_torque_limit(v)
    except ValueError as e:
        return str(e)
    return None


def _character(v):
    from ase_jax.character import CHARACTERS

    if v in CHARACTERS:
        return None
    close = difflib.get_close_matches(v, list(CHARACTERS), n=1)
    return f"unknown character (known: {sorted(CHARACTERS)})" + (f"; did you mean '{close[0]}'?" if close else "")


@dataclasses.dataclass(frozen=True)
class Config:
    character: str = _field("sword_shield", "character name from ase_jax.character.CHARACTERS", _character)
    motions: str = _field("motions/bundled/dataset.yaml", "motion clip (.npy) or dataset (.yaml); relative paths "
                          "are looked up from the current directory, then from the repository root")
    seed: int = _field(0, "random seed", _non_negative)
    workdir: str = _field("runs/default", "folder for checkpoints, metrics and logs")
    num_envs: int = _field(4096, "number of simulated characters", _positive)
    demo_history: int = _field(10, "frames in the discriminator's observation history (numAMPObsSteps)", _positive)

    # --- environment (facts sheet sections 0.3, 4 and 8) ---
    episode_length: int = _field(300, "control steps per episode (an episode ends at episode_length - 1)", _at_least(3))
    physics_steps_per_control_step: int = _field(4, "MuJoCo steps of 1/120 s per 30 Hz policy step", _positive)
    state_init: str = _field("hybrid", "initial states: default (spawn pose), reference (motion data) or hybrid",
                             _one_of("default", "reference", "hybrid"))
    hybrid_init_prob: float = _field(0.5, "probability of a reference-state start under hybrid init", _probability)
    fall_init_prob: float = _field(0.1, "probability of starting from a fallen pose", _probability)
    recovery_episode_prob: float = _field(0.2, "probability that a fall continues as a get-up episode", _probability)
    recovery_steps: int = _field(60, "get-up counter: a fall or recovery episode cannot end in its first "
                                 "recovery_steps - 1 control steps (as the reference)", _non_negative)
    num_fall_states: int = _field(512, "fallen poses generated at start-up for fall initialisation", _positive)
    early_termination: bool = _field(True, "end an episode when a non-foot body touches the ground low down")
    pd_torque_limit: str = _field("gear", "limit F of the PD drive's total torque clip(kp (q* - q) - kd qdot, -F, F): "
                                  "gear (the MJCF's forcerange, the reference motor gear), a factor of it such as "
                                  "1.5, or none", _torque_limit)
    self_collision: bool = _field(True, "body parts collide with each other (as the reference); self-contact of "
                                  "non-foot bodies counts as fall contact")
    solver_iterations: int = _field(4, "MuJoCo constraint solver iterations", _positive)
    solver_ls_iterations: int = _field(8, "MuJoCo solver line-search iterations", _positive)
    mjx_impl: str = _field("jax", "MJX implementation: jax (everywhere) or warp (NVIDIA GPUs)", _one_of("jax", "warp"))

    # --- ASE learning (facts sheet sections 5 and 8; reference: ase_humanoid.yaml) ---
    total_steps: int = _field(10_000_000_000, "environment steps (all envs) to train for", _positive)
    horizon: int = _field(32, "rollout length per iteration (horizon_length)", _positive)
    mini_epochs: int = _field(6, "passes over each rollout batch", _positive)
    minibatch_size: int = _field(16384, "samples per gradient step (must divide num_envs x horizon)", _positive)
    learning_rate: float = _field(2e-5, "Adam learning rate (one optimiser for all networks)", _positive)
    max_grad_norm: float = _field(0.0, "global gradient-norm clip; 0 disables it (the reference does not clip)",
                                  _non_negative)
    gamma: float = _field(0.99, "discount", _probability)
    gae_lambda: float = _field(0.95, "GAE lambda (tau)", _probability)
    ppo_clip: float = _field(0.2, "PPO ratio clip (e_clip)", _positive)
    critic_coef: float = _field(5.0, "value loss weight", _non_negative)
    bounds_coef: float = _field(10.0, "action-bounds loss weight", _non_negative)
    disc_coef: float = _field(5.0, "discriminator loss weight", _non_negative)
    enc_coef: float = _field(5.0, "encoder loss weight", _non_negative)
    diversity_coef: float = _field(0.01, "diversity loss weight (amp_diversity_bonus); 0 disables it", _non_negative)
    diversity_target: float = _field(1.0, "target of the diversity bonus (amp_diversity_tar)", _non_negative)
    disc_logit_reg: float = _field(0.01, "penalty on the discriminator's logit-layer weights", _non_negative)
    disc_grad_penalty: float = _field(5.0, "gradient penalty on demo samples", _non_negative)
    disc_weight_decay: float = _field(1e-4, "L2 penalty on discriminator weights", _non_negative)
    disc_reward_scale: float = _field(2.0, "scale of -log(1 - D)", _non_negative)
    enc_reward_scale: float = _field(1.0, "scale of the encoder reward", _non_negative)
    task_reward_w: float = _field(0.0, "weight of the task reward", _non_negative)
    disc_reward_w: float = _field(0.5, "weight of the discriminator reward", _non_negative)
    enc_reward_w: float = _field(0.5, "weight of the skill-discovery (encoder) reward; 0 disables it", _non_negative)
    amp_minibatch_size: int = _field(4096, "agent, replay and demo rows per discriminator/encoder step", _positive)
    replay_buffer_size: int = _field(200_000, "past agent discriminator observations kept", _positive)
    replay_keep_prob: float = _field(0.01, "share of new agent samples stored once the replay buffer is full",
                                     _probability)
    latent_dim: int = _field(64, "skill latent size", _positive)
    latent_steps_min: int = _field(1, "fewest control steps before a latent is resampled", _positive)
    latent_steps_max: int = _field(150, "latents are held for randint(min, max) steps (max exclusive)", _positive)
    eps_greedy: bool = _field(True, "the reference's split of stochastic and deterministic envs")
    action_log_std: float = _field(-2.9, "fixed log standard deviation of the Gaussian policy")
    actor_units: list = _field((1024, 1024, 512), "actor MLP sizes", None)
    style_units: list = _field((512, 256), "actor style-branch MLP sizes", None)
    critic_units: list = _field((1024, 1024, 512), "critic MLP sizes", None)
    disc_units: list = _field((1024, 1024, 512), "discriminator/encoder trunk sizes", None)
    normalize_obs_clip: float = _field(5.0, "clamp of normalised observations", _positive)

    # --- task training (stage 2; facts sheet section 6) ---
    task: str = _field("heading", "task for the high-level controller: heading, location, reach, strike, getup",
                       _one_of("heading", "location", "reach", "strike", "getup"))
    llc: str = _field("", "pre-trained low-level controller: a pretrain run folder or one of its checkpoints")
    llc_steps: int = _field(5, "low-level control steps per high-level action", _positive)
    scratch: bool = _field(False, "train a plain policy on the task without the skill embedding (baseline)")

    # --- run bookkeeping ---
    checkpoint_every: int = _field(100, "iterations between checkpoints", _positive)
    keep_checkpoints: int = _field(3, "most recent checkpoints kept", _positive)
    keep_checkpoint_period: int = _field(0, "also keep every checkpoint whose iteration is a multiple of this "
                                         "(0: none)", _non_negative)
    max_bad_iterations: int = _field(5, "stop after this many consecutive iterations whose updates were all "
                                     "skipped for non-finite gradients", _positive)
    log_every: int = _field(1, "iterations between metric logs", _positive)

    def __post_init__(self):
        # (minibatch_size must also divide each device's share of num_envs x horizon: checked by the
        # training step, which knows the device count; the env benchmark does not need it.)
        if self.amp_minibatch_size > self.minibatch_size:
            raise ConfigError(f"amp_minibatch_size={self.amp_minibatch_size} must be <= minibatch_size="
                              f"{self.minibatch_size}")
        if self.latent_steps_max <= self.latent_steps_min:
            raise ConfigError(f"latent_steps_max={self.latent_steps_max} must be > latent_steps_min="
                              f"{self.latent_steps_min} (randint upper bound is exclusive)")

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        if path.is_absolute() or path.exists():
            return path
        return REPO_ROOT / path


FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _check_value(key: str, value, source: str):
    if key not in FIELDS:
        close = difflib.get_close_matches(key, list(FIELDS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {sorted(FIELDS)}"
        raise ConfigError(f"{source}: unknown config key '{key}'{hint}")
    f = FIELDS[key]
    want = typing.get_type_hints(Config)[key]
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if want is list:
        if not isinstance(value, (list, tuple)) or not value or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise ConfigError(f"{source}: '{key}' must be a non-empty list of positive integers, got {value!r}")
        return tuple(value)
    if want is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # e.g. pd_torque_limit: 1.5 in a YAML file
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: '{key}' must be {want.__name__}, got {value!r} ({type(value).__name__})")
    check = f.metadata.get("check")
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{source}: '{key}' = {value!r} {problem}")
    return value


def _read_file(name_or_path: str, seen=()) -> dict:
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        close = difflib.get_close_matches(str(name_or_path), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"config '{name_or_path}' not found ({path}){hint}; known configs: {known}")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys to values")
    base = doc.pop("base", None)
    values = _read_file(str(base), seen + (path.resolve(),)) if base else {}
    for key, value in doc.items():
        values[key] = _check_value(str(key), value, str(path))
    return values


def parse_overrides(args: list[str]) -> tuple[str, dict]:
    """(config name, overrides) from flags of the form --key=value (values parsed as YAML scalars)."""
    name, overrides = "default", {}
    for arg in args:
        if not arg.startswith("--") or "=" not in arg:
            raise ConfigError(f"expected flags of the form --key=value, got '{arg}'")
        key, raw = arg[2:].split("=", 1)
        key = key.replace("-", "_")
        if key == "config":
            name = raw
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        if FIELDS.get(key) is not None and typing.get_type_hints(Config)[key] is str:
            value = raw  # paths and names stay strings even if they look like numbers
        overrides[key] = value
    return name, overrides


def load_config(name_or_path: str = "default", overrides: dict | None = None) -> Config:
    values = _read_file(name_or_path)
    for key, value in (overrides or {}).items():
        values[key] = _check_value(key, value, "command line")
    return Config(**values)


def config_from_args(args: list[str]) -> Config:
    name, overrides = parse_overrides(args)
    return load_config(name, overrides)


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)
