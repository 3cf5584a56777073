"""The jittable ASE environment: MJX humanoid, observations, initialisation and termination."""

from ase_jax.env.humanoid import EnvState, HumanoidEnv

__all__ = ["EnvState", "HumanoidEnv"]
