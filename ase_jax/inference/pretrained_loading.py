"""A pre-trained ASE model loaded for inference: the low-level policy, its normaliser, the
discriminator and encoder, and an environment built from the run's own config.

Inference only: nothing here imports the training step or a command-line module.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ase_jax.agents import ppo
from ase_jax.agents.ase import networks as ase_networks
from ase_jax.agents.ase.pretrained import Pretrained
from ase_jax.character import load_character
from ase_jax.checkpoint import read_checkpoint
from ase_jax.checkpoint.layout import select_subtree
from ase_jax.config.schema import Config, from_dict
from ase_jax.env import observations as obs_lib
from ase_jax.env_factory import make_env, purpose_config
from ase_jax.errors import AseInputError


def saved_pretrain_config(saved: dict, where, purpose: str | None = None) -> Config:
    """The Config of a saved pre-training run, with the env settings of `purpose` (env_factory)."""
    try:
        config = from_dict(saved)
        if config.command != "pretrain":
            raise AseInputError(f"a {config.command} run, not a pre-training run (python -m ase_jax.pretrain)")
        return config if purpose is None else purpose_config(config, purpose)
    except AseInputError as e:
        raise AseInputError(f"{where}: the saved config is not valid for this version of ase_jax: {e}") from None


def pretrained_from_arrays(config: Config, arrays: dict, layout: dict, step: int, prefix: str = "",
                           env=None) -> Pretrained:
    """The Pretrained model stored under `prefix` of a saved state: "" for a pre-training run
    (`.params`, `.obs_norm`, `.amp_norm`), ".llc" for the frozen LLC inside a task run."""
    character = env.character if env is not None else load_character(config.env.character)
    nets = ase_networks.networks_for(config, obs_lib.policy_obs_size(character),
                                     config.env.demo_history * obs_lib.amp_obs_size(character), character.num_actions)
    path = (lambda name: f".{name}") if not prefix else (lambda name: f"{prefix}['{name}']")
    template = ase_networks.init_params(nets, jax.random.PRNGKey(0))
    params = select_subtree(arrays, layout, path("params"), template)
    obs_norm = select_subtree(arrays, layout, path("obs_norm"), ppo.init_normalizer((nets.obs_size,)))
    amp_norm = select_subtree(arrays, layout, path("amp_norm"), ppo.init_normalizer((nets.amp_obs_size,)))
    as_jax = lambda tree: jax.tree.map(jnp.asarray, tree)
    return Pretrained(config, env, nets, as_jax(params), as_jax(obs_norm), as_jax(amp_norm), step)


def load_pretrained(path, purpose: str | None = "inspect") -> Pretrained:
    """Loads a pre-training run folder (latest checkpoint) or one checkpoint folder, with its env
    built for `purpose` (env_factory's: inspect, play, perturb, ...). With `purpose=None` the model
    has no env (a frozen LLC drives the task's env, not its own)."""
    workdir, step, arrays, layout, saved = read_checkpoint(path)
    config = saved_pretrain_config(saved, workdir, purpose)
    env = None if purpose is None else make_env(config, purpose)
    return pretrained_from_arrays(config, arrays, layout, step, env=env)
