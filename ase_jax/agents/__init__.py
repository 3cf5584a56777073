"""Learning agents (ASE pre-training; task training reuses its pieces)."""

# mujoco.mjx prints a warning about its optional Warp back end when first imported, and brax
# imports it; importing it through ase_jax.mjx_import first keeps the output clean.
import ase_jax.mjx_import  # noqa: F401
