"""Get-up: every episode starts fallen; the reward is for standing up (a check of the low-level
policy's recovery skills; the reference trains recovery inside pre-training, docs/reference.md §4.5)."""

from types import MappingProxyType

import jax.numpy as jnp

from ase_jax.tasks.base import Task


class Getup(Task):
    name = "getup"
    obs_layout = ()  # nothing beyond the character's observation
    change_steps = None
    config_overrides = MappingProxyType({"fall_init_prob": 1.0})  # with the default 60-step grace period to get up
    stand_height = 1.35  # head height of the standing character (m), roughly

    def reward(self, state, data, prev_root_pos, dt, character):
        head = data.xpos[1 + character.body_id("head"), 2]
        return jnp.clip(head / self.stand_height, 0.0, 1.0)
