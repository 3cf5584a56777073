"""Reach: bring the sword tip to a target point (docs/reference.md §7.3)."""

import jax
import jax.numpy as jnp

from ase_jax.tasks.base import Task, heading_local, root_pos


class Reach(Task):
    name = "reach"
    # the task part of the observation, appended to the character's (docs/export.md): name, size, meaning
    obs_layout = (("target_offset", 3, "target - (root x, root y, 0), heading frame (m)"),)
    change_steps = (50, 100)
    body = "sword"  # the sword body's origin is the blade tip

    def sample_targets(self, key, data, character):
        """Around the character: xy in root + U(-1, 1)^2, height U(0.2, 2.0).

        The reference samples in env coordinates and observes H p_target without subtracting the root,
        which works only while the character stays at the origin; we sample and observe relative to it.
        """
        k_xy, k_z = jax.random.split(key)
        xy = root_pos(data)[:2] + jax.random.uniform(k_xy, (2,), minval=-1.0, maxval=1.0)
        return {"target": jnp.concatenate([xy, jax.random.uniform(k_z, (1,), minval=0.2, maxval=2.0)])}

    def observe(self, state, data, character):
        offset = state["target"] - jnp.concatenate([root_pos(data)[:2], jnp.zeros(1)])
        return heading_local(data, offset)

    def marker(self, state, data):
        return state["target"]

    def reward(self, state, data, prev_root_pos, dt, character):
        tip = data.xpos[1 + character.body_id(self.body)]
        return reach_reward(state["target"], tip)


def reach_reward(target, tip):
    """exp(-4 |p_target - p_tip|^2)."""
    return jnp.exp(-4.0 * jnp.sum((target - tip) ** 2))
