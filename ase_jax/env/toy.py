"""A toy environment in pure JAX that the ASE and task learners train in seconds.

A point mass in the plane follows a commanded velocity with some lag:

    v' = 0.5 v + 0.5 x 1.5 a,   p' = p + 0.1 v'      (a in [-1, 1]^2)

The demonstrations move at unit speed in a direction drawn uniformly from the circle, so the
discriminator (which sees the last `history` velocities) can tell standing or wandering from
demo-like motion, and the skills are distinguishable: each direction is one, and a 2-D latent on
the unit circle can name it. With `task=True` a target is placed at reset, the observation gains
the target's offset from the point, and the task reward is exp(-|target - p|).

It implements `ase_jax.env.interface.Env` with no MJX, so tests of the learning algorithms do not
pay for compiling a physics engine. `toy_config()` is a configuration that learns on it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from ase_jax.config.schema import Config
from ase_jax.config.sections import ASEConfig, PPOConfig, RunConfig, TaskConfig

GAIN = 1.5  # full action = 1.5 x unit speed, so the demo speed is reachable inside the bounds
LAG = 0.5
DT = 0.1
START_RADIUS = 1.0
TARGET_RADIUS = 2.0


@struct.dataclass
class ToyState:
    pos: jax.Array  # (2,)
    vel: jax.Array  # (2,)
    target: jax.Array  # (2,) task target (unused without a task)
    obs: jax.Array
    amp_obs: jax.Array  # (history, 2) velocities, newest first
    next_obs: jax.Array
    next_amp_obs: jax.Array
    done: jax.Array
    terminated: jax.Array
    reward: jax.Array
    step_count: jax.Array
    key: jax.Array
    metrics: dict


class ToyEnv:
    amp_obs_size = 2
    character_obs_size = 2  # the velocity
    action_size = 2

    def __init__(self, task: bool = False, history: int = 2, episode_length: int = 64):
        self.task = task
        self.history = history
        self.episode_length = episode_length
        self.obs_size = self.character_obs_size + (2 if task else 0)

    def _obs(self, pos, vel, target):
        return jnp.concatenate([vel, target - pos]) if self.task else vel

    def _start(self, key):
        k_pos, k_target = jax.random.split(key)
        pos = jax.random.uniform(k_pos, (2,), minval=-START_RADIUS, maxval=START_RADIUS)
        angle, radius = jax.random.uniform(k_target, (2,), maxval=jnp.array([2 * jnp.pi, TARGET_RADIUS]))
        target = radius * jnp.array([jnp.cos(angle), jnp.sin(angle)])
        vel = jnp.zeros(2)
        return pos, vel, target, self._obs(pos, vel, target), jnp.zeros((self.history, 2))

    def reset(self, key: jax.Array) -> ToyState:
        key, k_start = jax.random.split(key)
        pos, vel, target, obs, history = self._start(k_start)
        zero = jnp.zeros(())
        return ToyState(pos=pos, vel=vel, target=target, obs=obs, amp_obs=history, next_obs=obs,
                        next_amp_obs=history, done=zero, terminated=zero, reward=zero,
                        step_count=jnp.zeros((), jnp.int32), key=key,
                        metrics={"episode_length": zero, "nonfinite": zero})

    def step(self, state: ToyState, action: jax.Array) -> ToyState:
        action = jnp.clip(action, -1.0, 1.0)
        vel = LAG * state.vel + (1.0 - LAG) * GAIN * action
        pos = state.pos + DT * vel
        obs = self._obs(pos, vel, state.target)
        history = jnp.concatenate([vel[None], state.amp_obs[:-1]])
        reward = jnp.exp(-jnp.linalg.norm(state.target - pos)) if self.task else jnp.zeros(())
        step_count = state.step_count + 1
        done = step_count >= self.episode_length
        key, k_start = jax.random.split(state.key)
        s_pos, s_vel, s_target, s_obs, s_history = self._start(k_start)
        pick = lambda fresh, cont: jnp.where(done, fresh, cont)
        f32 = lambda x: jnp.asarray(x, jnp.float32)
        return ToyState(pos=pick(s_pos, pos), vel=pick(s_vel, vel), target=pick(s_target, state.target),
                        obs=pick(s_obs, obs), amp_obs=pick(s_history, history), next_obs=obs, next_amp_obs=history,
                        done=f32(done), terminated=jnp.zeros(()), reward=f32(reward),
                        step_count=jnp.where(done, 0, step_count), key=key,
                        metrics={"episode_length": f32(jnp.where(done, step_count, 0)), "nonfinite": jnp.zeros(())})

    def demo_amp_obs(self, key: jax.Array, num: int) -> jax.Array:
        """(num, history, 2): unit speed in a uniformly random direction, held for the whole history."""
        angle = jax.random.uniform(key, (num,), maxval=2 * jnp.pi)
        vel = jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
        return jnp.broadcast_to(vel[:, None, :], (num, self.history, 2))


def toy_config(command: str = "pretrain", **changes) -> Config:
    """A configuration that learns on the toy env in seconds on a CPU: 64 envs x 16 steps, small
    networks, a 2-D latent, a faster learning rate and wider exploration than the character's. The
    discriminator has no gradient penalty or logit regulariser: on 4 features they flatten it so
    much that a policy moving 30-60 % too fast still looks like the demo to it."""
    ppo = PPOConfig(num_envs=64, horizon=16, mini_epochs=4, minibatch_size=256, learning_rate=1e-3,
                    action_log_std=-1.0, actor_units=(64, 64), critic_units=(64, 64), critic_coef=1.0)
    run = RunConfig(total_steps=64 * 16 * 200, workdir="runs/toy")
    if command == "pretrain":
        ase = ASEConfig(latent_dim=2, latent_steps_min=16, latent_steps_max=64, style_units=(16,),
                        disc_units=(64, 64), amp_minibatch_size=256, replay_buffer_size=4096, replay_keep_prob=0.1,
                        eps_greedy=False, disc_grad_penalty=0.0, disc_logit_reg=0.0)
        config = Config(command="pretrain", ppo=ppo, ase=ase, run=run)
    else:
        config = Config(command="task", ppo=ppo, ase=None, task=TaskConfig(name="heading", llc_steps=2), run=run)
    return config.replace(**changes) if changes else config
