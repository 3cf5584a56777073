"""Location: walk to a target position (docs/reference.md §7.2)."""

import jax
import jax.numpy as jnp

from ase_jax.tasks.base import Task, facing_xy, heading_local, lift, root_pos, root_velocity_xy


class Location(Task):
    name = "location"
    # the task part of the observation, appended to the character's (docs/export.md): name, size, meaning
    obs_layout = (("target_offset_xy", 2, "target position - root position, heading frame (m)"),)
    change_steps = (100, 200)
    max_distance = 10.0
    target_speed = 1.0

    def sample_targets(self, key, data, character):
        offset = jax.random.uniform(key, (2,), minval=-self.max_distance, maxval=self.max_distance)
        return {"target": root_pos(data)[:2] + offset}

    def observe(self, state, data, character):
        return heading_local(data, lift(state["target"] - root_pos(data)[:2]))[:2]

    def marker(self, state, data):
        return lift(state["target"])

    def reward(self, state, data, prev_root_pos, dt, character):
        return location_reward(state["target"], root_pos(data)[:2], root_velocity_xy(data, prev_root_pos, dt),
                               facing_xy(data), self.target_speed)


def location_reward(target, position, velocity_xy, facing, target_speed=1.0):
    """0.5 exp(-0.5 e) + 0.4 r_vel + 0.1 r_face with e the squared distance; r_vel = r_face = 1
    within sqrt(0.5) m of the target."""
    delta = target - position
    e = jnp.sum(delta**2)
    r_pos = jnp.exp(-0.5 * e)
    d = delta / jnp.maximum(jnp.linalg.norm(delta), 1e-6)
    s = jnp.dot(d, velocity_xy)
    r_vel = jnp.where(s > 0, jnp.exp(-4.0 * jnp.maximum(target_speed - s, 0.0) ** 2), 0.0)
    r_face = jnp.maximum(jnp.dot(d, facing), 0.0)
    near = e < 0.5
    r_vel = jnp.where(near, 1.0, r_vel)
    r_face = jnp.where(near, 1.0, r_face)
    return 0.5 * r_pos + 0.4 * r_vel + 0.1 * r_face
