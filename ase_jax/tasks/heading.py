"""Heading: move in a target direction at a target speed while facing a target direction (docs/reference.md §7.1)."""

import jax
import jax.numpy as jnp

from ase_jax.tasks.base import Task, facing_xy, heading_local, lift, root_pos, root_velocity_xy, unit_xy


class Heading(Task):
    name = "heading"
    # the task part of the observation, appended to the character's (docs/export.md): name, size, meaning
    obs_layout = (("target_direction_xy", 2, "unit target direction of travel, heading frame"),
                  ("target_speed", 1, "m/s"),
                  ("target_facing_xy", 2, "unit target facing direction, heading frame"))
    change_steps = (100, 200)
    speed_range = (1.5, 1.6)

    def sample_targets(self, key, data, character):
        k_dir, k_speed, k_face = jax.random.split(key, 3)
        return {"direction": unit_xy(jax.random.uniform(k_dir, (), minval=-jnp.pi, maxval=jnp.pi)),
                "speed": jax.random.uniform(k_speed, (), minval=self.speed_range[0], maxval=self.speed_range[1]),
                "facing": unit_xy(jax.random.uniform(k_face, (), minval=-jnp.pi, maxval=jnp.pi))}

    def observe(self, state, data, character):
        d = heading_local(data, lift(state["direction"]))[:2]
        f = heading_local(data, lift(state["facing"]))[:2]
        return jnp.concatenate([d, state["speed"][None], f])

    def marker(self, state, data):
        """A point 1.5 m ahead of the root along the target direction, at knee height."""
        return jnp.concatenate([root_pos(data)[:2] + 1.5 * state["direction"], jnp.full((1,), 0.5)])

    def reward(self, state, data, prev_root_pos, dt, character):
        """0.7 exp(-0.25 ((v* - s)^2 + 0.1 |v_tan|^2)) [s > 0] + 0.3 max(f* . facing, 0).

        The reference squares the *sum of the components* of the tangential velocity (a quirk);
        we use its norm, as the formula intends.
        """
        return heading_reward(state["direction"], state["speed"], state["facing"],
                              root_velocity_xy(data, prev_root_pos, dt), facing_xy(data))


def heading_reward(direction, speed, facing_target, velocity_xy, facing):
    s = jnp.dot(direction, velocity_xy)
    tangential = velocity_xy - s * direction
    r_dir = jnp.exp(-0.25 * ((speed - s) ** 2 + 0.1 * jnp.sum(tangential**2)))
    r_dir = jnp.where(s > 0, r_dir, 0.0)
    r_face = jnp.maximum(jnp.dot(facing_target, facing), 0.0)
    return 0.7 * r_dir + 0.3 * r_face
