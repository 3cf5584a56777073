"""Run configurations in sections, with one source of defaults: the section dataclasses.

- `sections.py`: every key declared once, with its type, default, allowed values and help line;
  which sections each command uses.
- `keys.py`: a key as users name it resolved to its section, a value checked against its
  declaration (`ConfigError`, one message naming the key).
- `schema.py`: `Config`, one command's sections, and its dict form (`to_dict`, `from_dict`).
- `loading.py`: the YAML files of `configs/` (`load_config`).
- `flags.py`: a training command's `--config=NAME --key=value ...` (`config_from_args`).
- `help.py`: its `--help`, generated from the dataclasses.

The package hands on the two names nearly every user of a config needs; everything else is
imported from the module that holds it.
"""

from ase_jax.config.loading import load_config
from ase_jax.config.schema import Config

__all__ = ["Config", "load_config"]
