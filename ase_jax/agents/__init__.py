"""Learning agents: the shared PPO machinery (`ppo`), ASE pre-training (`ase`) and task training (`hlc`)."""

# mujoco.mjx prints a warning about its optional Warp back end when first imported, and brax
# imports it; importing it through ase_jax.mjx_import first keeps the output clean.
import ase_jax.mjx_import  # noqa: F401
