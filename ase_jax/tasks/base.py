"""What a task is: targets to sample, observations to append, a reward, optional props and
termination. Tasks are small and independent; the registry in `ase_jax.tasks` names them.

A task's state is a dict of arrays for one environment (the env vmaps it). Every method is pure
and jittable; `terminated` also runs on numpy arrays (the C MuJoCo player,
ase_jax.inference.mujoco_player). Defaults: no props, no extra termination, no config overrides,
targets resampled every randint(*change_steps) control steps (docs/reference.md §7).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import jax
import jax.numpy as jnp

from ase_jax import quat


class Task:
    name: str = ""
    # The observation `observe` appends to the character's, in order: (name, size, meaning); policy.json
    # (ase_jax.inference.policy_file) publishes it and tests/test_tasks.py checks it against `observe`.
    obs_layout: tuple[tuple[str, int, str], ...] = ()
    change_steps: tuple[int, int] | None = (100, 200)  # targets change after randint(lo, hi) steps
    # Config keys the task sets for its env, as flags name them (getup: every episode starts fallen);
    # `env_factory.purpose_config` applies them for training and playback alike.
    config_overrides: Mapping[str, object] = MappingProxyType({})

    @property
    def obs_size(self) -> int:
        return sum(size for _, size, _ in self.obs_layout)

    # --- to override -----------------------------------------------------------------------------
    def sample_targets(self, key, data, character) -> dict:
        return {}

    def observe(self, state: dict, data, character) -> jax.Array:
        return jnp.zeros((0,))

    def reward(self, state: dict, data, prev_root_pos, dt: float, character) -> jax.Array:
        return jnp.zeros(())

    def terminated(self, state: dict, data, contacts, scene) -> jax.Array:
        """Whether the task ends the episode (besides falls), from the task state, the scene's data,
        its contact list and the scene's plain facts (`ase_jax.env.termination.Contacts`, `Scene`).
        Runs inside the MJX env's step (jax arrays) and in the C MuJoCo player (numpy arrays): write
        it with `ase_jax.quat._xp(...)` for the array module, as `Strike.terminated` does."""
        return jnp.asarray(False)

    def add_props(self, spec) -> None:
        """Adds bodies to the scene's MjSpec (after the character's); none by default."""

    def place_props(self, key, state: dict, data, character):
        return data

    def marker(self, state: dict, data) -> jax.Array:
        """World position (3,) where videos draw the target, or NaN for none (props are drawn anyway)."""
        return jnp.full((3,), jnp.nan)

    # --- shared mechanics ------------------------------------------------------------------------
    def _countdown(self, key):
        lo, hi = self.change_steps
        return jax.random.randint(key, (), lo, hi)

    def reset(self, key, data, character):
        k_targets, k_steps, k_props = jax.random.split(key, 3)
        state = self.sample_targets(k_targets, data, character)
        if self.change_steps is not None:
            state = dict(state, steps_left=self._countdown(k_steps))
        return state, self.place_props(k_props, state, data, character)

    def update(self, key, state: dict, data, character):
        """Counts down and resamples the targets when due (props are placed only at reset)."""
        if self.change_steps is None:
            return state, data
        k_targets, k_steps = jax.random.split(key)
        due = state["steps_left"] <= 1
        fresh = dict(self.sample_targets(k_targets, data, character), steps_left=self._countdown(k_steps))
        kept = dict(state, steps_left=state["steps_left"] - 1)
        return jax.tree.map(lambda a, b: jnp.where(due, a, b), fresh, kept), data


# --- helpers over MJX data (the character's root is the first free joint) -------------------------

def root_pos(data) -> jax.Array:
    return data.qpos[0:3]


def root_rot(data) -> jax.Array:
    return data.qpos[3:7]


def heading_local(data, v3) -> jax.Array:
    """World vectors rotated into the character's heading frame."""
    h = quat.heading_inv(root_rot(data))
    return quat.rotate(jnp.broadcast_to(h, v3.shape[:-1] + (4,)), v3)


def facing_xy(data) -> jax.Array:
    """Unit xy direction the character faces (its heading applied to +x)."""
    yaw = quat.heading(root_rot(data))
    return jnp.stack([jnp.cos(yaw), jnp.sin(yaw)])


def root_velocity_xy(data, prev_root_pos, dt: float) -> jax.Array:
    """(p - p_prev) / dt over one control step, as the reference estimates it (docs/reference.md §7)."""
    return (root_pos(data)[:2] - prev_root_pos[:2]) / dt


def unit_xy(angle) -> jax.Array:
    return jnp.stack([jnp.cos(angle), jnp.sin(angle)])


def lift(xy) -> jax.Array:
    return jnp.concatenate([xy, jnp.zeros(xy.shape[:-1] + (1,))], axis=-1)
