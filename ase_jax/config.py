"""Run configurations in sections, with one source of defaults: the dataclasses below.

A config has the sections a command uses: `python -m ase_jax.pretrain` uses env, ppo, ase and
run; `python -m ase_jax.task` uses env, ppo, task and run. Every key is declared once here, with
its type, default, allowed range and one line of help. YAML files in `configs/` hold only what
differs from these defaults, grouped by section, may start from another file (`base: NAME`) and
say which command they are for (`command: task`; `pretrain` when absent). Command-line flags are
`--key=value` (or `--section.key=value` where a name exists in two sections).

Unknown keys (with did-you-mean), wrong types, out-of-range values and keys of a section the
command does not use are refused with one message naming the key; so is a config file written for
another command (a pre-training config given to `task`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from pathlib import Path

import yaml

from ase_jax.errors import AseInputError
from ase_jax.package_data import data_path

CONFIG_DIR = data_path("configs")


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


# The skill-discovery keys that plain AMP (latent_dim 0) has no use for, and the value each must have
# there: a run that sets one of them is asking for something AMP cannot do, so it is refused.
PLAIN_AMP_OFF = {"enc_reward_w": 0.0, "enc_coef": 0.0, "diversity_coef": 0.0, "separate_encoder": False,
                 "enc_learning_rate": 0.0}


def _check_plain_amp(ase: "ASEConfig") -> None:
    """latent_dim 0 is plain AMP: no latent, no encoder, no diversity term, so their keys must be off."""
    wrong = [f"{k}={getattr(ase, k)!r}" for k, off in PLAIN_AMP_OFF.items() if getattr(ase, k) != off]
    if wrong:
        fix = " ".join(f"--{k}={format_value(v)}" for k, v in PLAIN_AMP_OFF.items())
        raise ConfigError(f"latent_dim=0 is plain AMP (no latent, no encoder, no diversity term), but {', '.join(wrong)} "
                          f"{'asks' if len(wrong) == 1 else 'ask'} for skill discovery; use --config=amp, or set {fix}")


SECTIONS: dict[str, type] = {"env": EnvConfig, "ppo": PPOConfig, "ase": ASEConfig, "task": TaskConfig,
                             "run": RunConfig}
COMMANDS: dict[str, tuple[str, ...]] = {"pretrain": ("env", "ppo", "ase", "run"),
                                        "task": ("env", "ppo", "task", "run")}


@dataclasses.dataclass(frozen=True)
class Config:
    """One command's configuration: its sections (those it does not use are None)."""

    command: str = "pretrain"
    env: EnvConfig = EnvConfig()
    ppo: PPOConfig = PPOConfig()
    run: RunConfig = RunConfig()
    ase: ASEConfig | None = ASEConfig()
    task: TaskConfig | None = None

    def __post_init__(self):
        # (minibatch_size must also divide each device's share of num_envs x horizon: checked by the
        # training step, which knows the device count.)
        if self.ase is not None:
            if self.ase.amp_minibatch_size > self.ppo.minibatch_size:
                raise ConfigError(f"amp_minibatch_size={self.ase.amp_minibatch_size} must be <= minibatch_size="
                                  f"{self.ppo.minibatch_size}")
            if self.ase.latent_dim == 0:
                _check_plain_amp(self.ase)
            if self.ase.latent_steps_max <= self.ase.latent_steps_min:
                raise ConfigError(f"latent_steps_max={self.ase.latent_steps_max} must be > latent_steps_min="
                                  f"{self.ase.latent_steps_min} (randint upper bound is exclusive)")

    def replace(self, **changes) -> "Config":
        """A copy with keys changed by name (`num_envs=8`, `state_init="default"`), as flags do."""
        values = to_dict(self)
        for key, value in changes.items():
            section, name = _resolve_key(key, self.command, "replace()")
            values[section][name] = value
        return from_dict(values)


def resolve_path(value: str) -> Path:
    """A path as given if it is absolute or exists from the current directory, else one of the
    project's data files (`motions/bundled/dataset.yaml`, from any folder and in an installed
    package) where that exists, else as given (an error then names the path the user typed)."""
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists():
        return path
    packaged = data_path(path)
    return packaged if packaged.exists() else path


def section_fields(section: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(SECTIONS[section])}


def _key_index(command: str) -> dict[str, list[str]]:
    """key -> the sections of `command` that declare it."""
    index: dict[str, list[str]] = {}
    for section in COMMANDS[command]:
        for name in section_fields(section):
            index.setdefault(name, []).append(section)
    return index


def _resolve_key(key: str, command: str, source: str) -> tuple[str, str]:
    """(section, name) of a flag or override `key` (`name` or `section.name`) for `command`."""
    key = key.replace("-", "_")
    used = COMMANDS[command]
    if "." in key:
        section, name = key.split(".", 1)
        if section not in SECTIONS:
            close = difflib.get_close_matches(section, list(SECTIONS), n=1)
            raise ConfigError(f"{source}: unknown config section '{section}'"
                              + (f"; did you mean '{close[0]}'?" if close else f"; sections: {list(SECTIONS)}"))
        if section not in used:
            raise ConfigError(f"{source}: '{key}': python -m ase_jax.{command} does not use the {section} section")
        if name not in section_fields(section):
            close = difflib.get_close_matches(name, list(section_fields(section)), n=1)
            raise ConfigError(f"{source}: unknown config key '{key}'" + (f"; did you mean '{section}.{close[0]}'?"
                                                                         if close else ""))
        return section, name
    index = _key_index(command)
    if key in index:
        if len(index[key]) > 1:
            raise ConfigError(f"{source}: '{key}' is in sections {index[key]}; write --{index[key][0]}.{key}=... "
                              f"or --{index[key][1]}.{key}=...")
        return index[key][0], key
    elsewhere = [s for s in SECTIONS if s not in used and key in section_fields(s)]
    if elsewhere:
        raise ConfigError(f"{source}: '{key}' is a key of the {elsewhere[0]} section, which python -m "
                          f"ase_jax.{command} does not use")
    close = difflib.get_close_matches(key, list(index), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else "; every key is declared in ase_jax/config.py"
    raise ConfigError(f"{source}: unknown config key '{key}'{hint}")


def _check_value(section: str, name: str, value, source: str):
    f = section_fields(section)[name]
    want = typing.get_type_hints(SECTIONS[section])[name]
    if want is float and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-4 as a string; users type it
            value = float(value)
        except ValueError:
            pass
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if want is tuple:
        if isinstance(value, str):  # --actor_units=256,256
            try:
                value = [int(v) for v in value.strip("[]()").split(",") if v.strip()]
            except ValueError:
                pass
        if not isinstance(value, (list, tuple)) or not value or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise ConfigError(f"{source}: '{name}' must be a non-empty list of positive integers, got {value!r}")
        return tuple(value)
    if want is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # e.g. pd_torque_limit: 1.5 in a YAML file
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: '{name}' must be {want.__name__}, got {value!r} ({type(value).__name__})")
    check = f.metadata.get("check")
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{source}: '{name}' = {value!r} {problem}")
    return value


def _blank(command: str) -> dict:
    return {"command": command, **{s: {} for s in COMMANDS[command]}}


def _read_file(name_or_path: str, seen=()) -> tuple[str, dict]:
    """(command, {section: {key: value}}) of a config file and its `base` chain."""
    path = Path(name_or_path).expanduser()
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
        raise ConfigError(f"{path}: expected a mapping of sections ({', '.join(SECTIONS)}) to keys and values")
    base = doc.pop("base", None)
    command = doc.pop("command", None)
    if base:
        base_command, values = _read_file(str(base), seen + (path.resolve(),))
        if command is not None and command != base_command:
            raise ConfigError(f"{path}: command '{command}' differs from its base's ('{base_command}')")
        command = base_command
    else:
        command = command or "pretrain"
        if command not in COMMANDS:
            raise ConfigError(f"{path}: command must be one of {list(COMMANDS)}, got {command!r}")
        values = _blank(command)
    for section, entries in doc.items():
        if section in SECTIONS and section not in COMMANDS[command]:
            raise ConfigError(f"{path}: a {command} config cannot set the {section} section (python -m "
                              f"ase_jax.{command} does not use it)")
        if not isinstance(entries, dict):
            hint = ""
            try:
                s, _ = _resolve_key(str(section), command, str(path))
                hint = f"; keys go under their section, e.g. {s}: {{{section}: ...}}"
            except ConfigError:
                pass
            raise ConfigError(f"{path}: '{section}' is not a config section (sections: {list(COMMANDS[command])})"
                              + hint)
        for key, value in entries.items():
            s, name = _resolve_key(f"{section}.{key}", command, str(path))
            values[s][name] = _check_value(s, name, value, str(path))
    return command, values


def parse_config_flags(args: list[str]) -> tuple[str | None, dict]:
    """(config name or None, overrides) from `--key=value`, `--key value` and, for a bool key, a
    bare `--key` (true) or `--key false`: the one reading of a training command's argv. It lives
    beside the schema because it needs it (a bare flag is a bool key's, a path stays a string)."""
    name, overrides = None, {}
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"expected flags of the form --key=value, got '{arg}' (see --help)")
        key, eq, raw = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if _is_bool_key(key):
                raw = "true"
                if i < len(args) and args[i].lower() in ("true", "false", "yes", "no", "on", "off"):
                    raw = args[i]
                    i += 1
            elif i < len(args) and not args[i].startswith("--"):
                raw = args[i]
                i += 1
            else:
                raise ConfigError(f"--{key} needs a value: --{key}=VALUE (see --help)")
        if key == "config":
            name = raw
            continue
        if _is_str_key(key):
            overrides[key] = raw  # paths and names stay strings
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        overrides[key] = value
    return name, overrides


def _is_bool_key(key: str) -> bool:
    name = key.split(".")[-1]
    return any(typing.get_type_hints(cls).get(name) is bool for cls in SECTIONS.values())


def _is_str_key(key: str) -> bool:
    name = key.split(".")[-1]
    return any(typing.get_type_hints(cls).get(name) is str for cls in SECTIONS.values())


def load_config(name_or_path: str = "default", overrides: dict | None = None, command: str | None = None) -> Config:
    """The config file `name_or_path` (a name in configs/ or a path) with `overrides` ({key: value},
    keys as in flags). `command`, when given, is the command that will run it: a file written for
    another command is refused."""
    file_command, values = _read_file(name_or_path)
    if command is not None and file_command != command:
        hint = {"task": "a task config such as 'task' or 'task_tiny'",
                "pretrain": "a pre-training config such as 'default' or 'tiny'"}[command]
        raise ConfigError(f"config '{name_or_path}' is a {file_command} config; python -m ase_jax.{command} needs "
                          f"{hint}")
    for key, value in (overrides or {}).items():
        section, name = _resolve_key(key, file_command, "command line")
        values[section][name] = _check_value(section, name, value, "command line")
    return from_dict(values)


def from_dict(values: dict) -> Config:
    """A Config from {command, section: {key: value}} (as `to_dict` writes and checkpoints hold)."""
    command = values.get("command", "pretrain")
    if command not in COMMANDS:
        raise ConfigError(f"config: command must be one of {list(COMMANDS)}, got {command!r}")
    extra = [k for k in values if k != "command" and k not in COMMANDS[command]]
    if extra:
        raise ConfigError(f"config: a {command} config has no section(s) {extra}")
    sections = {}
    for section in COMMANDS[command]:
        checked = {}
        for key, value in (values.get(section) or {}).items():
            if key not in section_fields(section):
                raise ConfigError(f"config: unknown key '{section}.{key}'")
            checked[key] = _check_value(section, key, value, "config")
        sections[section] = SECTIONS[section](**checked)
    sections.setdefault("ase", None)
    sections.setdefault("task", None)
    return Config(command=command, **sections)


def config_from_args(args: list[str], command: str = "pretrain", default="default") -> Config:
    """The config a training command's flags ask for: `--config=NAME` (else `default`, a name or a
    function returning one, called only when no --config is given) with the `--key=value`
    overrides (values parsed as YAML scalars; floats as users type them, 1e-4 included; lists as
    [256,256] or 256,256)."""
    name, overrides = parse_config_flags(args)
    if name is None:
        name = default() if callable(default) else default
    return load_config(name, overrides, command)


def format_value(value) -> str:
    """A value as it is typed on the command line (`--key=VALUE`)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    if isinstance(value, str):
        return value if value else '""'
    return str(value)


def _type_name(tp) -> str:
    return "int,int,..." if tp is tuple else getattr(tp, "__name__", str(tp))


def config_help(command: str, default_config: str | None = None, width: int = 100) -> str:
    """The options of a training command, generated from the dataclasses: every key of the sections
    `command` uses, by section, as `--key=TYPE (default: VALUE)` and its help line (`--section.key`
    where a name is in two of them). Where `default_config` (the file used without --config) sets
    a key to another value, that value is shown too."""
    import textwrap

    index = _key_index(command)
    file_values: dict = {}
    if default_config is not None:
        try:
            _, file_values = _read_file(default_config)
        except ConfigError:
            file_values = {}
    configs = []
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        try:
            if _read_file(str(path))[0] == command:
                configs.append(path.stem)
        except ConfigError:
            pass
    intro = ("Flags are --key=VALUE or --key VALUE (a bare --key sets a bool key to true). Floats as typed "
             "(1e-4, 3E-5); lists as 256,256 or [256,256]. A bad value or unknown key is one error line and "
             "exit status 1. Every key is declared in ase_jax/config.py.")
    lines = [f"usage: python -m ase_jax.{command} [--config=NAME] [--key=VALUE ...]", "",
             *textwrap.wrap(intro, width), "",
             "  -h, --help            this help",
             *textwrap.wrap(f"a config in configs/ ({', '.join(configs)}) or a YAML path"
                            + (f"; default: {default_config}" if default_config else ""), width,
                            initial_indent="  --config=NAME         ", subsequent_indent=" " * 24)]
    if default_config and default_config != "default":
        lines.append(f"                        values that configs/{default_config}.yaml sets are shown after '->'")
    for section in COMMANDS[command]:
        cls = SECTIONS[section]
        hints = typing.get_type_hints(cls)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        lines += ["", f"{section}: {doc}"]
        for name, f in section_fields(section).items():
            flag = f"--{section}.{name}" if len(index.get(name, [])) > 1 else f"--{name}"
            head = f"  {flag}={_type_name(hints[name])}  (default: {format_value(f.default)}"
            override = (file_values.get(section) or {}).get(name, f.default)
            if override != f.default:
                head += f" -> {format_value(override)}"
            lines.append(head + ")")
            lines += textwrap.wrap(f.metadata.get("help", ""), width, initial_indent=" " * 6,
                                   subsequent_indent=" " * 6)
    return "\n".join(lines) + "\n"


def to_dict(config: Config) -> dict:
    """{command, section: {key: value}} of the sections the config has (JSON- and YAML-friendly)."""
    out = {"command": config.command}
    for section in COMMANDS[config.command]:
        out[section] = {k: (list(v) if isinstance(v, tuple) else v)
                        for k, v in dataclasses.asdict(getattr(config, section)).items()}
    return out
