"""What differs between a saved run and the one that would resume it: config values first (the
likely cause), then the leaves of the state, each list capped."""

from __future__ import annotations

from pathlib import Path

from ase_jax.errors import AseInputError

MAX_LISTED = 6  # config values and leaves named in a mismatch message; the rest are counted


class CheckpointMismatch(AseInputError):
    """A readable checkpoint whose saved state does not fit the state this run builds."""


def _flat_config(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return out


def config_differences(saved: dict, now: dict) -> list[str]:
    """Readable lines for the config values (nested sections as dotted keys) that differ; the run
    section (where to write, how long to run) may change on resume and is left out."""
    ignore = lambda flat: {k: v for k, v in flat.items() if not k.startswith("run.")}
    saved, now = ignore(_flat_config(saved)), ignore(_flat_config(now))
    missing = object()
    out = []
    for key in list(now) + [k for k in saved if k not in now]:
        a, b = saved.get(key, missing), now.get(key, missing)
        if a != b:
            a = "(not set)" if a is missing else repr(list(a) if isinstance(a, tuple) else a)
            b = "(not set)" if b is missing else repr(list(b) if isinstance(b, tuple) else b)
            out.append(f"{key}: saved {a}, now {b}")
    return out


def _capped(lines: list[str], limit: int) -> str:
    shown = "; ".join(lines[:limit])
    return shown + (f"; and {len(lines) - limit} more" if len(lines) > limit else "")


def mismatch_message(where: Path, differences: list[str], saved_config: dict | None, config: dict | None) -> str:
    """What differs between a saved run and this one (config values first: the likely cause), and
    what to do about it."""
    message = f"{where} holds a run that this config cannot resume: "
    changed = config_differences(saved_config, config) if saved_config is not None and config is not None else []
    if changed:
        message += f"the saved config differs in {_capped(changed, MAX_LISTED)}; "
    leaves = "1 leaf of the saved state differs" if len(differences) == 1 else \
        f"{len(differences)} leaves of the saved state differ"
    message += (f"{leaves} from the state this config builds: "
                f"{_capped(differences, MAX_LISTED)}.")
    return message + (f" Use another --workdir for a new run, or rerun with the saved run's config to resume it; "
                      f"the checkpoints in {where.parent} are left as they are.")
