"""`Config`: one command's sections, checked as a whole, and its dict form ({command, section:
{key: value}}), which config files, checkpoints and `Config.replace` go through."""

from __future__ import annotations

import dataclasses

from ase_jax.config.keys import ConfigError, check_value, format_value, resolve_key
from ase_jax.config.sections import (ASEConfig, COMMANDS, EnvConfig, PPOConfig, RunConfig, SECTIONS, TaskConfig,
                                     section_fields)


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
            section, name = resolve_key(key, self.command, "replace()")
            values[section][name] = value
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
            checked[key] = check_value(section, key, value, "config")
        sections[section] = SECTIONS[section](**checked)
    sections.setdefault("ase", None)
    sections.setdefault("task", None)
    return Config(command=command, **sections)


def to_dict(config: Config) -> dict:
    """{command, section: {key: value}} of the sections the config has (JSON- and YAML-friendly)."""
    out = {"command": config.command}
    for section in COMMANDS[config.command]:
        out[section] = {k: (list(v) if isinstance(v, tuple) else v)
                        for k, v in dataclasses.asdict(getattr(config, section)).items()}
    return out
