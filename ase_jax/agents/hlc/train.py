"""One task-training iteration as a single compiled program (docs/reference.md §6).

The high-level controller (HLC) sees the character observation plus the task observation and
outputs an unnormalised latent; it is clamped to [-1, 1], normalised and held for `llc_steps`
low-level steps, in which the frozen pre-trained policy acts deterministically. The HLC's reward
per step is task_reward_w x the mean task reward + disc_reward_w x the mean reward of the frozen
discriminator over those low-level steps. The PPO machinery is `ase_jax.agents.ppo`, as in
pre-training, without discriminator, encoder, diversity or epsilon-greedy. Without an LLC
(`scratch`), the policy acts directly on the task reward: the paper's Scratch baseline.

When an episode ends inside a high-level step, the environment resets at once (our envs reset
inside their step); the remaining low-level steps run in the new episode but do not count towards
that transition's reward, and the transition ends with the observation from before the reset.
(The reference keeps stepping the ended episode until the high-level step is over.)

The frozen LLC's parameters and normalisers are part of the training state, so every task
checkpoint holds the exact LLC it was trained with (`ase_jax.inference.task_policy` plays it back from
there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from ase_jax.agents import ppo
from ase_jax.agents.ase.pretrained import Pretrained, deterministic_action, disc_reward
from ase_jax.agents.hlc.networks import make_hlc_networks, unit_latent
from ase_jax.config import Config
from ase_jax.config.keys import ConfigError
from ase_jax.env.interface import Env, vmap_envs


@struct.dataclass
class HLCState:
    params: dict  # {"actor", "critic"}: the trained high-level networks
    opt_state: optax.OptState
    obs_norm: ppo.Normalizer
    value_norm: ppo.Normalizer
    llc: dict  # frozen low-level controller: {"params", "obs_norm", "amp_norm"}; never updated
    env_state: object
    key: jax.Array
    iteration: jax.Array


def llc_state(llc: Pretrained | None) -> dict:
    """The frozen LLC's arrays as the training state holds them ({} without an LLC)."""
    return {} if llc is None else {"params": llc.params, "obs_norm": llc.obs_norm, "amp_norm": llc.amp_norm}


def held_latent_step(step, act, disc_reward, llc_steps: int, env_state):
    """One high-level step: `llc_steps` low-level steps of the batched `step(state, actions)` with
    the frozen LLC's `act(obs)` (the latent held). Returns (env state after the last low-level step,
    per-env outcome): task and disc rewards averaged over the steps up to and including the one
    that ended the episode, the observation after that step, done and terminated if any step ended
    it, and the summed episode-length and non-finite metrics of those steps. Low-level steps after
    the end (in the episode the env reset into) count for nothing (the module docstring says why)."""

    def low(carry, _):
        s, out, count = carry
        s = step(s, act(s.obs))
        alive = 1.0 - out["done"]  # low-level steps after an episode ended do not count
        out = {"task_reward": out["task_reward"] + alive * s.reward,
               "disc_reward": out["disc_reward"] + alive * disc_reward(s.next_amp_obs),
               "next_obs": jnp.where(alive[:, None] > 0, s.next_obs, out["next_obs"]),
               "done": jnp.maximum(out["done"], s.done),
               "terminated": jnp.maximum(out["terminated"], alive * s.terminated),
               "episode_length": out["episode_length"] + alive * s.metrics["episode_length"],
               "nonfinite": out["nonfinite"] + alive * s.metrics["nonfinite"]}
        return (s, out, count + alive), None

    zeros = jnp.zeros(env_state.done.shape)
    out = {"task_reward": zeros, "disc_reward": zeros, "next_obs": env_state.obs, "done": zeros,
           "terminated": zeros, "episode_length": zeros, "nonfinite": zeros}
    (s, out, count), _ = jax.lax.scan(low, (env_state, out, zeros), None, llc_steps)
    return s, dict(out, task_reward=out["task_reward"] / count, disc_reward=out["disc_reward"] / count)


def make_hlc_train_fns(config: Config, env: Env, llc: Pretrained | None) -> ppo.TrainFns:
    hp, task = config.ppo, config.task
    devices, local_envs, local_batch, num_minibatches = ppo.split_over_devices(hp)
    hierarchical = llc is not None
    if hierarchical and llc.config.ase.latent_dim == 0:
        raise ConfigError("the low-level controller is a plain AMP run (latent_dim 0): it has no latent space for a "
                          "high-level controller to steer; train the task with --scratch, or give an ASE run as --llc")
    action_size = llc.config.ase.latent_dim if hierarchical else env.action_size
    llc_steps = task.llc_steps if hierarchical else 1
    actor, critic, init_params = make_hlc_networks(env.obs_size, action_size, hp.actor_units, hp.critic_units)
    optimizer = ppo.make_optimizer(hp, {"critic": hp.critic_learning_rate})
    norm = lambda x, s: ppo.normalize(x, s, hp.normalize_obs_clip)

    if hierarchical:
        # The frozen LLC acts and scores as the loaded model does (agents.ase.pretrained), on the
        # arrays of the training state, with its inputs clipped as in its own training.
        llc_clip = llc.config.ppo.normalize_obs_clip

        def llc_act(frozen, obs, z):
            return deterministic_action(llc.networks, frozen["params"]["actor"], frozen["obs_norm"],
                                        obs[..., : env.character_obs_size], z, llc_clip)

        def llc_disc_reward(frozen, amp_obs):
            return disc_reward(llc.networks, frozen["params"]["disc"], frozen["amp_norm"], amp_obs, llc_clip,
                               llc.config.ase.disc_reward_scale)

    def init(param_key, env_key) -> HLCState:
        params = init_params(param_key)
        return HLCState(
            params=params, opt_state=optimizer.init(params), obs_norm=ppo.init_normalizer((env.obs_size,)),
            value_norm=ppo.init_normalizer(()), llc=llc_state(llc),
            env_state=vmap_envs(env.reset)(jax.random.split(env_key, local_envs)),
            key=jax.random.fold_in(env_key, 1), iteration=jnp.zeros((), jnp.int32))

    def act_in_env(frozen, env_state, action):
        """One high-level step: (next env state, outcome dict of per-env arrays)."""
        if not hierarchical:
            s = vmap_envs(env.step)(env_state, action)
            return s, {"task_reward": s.reward, "disc_reward": jnp.zeros_like(s.reward), "next_obs": s.next_obs,
                       "done": s.done, "terminated": s.terminated, "episode_length": s.metrics["episode_length"],
                       "nonfinite": s.metrics["nonfinite"]}
        z = unit_latent(action)
        return held_latent_step(vmap_envs(env.step), lambda obs: llc_act(frozen, obs, z),
                                lambda amp_obs: llc_disc_reward(frozen, amp_obs.reshape(local_envs, -1)),
                                llc_steps, env_state)

    def rollout(state: HLCState, key):
        def step(env_state, key):
            mu = actor.apply(state.params["actor"], norm(env_state.obs, state.obs_norm))
            raw, log_prob = ppo.sample_actions(key, mu, hp.action_log_std)
            next_state, out = act_in_env(state.llc, env_state, jnp.clip(raw, -1.0, 1.0))
            reward = (task.task_reward_w * out["task_reward"] + task.disc_reward_w * out["disc_reward"]
                      if hierarchical else out["task_reward"])
            return next_state, dict(out, obs=env_state.obs, actions=raw, log_prob=log_prob, reward=reward)

        return jax.lax.scan(step, state.env_state, jax.random.split(key, hp.horizon))

    def train_step(state: HLCState):
        key, k_roll, k_update = jax.random.split(state.key, 3)
        env_state, traj = rollout(state, k_roll)
        value = lambda o: ppo.denormalize_values(critic.apply(state.params["critic"], norm(o, state.obs_norm)),
                                                 state.value_norm, hp)
        values = value(traj["obs"])
        ones = jnp.ones_like(values)
        advantages, returns, raw_advantage_std = ppo.advantages_and_returns(
            traj["reward"], values, value(traj["next_obs"]), traj["done"], traj["terminated"], ones, hp)
        obs_norm = ppo.update_normalizer(state.obs_norm, traj["obs"].reshape(-1, env.obs_size))
        # Values and returns, as in pre-training (rl_games).
        value_norm = ppo.update_normalizer(state.value_norm, jnp.concatenate([values.ravel(), returns.ravel()]))

        def minibatch_loss(params, minibatch, key):
            def loss(params):
                obs = norm(minibatch["obs"], obs_norm)
                mu = actor.apply(params["actor"], obs)
                return ppo.ppo_loss(mu, critic.apply(params["critic"], obs), minibatch, jnp.ones(mu.shape[0]),
                                    value_norm, hp)
            return jax.value_and_grad(loss, has_aux=True)(params)

        batch = ppo.flatten_time({"obs": traj["obs"], "actions": traj["actions"], "log_prob": traj["log_prob"],
                                  "advantages": advantages, "returns": returns})
        params, opt_state, metrics = ppo.update(minibatch_loss, optimizer, state.params, state.opt_state, batch,
                                                k_update, hp, num_minibatches)
        finished = traj["done"].sum()
        metrics.update({"reward/total": traj["reward"].mean(), "reward/task": traj["task_reward"].mean(),
                        "reward/disc": traj["disc_reward"].mean(),
                        "episode/length": traj["episode_length"].sum() / jnp.maximum(finished, 1.0),
                        "episode/finished": finished, "env/nonfinite": traj["nonfinite"].sum(),
                        "advantage/std_raw": raw_advantage_std})
        metrics = ppo.reduce_metrics(metrics, sums={"episode/finished", "env/nonfinite"})
        return state.replace(params=params, opt_state=opt_state, obs_norm=obs_norm, value_norm=value_norm,
                             env_state=env_state, key=key, iteration=state.iteration + 1), metrics

    def rollout_only(state: HLCState):
        env_state, traj = rollout(state, state.key)
        return state.replace(env_state=env_state), traj["done"].sum()

    return ppo.compile_train_fns(init, train_step, rollout_only, devices, (actor, critic))
