"""`--help` of a training command, generated from the section dataclasses."""

from __future__ import annotations

import textwrap
import typing

from ase_jax.config.keys import ConfigError, format_value, key_index
from ase_jax.config.loading import CONFIG_DIR, read_file
from ase_jax.config.sections import COMMANDS, SECTIONS, section_fields


def _type_name(tp) -> str:
    return "int,int,..." if tp is tuple else getattr(tp, "__name__", str(tp))


def config_help(command: str, default_config: str | None = None, width: int = 100) -> str:
    """The options of a training command, generated from the dataclasses: every key of the sections
    `command` uses, by section, as `--key=TYPE (default: VALUE)` and its help line (`--section.key`
    where a name is in two of them). Where `default_config` (the file used without --config) sets
    a key to another value, that value is shown too."""
    index = key_index(command)
    file_values: dict = {}
    if default_config is not None:
        try:
            _, file_values = read_file(default_config)
        except ConfigError:
            file_values = {}
    configs = []
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        try:
            if read_file(str(path))[0] == command:
                configs.append(path.stem)
        except ConfigError:
            pass
    intro = ("Flags are --key=VALUE or --key VALUE (a bare --key sets a bool key to true). Floats as typed "
             "(1e-4, 3E-5); lists as 256,256 or [256,256]. A bad value or unknown key is one error line and "
             "exit status 1. Every key is declared in ase_jax/config/sections.py.")
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
