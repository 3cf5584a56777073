"""Skill latents for playback: the unit vectors e_k, random draws, files, and paths between them."""

from __future__ import annotations

import re
from pathlib import Path

import jax
import numpy as np

from ase_jax.agents.ase.networks import sample_latents
from ase_jax.errors import AseInputError


def check_latent_spec(spec: str) -> None:
    """Syntax check that needs no checkpoint (so bad flags fail before anything is loaded)."""
    if spec == "random" or re.fullmatch(r"e\d+", spec):
        return
    if spec.endswith(".npy"):
        if not Path(spec).is_file():
            raise AseInputError(f"latent file {spec}: not found")
        return
    raise AseInputError(f"bad latent '{spec}': expected e0, e1, ... (a unit vector), 'random', or a .npy file")


def parse_latent(spec: str, latent_dim: int, key: jax.Array) -> np.ndarray:
    """A unit latent (latent_dim,) from a spec: eK, random (drawn with `key`) or FILE.npy. A plain
    AMP policy (latent_dim 0) takes no latent: "random" (the default) gives the empty one, any other
    spec is an error."""
    check_latent_spec(spec)
    if latent_dim == 0:
        if spec != "random":
            raise AseInputError(f"latent '{spec}': this checkpoint is a plain AMP policy (latent_dim 0), which takes "
                                "no latent; leave out --latent and --interpolate")
        return np.zeros(0)
    if spec == "random":
        z = np.asarray(sample_latents(key, (), latent_dim), np.float64)
    elif re.fullmatch(r"e\d+", spec):
        k = int(spec[1:])
        if k >= latent_dim:
            raise AseInputError(f"latent '{spec}' is out of range: this checkpoint's latent_dim is {latent_dim} "
                                f"(e0 .. e{latent_dim - 1})")
        z = np.eye(latent_dim)[k]
    else:
        try:
            z = np.load(spec, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise AseInputError(f"latent file {spec}: not a readable .npy array ({e})") from None
        if z.shape != (latent_dim,):
            raise AseInputError(f"latent file {spec}: shape {z.shape}, expected ({latent_dim},) "
                                f"(this checkpoint's latent_dim)")
        z = np.asarray(z, np.float64)
        if not np.all(np.isfinite(z)) or np.linalg.norm(z) == 0:
            raise AseInputError(f"latent file {spec}: must be finite and non-zero")
    return z / np.linalg.norm(z)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between unit vectors a and b at fractions t (T,): (T, D)."""
    t = np.asarray(t, np.float64)[:, None]
    omega = np.arccos(np.clip(a @ b, -1.0, 1.0))
    if omega < 1e-6:
        out = (1 - t) * a + t * b
    else:
        out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)
