"""What the training steps need from an environment.

`ase_jax.agents.ase.train` and `ase_jax.agents.hlc.train` work with any object of this shape: the
MJX humanoid (`ase_jax.env.HumanoidEnv`) and the pure-JAX toy (`ase_jax.env.toy.ToyEnv`, which the
learning tests train in seconds). Functions act on one environment; the training steps vmap them.

The state that `reset` and `step` return is any pytree with at least these fields:

    obs           (obs_size,) observation for the next action, after any reset
    next_obs      (obs_size,) observation right after the last step, before any reset
    next_amp_obs  (history, amp_obs_size) discriminator history right after the last step
    done          1.0 when the last step ended the episode (terminated or timed out), else 0.0
    terminated    1.0 when it ended by failure: the value is not bootstrapped
    reward        the task reward of the last step (0.0 without a task)
    metrics       {"episode_length": steps of an episode that ended at this step, else 0.0,
                   "nonfinite": 1.0 when the step produced non-finite numbers and was reset,
                   optionally "contact_overflow": 1.0 when the simulator dropped contacts (MJX's Warp back end)}

An ended episode resets inside `step` (the next state's `obs` starts the new episode), so that a
rollout is one `lax.scan` with no host logic.

Batch `reset` and `step` over envs with `vmap_envs` (a `jax.vmap` whose axis is named `ENV_AXIS`):
MJX's Warp back end keeps one contact list for all the envs of a batch, and an env finds its own
contacts in it by its index along that axis (`HumanoidEnv.world_index`).
"""

from __future__ import annotations

from typing import Any, Protocol

import jax

ENV_AXIS = "envs"


def vmap_envs(fn):
    """`fn` of one env (reset or step) over a batch of envs: `jax.vmap` over the leading axis, named
    `ENV_AXIS` so that an env can read its index in the batch."""
    return jax.vmap(fn, axis_name=ENV_AXIS)


class Env(Protocol):
    obs_size: int  # policy observation: the character's part, then the task's
    character_obs_size: int  # the leading part a low-level (skill) policy sees
    action_size: int  # actions in [-1, 1]
    history: int  # frames in one discriminator sample
    amp_obs_size: int  # features of one discriminator frame

    def reset(self, key: jax.Array) -> Any: ...

    def step(self, state: Any, action: jax.Array) -> Any: ...

    def demo_amp_obs(self, key: jax.Array, num: int) -> jax.Array:
        """(num, history, amp_obs_size) discriminator samples of the demonstrations."""
        ...
