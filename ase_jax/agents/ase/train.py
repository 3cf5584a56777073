"""One ASE pre-training iteration as a single compiled program (docs/reference.md §5).

`make_train_fns(config, env)` returns the pmapped `init(key) -> TrainState` and
`step(TrainState) -> (TrainState, metrics)` for any env of `ase_jax.env.interface`. The PPO
machinery (device split, optimiser, normalisers, GAE, the minibatch loop) is `ase_jax.agents.ppo`;
this module holds what ASE adds. One iteration reads top-down:

    rollout: lax.scan over the horizon of vmapped envs, each following its latent z
    -> rewards from the discriminator and encoder as they are now
    -> GAE, then normaliser updates (policy obs, values, discriminator obs)
    -> ppo.update: mini-epochs x minibatches of one joint loss, PPO actor + critic + bounds
       + diversity + discriminator (agent, replay and fresh demo samples) + encoder
    -> agent discriminator observations into the replay buffer

Plain AMP (`ase.latent_dim: 0`, configs/amp.yaml; docs/reference.md §5.8) is the same iteration
with the skill parts left out: no latents to follow or resample, the discriminator's style reward
alone, and no diversity or encoder terms in the loss.

As in the reference, the loss terms are summed with their coefficients and minimised by one
optimiser, so each minibatch updates all networks at once. On purpose unlike the reference: demo
samples are drawn fresh for every minibatch (the reference keeps a 200k demo buffer because
fetching is slow in PyTorch).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from ase_jax.agents import ppo
from ase_jax.agents.ase import losses, networks as ase_networks
from ase_jax.agents.ase import replay as replay_lib
from ase_jax.config import Config
from ase_jax.env.interface import Env, vmap_envs


@struct.dataclass
class TrainState:
    params: dict  # {"actor", "critic", "disc"}
    opt_state: optax.OptState
    obs_norm: ppo.Normalizer
    amp_norm: ppo.Normalizer
    value_norm: ppo.Normalizer
    replay: replay_lib.ReplayBuffer
    env_state: object  # the env's state pytree, (N, ...) leaves
    latents: jax.Array  # (N, latent_dim) the skill each env is following
    latent_countdown: jax.Array  # (N,) control steps until the latent is resampled
    key: jax.Array
    iteration: jax.Array
    # {"disc", "enc"}: running statistics of each reward term, with `reward_normalization` only
    # (None otherwise, so the default state keeps the reference's layout)
    reward_norm: dict | None = None


@struct.dataclass
class Transition:
    obs: jax.Array
    next_obs: jax.Array
    amp_obs: jax.Array  # flattened discriminator history after the step, before any reset
    latents: jax.Array
    actions: jax.Array
    log_prob: jax.Array
    stochastic: jax.Array  # 1 where the action was sampled, 0 where the mean was played
    done: jax.Array
    terminated: jax.Array
    episode_length: jax.Array
    nonfinite: jax.Array
    contact_overflow: jax.Array  # the Warp back end dropped contacts or constraints (env.contact_overflow)


def eps_greedy_probs(num_envs: int, offset, total: int, enabled: bool) -> jax.Array:
    """Probability that env i acts stochastically: 1 - exp(10 (i / (N - 1) - 1)) (docs/reference.md §5.6)."""
    if not enabled or total < 2:
        return jnp.ones(num_envs)
    i = offset + jnp.arange(num_envs)
    return 1.0 - jnp.exp(10.0 * (i / (total - 1) - 1.0))


def make_train_fns(config: Config, env: Env, num_devices: int | None = None) -> ppo.TrainFns:
    """The pmapped `init(key)`, `step(state)` and `rollout(state)` over `num_devices` local devices."""
    hp, ase = config.ppo, config.ase
    amp = ase.latent_dim == 0  # plain AMP: no latent, no encoder (config.Config checks the keys agree)
    devices, local_envs, local_batch, num_minibatches = ppo.split_over_devices(hp, num_devices)
    amp_rows = ase.amp_minibatch_size
    amp_dim = env.history * env.amp_obs_size
    nets = ase_networks.networks_for(config, env.obs_size, amp_dim, env.action_size)
    optimizer = ppo.make_optimizer(
        hp, {"critic": hp.critic_learning_rate, "disc": ase.disc_learning_rate,
             "enc": ase.enc_learning_rate or ase.disc_learning_rate}, ase_networks.parameter_group)
    norm = lambda x, s: ppo.normalize(x, s, hp.normalize_obs_clip)

    def sample_latents(key, n):
        z = ase_networks.sample_latents(key, (n,), ase.latent_dim)
        steps = ase_networks.sample_latent_steps(jax.random.fold_in(key, 1), (n,), ase.latent_steps_min,
                                                 ase.latent_steps_max)
        return z, steps

    def demo_rows(key, n):
        return env.demo_amp_obs(key, n).reshape(n, amp_dim)

    def init(param_key, env_key) -> TrainState:
        params = ase_networks.init_params(nets, param_key)
        k_reset, k_lat, k_state = jax.random.split(env_key, 3)
        latents, countdown = sample_latents(k_lat, local_envs)
        return TrainState(
            params=params, opt_state=optimizer.init(params), obs_norm=ppo.init_normalizer((env.obs_size,)),
            amp_norm=ppo.init_normalizer((amp_dim,)), value_norm=ppo.init_normalizer(()),
            replay=replay_lib.init_replay(ase.replay_buffer_size // len(devices), (amp_dim,)),
            env_state=vmap_envs(env.reset)(jax.random.split(k_reset, local_envs)), latents=latents,
            latent_countdown=countdown, key=k_state, iteration=jnp.zeros((), jnp.int32),
            reward_norm={k: ppo.init_normalizer(()) for k in (("disc",) if amp else ("disc", "enc"))}
            if ase.reward_normalization else None)

    def rollout(state: TrainState, key):
        device = jax.lax.axis_index(ppo.AXIS)
        stochastic_prob = eps_greedy_probs(local_envs, device * local_envs, hp.num_envs, ase.eps_greedy)

        def step(carry, key):
            env_state, z, countdown = carry
            k_noise, k_eps, k_lat = jax.random.split(key, 3)
            mu = nets.actor_apply(state.params["actor"], norm(env_state.obs, state.obs_norm), z)
            stochastic = jax.random.bernoulli(k_eps, stochastic_prob).astype(jnp.float32)
            actions, log_prob = ppo.sample_actions(k_noise, mu, hp.action_log_std, stochastic)
            next_state = vmap_envs(env.step)(env_state, actions)
            transition = Transition(
                obs=env_state.obs, next_obs=next_state.next_obs,
                amp_obs=next_state.next_amp_obs.reshape(local_envs, -1), latents=z, actions=actions,
                log_prob=log_prob, stochastic=stochastic, done=next_state.done, terminated=next_state.terminated,
                episode_length=next_state.metrics["episode_length"], nonfinite=next_state.metrics["nonfinite"],
                contact_overflow=next_state.metrics.get("contact_overflow", jnp.zeros_like(next_state.done)))
            if not amp:
                new_z, new_countdown = sample_latents(k_lat, local_envs)
                resample = (next_state.done > 0) | (countdown <= 1)
                z = jnp.where(resample[:, None], new_z, z)
                countdown = jnp.where(resample, new_countdown, countdown - 1)
            return (next_state, z, countdown), transition

        carry = (state.env_state, state.latents, state.latent_countdown)
        return jax.lax.scan(step, carry, jax.random.split(key, hp.horizon))  # traj leaves: (T, N, ...)

    def loss_fn(params, norms, batch, demo, replay_rows, key):
        """The joint loss of one minibatch: PPO + diversity + discriminator + encoder (docs/reference.md §5.4)."""
        obs_norm, amp_norm, value_norm = norms
        obs = norm(batch["obs"], obs_norm)
        mask = batch["stochastic"]
        # plain AMP's batch holds no latents (a (B, 0) leaf cannot be cut into minibatches by reshape)
        z = jnp.zeros((obs.shape[0], 0)) if amp else batch["latents"]
        mu = nets.actor_apply(params["actor"], obs, z)
        values = nets.critic_apply(params["critic"], obs, z)
        ppo_total, metrics = ppo.ppo_loss(mu, values, batch, mask, value_norm, hp)

        agent_amp = norm(batch["amp_obs"][:amp_rows], amp_norm)  # the reference's first amp_minibatch rows
        disc_inputs = jnp.concatenate([agent_amp, norm(replay_rows, amp_norm)])
        disc, disc_metrics = losses.disc_loss(params["disc"], nets.disc_logit_apply, disc_inputs,
                                              norm(demo, amp_norm), ase.disc_logit_reg, ase.disc_grad_penalty,
                                              ase.disc_weight_decay)
        total = ppo_total + ase.disc_coef * disc
        if amp:
            return total, {**metrics, **disc_metrics}

        z_prime = ase_networks.sample_latents(key, (mu.shape[0],), ase.latent_dim)
        mu_prime = nets.actor_apply(params["actor"], obs, z_prime)
        diversity = losses.diversity_loss(mu, mu_prime, batch["latents"], z_prime, mask, ase.diversity_target)
        enc, enc_metrics = losses.enc_loss(params["disc"], nets.encode_apply, agent_amp, batch["latents"][:amp_rows])
        total = total + ase.enc_coef * enc + ase.diversity_coef * diversity
        return total, {**metrics, "loss/diversity": diversity, **disc_metrics, **enc_metrics}

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def train_step(state: TrainState):
        key, k_roll, k_update, k_replay, k_norm = jax.random.split(state.key, 5)
        (env_state, latents, countdown), traj = rollout(state, k_roll)

        # Rewards from the discriminator and encoder as they are now (docs/reference.md §5.3).
        logits, enc = nets.disc_enc_apply(state.params["disc"], norm(traj.amp_obs, state.amp_norm))
        disc_reward = losses.disc_reward(logits, ase.disc_reward_scale)
        enc_reward = losses.enc_reward(enc, traj.latents, ase.enc_reward_scale, ase.enc_reward_form)
        reward_norm = state.reward_norm
        if amp:  # plain AMP: the style reward alone
            if reward_norm is not None:
                reward_norm = {"disc": ppo.update_normalizer(reward_norm["disc"], disc_reward.ravel())}
            rewards = ase.disc_reward_w * disc_reward / (1.0 if reward_norm is None else reward_norm["disc"].std)
        elif reward_norm is None:
            rewards = ase.disc_reward_w * disc_reward + ase.enc_reward_w * enc_reward
        else:  # each term in units of its own running standard deviation (not centred: r_D stays an alive bonus)
            reward_norm = {"disc": ppo.update_normalizer(reward_norm["disc"], disc_reward.ravel()),
                           "enc": ppo.update_normalizer(reward_norm["enc"], enc_reward.ravel())}
            rewards = (ase.disc_reward_w * disc_reward / reward_norm["disc"].std
                       + ase.enc_reward_w * enc_reward / reward_norm["enc"].std)

        value = lambda o: ppo.denormalize_values(
            nets.critic_apply(state.params["critic"], norm(o, state.obs_norm), traj.latents), state.value_norm, hp)
        values = value(traj.obs)
        advantages, returns, raw_advantage_std = ppo.advantages_and_returns(
            rewards, values, value(traj.next_obs), traj.done, traj.terminated, traj.stochastic, hp)

        obs_norm = ppo.update_normalizer(state.obs_norm, traj.obs.reshape(-1, env.obs_size))
        # rl_games' value normaliser is updated with the iteration's values and then its returns.
        value_norm = ppo.update_normalizer(state.value_norm, jnp.concatenate([values.ravel(), returns.ravel()]))
        agent_amp = traj.amp_obs.reshape(-1, amp_dim)
        # The reference feeds its AMP normaliser the agent, replay and demo minibatches in equal
        # parts (docs/reference.md §5.2); once per iteration here, with one minibatch-sized draw of each.
        k_demo, k_agent, k_replay_rows = jax.random.split(k_norm, 3)
        amp_norm = ppo.update_normalizer(state.amp_norm, jnp.concatenate([
            agent_amp[jax.random.randint(k_agent, (amp_rows,), 0, agent_amp.shape[0])],
            replay_lib.sample(state.replay, k_replay_rows, amp_rows, agent_amp), demo_rows(k_demo, amp_rows)]))
        norms = (obs_norm, amp_norm, value_norm)

        def minibatch_loss(params, minibatch, key):
            k_demo, k_replay, k_loss = jax.random.split(key, 3)
            replay_rows = replay_lib.sample(state.replay, k_replay, amp_rows, agent_amp)
            return grad_fn(params, norms, minibatch, demo_rows(k_demo, amp_rows), replay_rows, k_loss)

        batch = ppo.flatten_time({
            "obs": traj.obs, "actions": traj.actions, "log_prob": traj.log_prob,
            "stochastic": traj.stochastic, "advantages": advantages, "returns": returns, "amp_obs": traj.amp_obs,
            **({} if amp else {"latents": traj.latents})})
        params, opt_state, metrics = ppo.update(minibatch_loss, optimizer, state.params, state.opt_state, batch,
                                                k_update, hp, num_minibatches)
        replay = replay_lib.insert(state.replay, agent_amp, k_replay, ase.replay_keep_prob)

        finished = traj.done.sum()
        if not amp:
            metrics.update({
                "reward/enc": enc_reward.mean(),
                # the reference's Enc_Reward_Mean, max(e.z, 0), whatever enc_reward_form trains on
                "reward/enc_clipped": losses.enc_reward(enc, traj.latents, 1.0, "clipped").mean()})
        metrics.update({
            "reward/disc": disc_reward.mean(), "reward/total": rewards.mean(),
            "episode/length": traj.episode_length.sum() / jnp.maximum(finished, 1.0),
            "episode/finished": finished, "episode/terminated": traj.terminated.sum(),
            "env/nonfinite": traj.nonfinite.sum(), "env/contact_overflow": traj.contact_overflow.sum(),
            "value/mean": values.mean(),
            "advantage/std_raw": raw_advantage_std,
        })
        metrics = ppo.reduce_metrics(metrics, sums={"episode/finished", "episode/terminated", "env/nonfinite",
                                                              "env/contact_overflow"})
        return TrainState(params=params, opt_state=opt_state, obs_norm=obs_norm, amp_norm=amp_norm,
                          value_norm=value_norm, replay=replay, env_state=env_state, latents=latents,
                          latent_countdown=countdown, key=key, iteration=state.iteration + 1,
                          reward_norm=reward_norm), metrics

    def rollout_only(state: TrainState):
        """The collection part of an iteration alone (for benchmarks)."""
        (env_state, latents, countdown), traj = rollout(state, state.key)
        return state.replace(env_state=env_state, latents=latents, latent_countdown=countdown), traj.done.sum()

    return ppo.compile_train_fns(init, train_step, rollout_only, devices, nets, loss_and_grad=grad_fn)
