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
    recovery_steps: int = _field(60, "control steps in which a get-up episode cannot end", _non_negative)
    num_fall_states: int = _field(512, "fallen poses generated at start-up for fall initialisation", _positive)
    early_termination: bool = _field(True, "end an episode when a non-foot body touches the ground low down")
    solver_iterations: int = _field(4, "MuJoCo constraint solver iterations", _positive)
    solver_ls_iterations: int = _field(8, "MuJoCo solver line-search iterations", _positive)
    mjx_impl: str = _field("jax", "MJX implementation: jax (everywhere) or warp (NVIDIA GPUs)", _one_of("jax", "warp"))

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
