"""Keys and values as users write them, in a flag, a config file or `Config.replace`: the section a
key (`name` or `section.name`) belongs to for a command, and a value checked against its declaration
in `sections.py`. Unknown keys (with did-you-mean), wrong types, out-of-range values and keys of a
section the command does not use are refused with one message naming the key."""

from __future__ import annotations

import difflib
import typing

from ase_jax.config.sections import COMMANDS, SECTIONS, section_fields
from ase_jax.errors import AseInputError


class ConfigError(AseInputError):
    pass


def key_index(command: str) -> dict[str, list[str]]:
    """key -> the sections of `command` that declare it."""
    index: dict[str, list[str]] = {}
    for section in COMMANDS[command]:
        for name in section_fields(section):
            index.setdefault(name, []).append(section)
    return index


def resolve_key(key: str, command: str, source: str) -> tuple[str, str]:
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
    index = key_index(command)
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
    hint = f"; did you mean '{close[0]}'?" if close else "; every key is declared in ase_jax/config/sections.py"
    raise ConfigError(f"{source}: unknown config key '{key}'{hint}")


def check_value(section: str, name: str, value, source: str):
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


def is_bool_key(key: str) -> bool:
    name = key.split(".")[-1]
    return any(typing.get_type_hints(cls).get(name) is bool for cls in SECTIONS.values())


def is_str_key(key: str) -> bool:
    name = key.split(".")[-1]
    return any(typing.get_type_hints(cls).get(name) is str for cls in SECTIONS.values())


def format_value(value) -> str:
    """A value as it is typed on the command line (`--key=VALUE`)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    if isinstance(value, str):
        return value if value else '""'
    return str(value)
