"""A training command's argv read once: `--config=NAME` and `--key=value` overrides, into a Config."""

from __future__ import annotations

import yaml

from ase_jax.config.keys import ConfigError, is_bool_key, is_str_key
from ase_jax.config.loading import load_config
from ase_jax.config.schema import Config


def parse_config_flags(args: list[str]) -> tuple[str | None, dict]:
    """(config name or None, overrides) from `--key=value`, `--key value` and, for a bool key, a
    bare `--key` (true) or `--key false`: the one reading of a training command's argv. It asks the
    declarations which keys are bools and strings (a bare flag is a bool key's, a path stays a string)."""
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
            if is_bool_key(key):
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
        if is_str_key(key):
            overrides[key] = raw  # paths and names stay strings
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        overrides[key] = value
    return name, overrides


def config_from_args(args: list[str], command: str = "pretrain", default="default") -> Config:
    """The config a training command's flags ask for: `--config=NAME` (else `default`, a name or a
    function returning one, called only when no --config is given) with the `--key=value`
    overrides (values parsed as YAML scalars; floats as users type them, 1e-4 included; lists as
    [256,256] or 256,256)."""
    name, overrides = parse_config_flags(args)
    if name is None:
        name = default() if callable(default) else default
    return load_config(name, overrides, command)
