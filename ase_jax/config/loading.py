"""Config files: YAML in `configs/` holding only what differs from the defaults of `sections.py`,
grouped by section; a file may start from another (`base: NAME`) and says which command it is for
(`command: task`; `pretrain` when absent). A file written for another command (a pre-training
config given to `task`) is refused, as is a key of a section its command does not use."""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from ase_jax.config.keys import ConfigError, check_value, resolve_key
from ase_jax.config.schema import Config, from_dict
from ase_jax.config.sections import COMMANDS, SECTIONS
from ase_jax.package_data import data_path

CONFIG_DIR = data_path("configs")


def _blank(command: str) -> dict:
    return {"command": command, **{s: {} for s in COMMANDS[command]}}


def read_file(name_or_path: str, seen=()) -> tuple[str, dict]:
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
        base_command, values = read_file(str(base), seen + (path.resolve(),))
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
                s, _ = resolve_key(str(section), command, str(path))
                hint = f"; keys go under their section, e.g. {s}: {{{section}: ...}}"
            except ConfigError:
                pass
            raise ConfigError(f"{path}: '{section}' is not a config section (sections: {list(COMMANDS[command])})"
                              + hint)
        for key, value in entries.items():
            s, name = resolve_key(f"{section}.{key}", command, str(path))
            values[s][name] = check_value(s, name, value, str(path))
    return command, values


def load_config(name_or_path: str = "default", overrides: dict | None = None, command: str | None = None) -> Config:
    """The config file `name_or_path` (a name in configs/ or a path) with `overrides` ({key: value},
    keys as in flags). `command`, when given, is the command that will run it: a file written for
    another command is refused."""
    file_command, values = read_file(name_or_path)
    if command is not None and file_command != command:
        hint = {"task": "a task config such as 'task' or 'task_tiny'",
                "pretrain": "a pre-training config such as 'default' or 'tiny'"}[command]
        raise ConfigError(f"config '{name_or_path}' is a {file_command} config; python -m ase_jax.{command} needs "
                          f"{hint}")
    for key, value in (overrides or {}).items():
        section, name = resolve_key(key, file_command, "command line")
        values[section][name] = check_value(section, name, value, "command line")
    return from_dict(values)
