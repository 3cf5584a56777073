"""One task-training iteration as a single compiled program (facts sheet section 6).

The high-level controller (HLC) sees the humanoid observation plus the task observation and outputs
an unnormalised 64-D latent; it is clamped to [-1, 1], normalised and held for `llc_steps`
low-level steps, in which the frozen pre-trained policy acts deterministically. The HLC's reward
per step is task_reward_w x the mean task reward + disc_reward_w x the mean reward of the frozen
discriminator over those low-level steps. PPO as in pre-training, without discriminator, encoder,
diversity or epsilon-greedy. With `scratch`, the policy acts directly (31-D) on the task reward:
the paper's Scratch baseline.

When an episode ends inside a high-level step, the environment resets at once (our env resets
inside its step); the remaining low-level steps run in the new episode but do not count towards
that transition's reward, and the transition ends with the observation from before the reset.
(The reference keeps stepping the ended episode until the high-level step is over.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from brax.training.acme import running_statistics
from brax.training.acme.specs import Array as Spec
from flax import struct

from ase_jax.agents.ase import losses
from ase_jax.agents.ase.policy import Pretrained
from ase_jax.agents.ase.train import AXIS, NORM_STD_EPS, TrainFns, pmapped_init, split_over_devices
from ase_jax.agents.hlc.networks import make_hlc_networks
from ase_jax.config import Config
from ase_jax.env.humanoid import EnvState, HumanoidEnv


@struct.dataclass
class HLCState:
    params: dict  # {"actor", "critic"}: the trained high-level networks
    opt_state: optax.OptState
    obs_norm: running_statistics.RunningStatisticsState
    value_norm: running_statistics.RunningStatisticsState
    llc: dict  # frozen low-level controller: {"params", "obs_norm", "amp_norm"}; never updated
    env_state: EnvState
    key: jax.Array
    iteration: jax.Array


def make_hlc_train_fns(config: Config, env: HumanoidEnv, llc: Pretrained | None) -> TrainFns:
    devices, local_envs, local_batch, num_minibatches = split_over_devices(config)
    num_devices = len(devices)
    hierarchical = llc is not None
    action_size = llc.config.latent_dim if hierarchical else env.action_size
    llc_steps = config.llc_steps if hierarchical else 1
    actor, critic, init_params = make_hlc_networks(env.obs_size, action_size, config.actor_units, config.critic_units)
    optimizer = optax.adam(config.learning_rate, eps=1e-8)
    if config.max_grad_norm > 0:
        optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optimizer)
    clip = config.normalize_obs_clip
    norm = lambda x, s: running_statistics.normalize(x, s, max_abs_value=clip)
    std = jnp.exp(config.action_log_std)

    # The frozen LLC sees its inputs clipped as in its own training (and as `Pretrained.action`).
    llc_norm = lambda x, s: running_statistics.normalize(x, s, max_abs_value=llc.config.normalize_obs_clip)

    def llc_act(llc_state, obs, z):
        humanoid = llc_norm(obs[..., : env.humanoid_obs_size], llc_state["obs_norm"])
        return jnp.clip(llc.networks.actor_apply(llc_state["params"]["actor"], humanoid, z), -1.0, 1.0)

    def llc_disc_reward(llc_state, amp_obs):
        logits = llc.networks.disc_logit_apply(llc_state["params"]["disc"], llc_norm(amp_obs, llc_state["amp_norm"]))
        return losses.disc_reward(logits, llc.config.disc_reward_scale)

    def init(param_key, env_key):
        params = init_params(param_key)
        llc_state = {} if not hierarchical else {"params": llc.params, "obs_norm": llc.obs_norm,
                                                 "amp_norm": llc.amp_norm}
        return HLCState(
            params=params, opt_state=optimizer.init(params),
            obs_norm=running_statistics.init_state(Spec((env.obs_size,), jnp.float32), std_eps=NORM_STD_EPS),
            value_norm=running_statistics.init_state(Spec((), jnp.float32), std_eps=NORM_STD_EPS),
            llc=llc_state,
            env_state=jax.vmap(env.reset)(jax.random.split(env_key, local_envs)),
            key=jax.random.fold_in(env_key, 1), iteration=jnp.zeros((), jnp.int32))

    def act_in_env(llc_state, env_state, action):
        """One high-level step: (next env state, task reward, disc reward, next_obs, done, terminated, ...)."""
        if not hierarchical:
            s = jax.vmap(env.step)(env_state, action)
            return s, s.reward, jnp.zeros_like(s.reward), s.next_obs, s.done, s.terminated, \
                s.metrics["episode_length"], s.metrics["nonfinite"]
        z = action / jnp.maximum(jnp.linalg.norm(action, axis=-1, keepdims=True), 1e-6)

        def low(carry, _):
            s, task, disc, count, next_obs, done, term, length, bad = carry
            s = jax.vmap(env.step)(s, llc_act(llc_state, s.obs, z))
            alive = 1.0 - done
            task = task + alive * s.reward
            disc = disc + alive * llc_disc_reward(llc_state, s.next_amp_obs.reshape(local_envs, -1))
            next_obs = jnp.where(alive[:, None] > 0, s.next_obs, next_obs)
            length = length + alive * s.metrics["episode_length"]
            bad = bad + alive * s.metrics["nonfinite"]
            term = jnp.maximum(term, alive * s.terminated)
            return (s, task, disc, count + alive, next_obs, jnp.maximum(done, s.done), term, length, bad), None

        zeros = jnp.zeros(local_envs)
        carry = (env_state, zeros, zeros, zeros, env_state.obs, zeros, zeros, zeros, zeros)
        (s, task, disc, count, next_obs, done, term, length, bad), _ = jax.lax.scan(low, carry, None, llc_steps)
        return s, task / count, disc / count, next_obs, done, term, length, bad

    def rollout(state: HLCState, key):
        def step(env_state, key):
            k_noise = key
            mu = actor.apply(state.params["actor"], norm(env_state.obs, state.obs_norm))
            raw = mu + std * jax.random.normal(k_noise, mu.shape)
            log_prob = losses.gaussian_log_prob(raw, mu, config.action_log_std)
            next_state, task_r, disc_r, next_obs, done, term, length, bad = act_in_env(
                state.llc, env_state, jnp.clip(raw, -1.0, 1.0))
            reward = (config.task_reward_w * task_r + config.disc_reward_w * disc_r) if hierarchical else task_r
            out = {"obs": env_state.obs, "next_obs": next_obs, "actions": raw, "log_prob": log_prob,
                   "reward": reward, "task_reward": task_r, "disc_reward": disc_r, "done": done,
                   "terminated": term, "episode_length": length, "nonfinite": bad}
            return next_state, out

        return jax.lax.scan(step, state.env_state, jax.random.split(key, config.horizon))

    def loss_fn(params, obs_norm, value_norm, mb):
        obs = norm(mb["obs"], obs_norm)
        mu = actor.apply(params["actor"], obs)
        ones = jnp.ones(mu.shape[0])
        log_prob = losses.gaussian_log_prob(mb["actions"], mu, config.action_log_std)
        actor_loss = losses.ppo_actor_loss(log_prob, mb["log_prob"], mb["advantages"], ones, config.ppo_clip)
        critic_loss = losses.critic_loss(critic.apply(params["critic"], obs),
                                         running_statistics.normalize(mb["returns"], value_norm))
        bounds_loss = losses.bounds_loss(mu, ones)
        total = actor_loss + config.critic_coef * critic_loss + config.bounds_coef * bounds_loss
        return total, {"loss/total": total, "loss/actor": actor_loss, "loss/critic": critic_loss,
                       "loss/bounds": bounds_loss}

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def train_step(state: HLCState):
        key, k_roll, k_update = jax.random.split(state.key, 3)
        env_state, traj = rollout(state, k_roll)
        value = lambda o: running_statistics.denormalize(
            critic.apply(state.params["critic"], norm(o, state.obs_norm)), state.value_norm)
        values, next_values = value(traj["obs"]), value(traj["next_obs"])
        advantages, returns = losses.compute_gae(traj["reward"], values, next_values, traj["done"],
                                                 traj["terminated"], config.gamma, config.gae_lambda)
        advantages = losses.standardize(advantages, jnp.ones_like(advantages), axis_name=AXIS)
        obs_norm = running_statistics.update(state.obs_norm, traj["obs"].reshape(-1, env.obs_size),
                                             pmap_axis_name=AXIS)
        # Values and returns, as in pre-training (rl_games).
        value_norm = running_statistics.update(state.value_norm, jnp.concatenate([values.ravel(), returns.ravel()]),
                                               pmap_axis_name=AXIS)
        batch = {"obs": traj["obs"], "actions": traj["actions"], "log_prob": traj["log_prob"],
                 "advantages": advantages, "returns": returns}
        batch = jax.tree.map(lambda x: x.reshape((local_batch,) + x.shape[2:]), batch)

        def minibatch_step(carry, mb):
            params, opt_state = carry
            (_, metrics), grads = grad_fn(params, obs_norm, value_norm, mb)
            grads = jax.lax.pmean(grads, AXIS)
            finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
            updates, new_opt_state = optimizer.update(grads, opt_state, params)
            new = (optax.apply_updates(params, updates), new_opt_state)
            params, opt_state = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, (params, opt_state))
            metrics["skipped_updates"] = 1.0 - finite.astype(jnp.float32)
            return (params, opt_state), metrics

        def epoch(carry, key):
            perm = jax.random.permutation(key, local_batch)
            shuffled = jax.tree.map(lambda x: x[perm].reshape((num_minibatches, -1) + x.shape[1:]), batch)
            return jax.lax.scan(minibatch_step, carry, shuffled)

        (params, opt_state), metrics = jax.lax.scan(epoch, (state.params, state.opt_state),
                                                    jax.random.split(k_update, config.mini_epochs))
        finished = traj["done"].sum()
        metrics = jax.tree.map(jnp.mean, metrics)
        metrics.update({"reward/total": traj["reward"].mean(), "reward/task": traj["task_reward"].mean(),
                        "reward/disc": traj["disc_reward"].mean(),
                        "episode/length": traj["episode_length"].sum() / jnp.maximum(finished, 1.0),
                        "episode/finished": finished, "env/nonfinite": traj["nonfinite"].sum()})
        sums = {"episode/finished", "env/nonfinite"}
        metrics = {k: (jax.lax.psum(v, AXIS) if k in sums else jax.lax.pmean(v, AXIS)) for k, v in metrics.items()}
        return state.replace(params=params, opt_state=opt_state, obs_norm=obs_norm, value_norm=value_norm,
                             env_state=env_state, key=key, iteration=state.iteration + 1), metrics

    def rollout_only(state):
        env_state, traj = rollout(state, state.key)
        return state.replace(env_state=env_state), traj["done"].sum()

    return TrainFns(init=pmapped_init(init, devices), loss_and_grad=grad_fn,
                    step=jax.pmap(train_step, axis_name=AXIS, devices=devices, donate_argnums=0),
                    rollout=jax.pmap(rollout_only, axis_name=AXIS, devices=devices), networks=(actor, critic),
                    num_devices=num_devices)
