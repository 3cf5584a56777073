"""One ASE pre-training iteration as a single compiled program (facts sheet section 5).

`make_train_fns` returns `init(key) -> TrainState` and `train_step(TrainState) -> (TrainState,
metrics)`, both `pmap`ped over the local devices: each device simulates its share of the
environments, gradients and normaliser statistics are averaged across devices, so the same code
runs on one CPU, one GPU or several. One iteration reads top-down:

    rollout (lax.scan over the horizon, vmapped envs)
    -> discriminator + encoder rewards with the current networks
    -> GAE (bootstrap on time-outs, not on terminations)
    -> normaliser updates (policy obs, values, discriminator obs)
    -> mini-epochs x minibatches of one joint loss: PPO actor + critic + bounds + diversity
       + discriminator (agent, replay and fresh demo samples) + encoder, one Adam step each
    -> agent discriminator observations into the replay buffer

As in the reference, the policy, value, discriminator and encoder losses are summed with their
coefficients and minimised by one optimiser, so each minibatch updates all networks at once.
Differences from the reference, on purpose: demo samples are drawn fresh from the motion library
for every minibatch (the reference keeps a 200k demo buffer because fetching is slow in PyTorch),
and normalisers are updated once per iteration from the whole batch (brax's convention) rather
than per minibatch. The normalisers' std is sqrt(var + 1e-5), the reference's epsilon (facts 3.1),
where brax's default would let a near-constant feature blow up to the clip value.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from brax.training.acme import running_statistics
from brax.training.acme.specs import Array as Spec
from flax import struct

from ase_jax.agents.ase import losses, networks as ase_networks
from ase_jax.agents.ase import replay as replay_lib
from ase_jax.config import Config, ConfigError
from ase_jax.env.humanoid import EnvState, HumanoidEnv, demo_amp_obs

AXIS = "devices"
NORM_STD_EPS = 1e-5  # rl_games RunningMeanStd epsilon (facts 3.1)


@struct.dataclass
class TrainState:
    params: dict  # {"actor", "critic", "disc"}
    opt_state: optax.OptState
    obs_norm: running_statistics.RunningStatisticsState
    amp_norm: running_statistics.RunningStatisticsState
    value_norm: running_statistics.RunningStatisticsState
    replay: replay_lib.ReplayBuffer
    env_state: EnvState
    latents: jax.Array  # (N, latent_dim) the skill each env is following
    latent_countdown: jax.Array  # (N,) control steps until the latent is resampled
    key: jax.Array
    iteration: jax.Array


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


def eps_greedy_probs(num_envs: int, offset, total: int, enabled: bool) -> jax.Array:
    """Probability that env i acts stochastically: 1 - exp(10 (i / (N - 1) - 1)) (facts 5.6)."""
    if not enabled or total < 2:
        return jnp.ones(num_envs)
    i = offset + jnp.arange(num_envs)
    return 1.0 - jnp.exp(10.0 * (i / (total - 1) - 1.0))


def make_networks(config: Config, env: HumanoidEnv) -> ase_networks.ASENetworks:
    """The ASE networks sized for `env` with the config's layer sizes."""
    return ase_networks.make_ase_networks(
        obs_size=env.obs_size, amp_obs_size=env.history * env.amp_obs_size, action_size=env.action_size,
        latent_dim=config.latent_dim, actor_units=config.actor_units, style_units=config.style_units,
        critic_units=config.critic_units, disc_units=config.disc_units, log_std=config.action_log_std)


class DeviceSplit(NamedTuple):
    devices: list
    local_envs: int  # environments each device simulates
    local_batch: int  # transitions each device collects per iteration
    num_minibatches: int  # minibatches per epoch on each device


def split_over_devices(config: Config, num_devices: int | None = None) -> DeviceSplit:
    """How an iteration's environments and minibatches divide over the first `num_devices` local
    devices (all of them by default); a ConfigError when they do not divide evenly."""
    devices = jax.local_devices()[: num_devices or jax.local_device_count()]
    n = len(devices)
    if config.num_envs % n:
        raise ConfigError(f"num_envs={config.num_envs} must be divisible by the {n} devices")
    local_envs = config.num_envs // n
    local_batch = local_envs * config.horizon
    if local_batch % config.minibatch_size:
        raise ConfigError(f"minibatch_size={config.minibatch_size} must divide num_envs x horizon / devices = "
                          f"{config.num_envs} x {config.horizon} / {n} = {local_batch}")
    return DeviceSplit(devices, local_envs, local_batch, local_batch // config.minibatch_size)


def pmapped_init(init, devices):
    """`key -> state` from `init(param_key, env_key)`, pmapped: every device starts from the same
    parameters and from its own environments."""
    pinit = jax.pmap(init, axis_name=AXIS, devices=devices)

    def init_state(key):
        param_key, env_key = jax.random.split(key)
        return pinit(jnp.broadcast_to(param_key, (len(devices),) + param_key.shape),
                     jax.random.split(env_key, len(devices)))

    return init_state


def make_train_fns(config: Config, env: HumanoidEnv, num_devices: int | None = None):
    """The pmapped `init(key)`, `step(state)` and `rollout(state)` over `num_devices` local devices."""
    devices, local_envs, local_batch, num_minibatches = split_over_devices(config, num_devices)
    num_devices = len(devices)
    amp_rows = config.amp_minibatch_size
    amp_dim = env.history * env.amp_obs_size

    nets = make_networks(config, env)
    optimizer = optax.adam(config.learning_rate, eps=1e-8)
    if config.max_grad_norm > 0:
        optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optimizer)
    clip = config.normalize_obs_clip
    norm = lambda x, s: running_statistics.normalize(x, s, max_abs_value=clip)

    def sample_latents(key, n):
        z = ase_networks.sample_latents(key, (n,), config.latent_dim)
        steps = ase_networks.sample_latent_steps(jax.random.fold_in(key, 1), (n,),
                                                 config.latent_steps_min, config.latent_steps_max)
        return z, steps

    # --- init ------------------------------------------------------------------------------------

    def init(param_key, env_key):
        params = ase_networks.init_params(nets, param_key)
        k_reset, k_lat, k_state = jax.random.split(env_key, 3)
        env_state = jax.vmap(env.reset)(jax.random.split(k_reset, local_envs))
        latents, countdown = sample_latents(k_lat, local_envs)
        return TrainState(
            params=params, opt_state=optimizer.init(params),
            obs_norm=running_statistics.init_state(Spec((env.obs_size,), jnp.float32), std_eps=NORM_STD_EPS),
            amp_norm=running_statistics.init_state(Spec((amp_dim,), jnp.float32), std_eps=NORM_STD_EPS),
            value_norm=running_statistics.init_state(Spec((), jnp.float32), std_eps=NORM_STD_EPS),
            replay=replay_lib.init_replay(config.replay_buffer_size // num_devices, (amp_dim,)),
            env_state=env_state, latents=latents, latent_countdown=countdown, key=k_state,
            iteration=jnp.zeros((), jnp.int32))

    # --- rollout ---------------------------------------------------------------------------------

    def rollout(state: TrainState, key):
        device = jax.lax.axis_index(AXIS)
        stochastic_prob = eps_greedy_probs(local_envs, device * local_envs, config.num_envs, config.eps_greedy)
        std = jnp.exp(config.action_log_std)

        def step(carry, key):
            env_state, z, countdown = carry
            k_noise, k_eps, k_lat = jax.random.split(key, 3)
            mu = nets.actor_apply(state.params["actor"], norm(env_state.obs, state.obs_norm), z)
            stochastic = jax.random.bernoulli(k_eps, stochastic_prob).astype(jnp.float32)
            actions = mu + stochastic[:, None] * std * jax.random.normal(k_noise, mu.shape)
            log_prob = losses.gaussian_log_prob(actions, mu, config.action_log_std)
            next_state = jax.vmap(env.step)(env_state, actions)
            transition = Transition(
                obs=env_state.obs, next_obs=next_state.next_obs,
                amp_obs=next_state.next_amp_obs.reshape(local_envs, -1), latents=z, actions=actions,
                log_prob=log_prob, stochastic=stochastic, done=next_state.done, terminated=next_state.terminated,
                episode_length=next_state.metrics["episode_length"], nonfinite=next_state.metrics["nonfinite"])
            new_z, new_countdown = sample_latents(k_lat, local_envs)
            resample = (next_state.done > 0) | (countdown <= 1)
            z = jnp.where(resample[:, None], new_z, z)
            countdown = jnp.where(resample, new_countdown, countdown - 1)
            return (next_state, z, countdown), transition

        carry = (state.env_state, state.latents, state.latent_countdown)
        carry, traj = jax.lax.scan(step, carry, jax.random.split(key, config.horizon))
        return carry, traj  # traj leaves: (T, N, ...)

    # --- losses ----------------------------------------------------------------------------------

    def loss_fn(params, norms, batch, demo, replay_rows, key):
        obs_norm, amp_norm, value_norm = norms
        obs = norm(batch["obs"], obs_norm)
        mu = nets.actor_apply(params["actor"], obs, batch["latents"])
        log_prob = losses.gaussian_log_prob(batch["actions"], mu, config.action_log_std)
        mask = batch["stochastic"]
        actor_loss = losses.ppo_actor_loss(log_prob, batch["log_prob"], batch["advantages"], mask, config.ppo_clip)
        values = nets.critic_apply(params["critic"], obs, batch["latents"])
        critic_loss = losses.critic_loss(values, running_statistics.normalize(batch["returns"], value_norm))
        bounds_loss = losses.bounds_loss(mu, mask)
        z_prime = ase_networks.sample_latents(key, (mu.shape[0],), config.latent_dim)
        mu_prime = nets.actor_apply(params["actor"], obs, z_prime)
        diversity_loss = losses.diversity_loss(mu, mu_prime, batch["latents"], z_prime, mask, config.diversity_target)

        agent_amp = norm(batch["amp_obs"][:amp_rows], amp_norm)  # the reference's first amp_minibatch rows
        disc_inputs = jnp.concatenate([agent_amp, norm(replay_rows, amp_norm)])
        disc_loss, disc_metrics = losses.disc_loss(
            params["disc"], nets.disc_logit_apply, disc_inputs, norm(demo, amp_norm),
            config.disc_logit_reg, config.disc_grad_penalty, config.disc_weight_decay)
        enc_loss, enc_metrics = losses.enc_loss(params["disc"], nets.encode_apply, agent_amp,
                                                batch["latents"][:amp_rows])
        total = (actor_loss + config.critic_coef * critic_loss + config.bounds_coef * bounds_loss
                 + config.disc_coef * disc_loss + config.enc_coef * enc_loss + config.diversity_coef * diversity_loss)
        metrics = {"loss/total": total, "loss/actor": actor_loss, "loss/critic": critic_loss,
                   "loss/bounds": bounds_loss, "loss/diversity": diversity_loss, **disc_metrics, **enc_metrics}
        return total, metrics

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    # --- one iteration ---------------------------------------------------------------------------

    def train_step(state: TrainState):
        key, k_roll, k_update, k_replay = jax.random.split(state.key, 4)
        (env_state, latents, countdown), traj = rollout(state, k_roll)

        # Rewards from the discriminator and encoder as they are now (facts 5.3).
        amp = norm(traj.amp_obs, state.amp_norm)
        logits, enc = nets.disc_enc_apply(state.params["disc"], amp)
        disc_reward = losses.disc_reward(logits, config.disc_reward_scale)
        enc_reward = losses.enc_reward(enc, traj.latents, config.enc_reward_scale)
        rewards = config.disc_reward_w * disc_reward + config.enc_reward_w * enc_reward

        value = lambda o: running_statistics.denormalize(
            nets.critic_apply(state.params["critic"], norm(o, state.obs_norm), traj.latents), state.value_norm)
        values, next_values = value(traj.obs), value(traj.next_obs)
        advantages, returns = losses.compute_gae(rewards, values, next_values, traj.done, traj.terminated,
                                                 config.gamma, config.gae_lambda)
        raw_advantage_std = advantages.std()
        advantages = losses.standardize(advantages, traj.stochastic, axis_name=AXIS)

        obs_norm = running_statistics.update(state.obs_norm, traj.obs.reshape(-1, env.obs_size), pmap_axis_name=AXIS)
        # rl_games' value normaliser is updated with the iteration's values and then its returns.
        value_norm = running_statistics.update(state.value_norm, jnp.concatenate([values.ravel(), returns.ravel()]),
                                               pmap_axis_name=AXIS)
        agent_amp = traj.amp_obs.reshape(-1, amp_dim)
        # The reference feeds its AMP normaliser the agent, replay and demo minibatches in equal
        # parts (facts 5.2); once per iteration here, with one minibatch-sized draw of each.
        k_demo_norm, k_agent_norm, k_replay_norm, k_epochs = jax.random.split(k_update, 4)
        amp_for_norm = jnp.concatenate([
            agent_amp[jax.random.randint(k_agent_norm, (amp_rows,), 0, agent_amp.shape[0])],
            replay_lib.sample(state.replay, k_replay_norm, amp_rows, agent_amp),
            demo_amp_obs(env, k_demo_norm, amp_rows).reshape(amp_rows, amp_dim)])
        amp_norm = running_statistics.update(state.amp_norm, amp_for_norm, pmap_axis_name=AXIS)
        norms = (obs_norm, amp_norm, value_norm)

        batch = {"obs": traj.obs, "latents": traj.latents, "actions": traj.actions, "log_prob": traj.log_prob,
                 "stochastic": traj.stochastic, "advantages": advantages, "returns": returns,
                 "amp_obs": traj.amp_obs}
        batch = jax.tree.map(lambda x: x.reshape((local_batch,) + x.shape[2:]), batch)

        def minibatch_step(carry, inputs):
            params, opt_state = carry
            mb, key = inputs
            k_demo, k_replay, k_loss = jax.random.split(key, 3)
            demo = demo_amp_obs(env, k_demo, amp_rows).reshape(amp_rows, amp_dim)
            replay_rows = replay_lib.sample(state.replay, k_replay, amp_rows, agent_amp)
            (_, metrics), grads = grad_fn(params, norms, mb, demo, replay_rows, k_loss)
            grads = jax.lax.pmean(grads, AXIS)
            finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
            updates, new_opt_state = optimizer.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            # A non-finite gradient skips the update instead of poisoning the parameters.
            params, opt_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                                             (new_params, new_opt_state), (params, opt_state))
            metrics["skipped_updates"] = 1.0 - finite.astype(jnp.float32)
            return (params, opt_state), metrics

        def epoch(carry, key):
            k_perm, k_mb = jax.random.split(key)
            perm = jax.random.permutation(k_perm, local_batch)
            shuffled = jax.tree.map(lambda x: x[perm].reshape((num_minibatches, -1) + x.shape[1:]), batch)
            return jax.lax.scan(minibatch_step, carry, (shuffled, jax.random.split(k_mb, num_minibatches)))

        (params, opt_state), metrics = jax.lax.scan(epoch, (state.params, state.opt_state),
                                                    jax.random.split(k_epochs, config.mini_epochs))
        replay = replay_lib.insert(state.replay, agent_amp, k_replay, config.replay_keep_prob)

        finished = traj.done.sum()
        metrics = jax.tree.map(jnp.mean, metrics)
        metrics.update({
            "reward/disc": disc_reward.mean(), "reward/enc": enc_reward.mean(), "reward/total": rewards.mean(),
            "episode/length": traj.episode_length.sum() / jnp.maximum(finished, 1.0),
            "episode/finished": finished, "episode/terminated": traj.terminated.sum(),
            "env/nonfinite": traj.nonfinite.sum(), "value/mean": values.mean(),
            "advantage/std_raw": raw_advantage_std,
        })
        sums = {"episode/finished", "episode/terminated", "env/nonfinite"}
        metrics = {k: (jax.lax.psum(v, AXIS) if k in sums else jax.lax.pmean(v, AXIS)) for k, v in metrics.items()}
        new_state = TrainState(params=params, opt_state=opt_state, obs_norm=obs_norm, amp_norm=amp_norm,
                               value_norm=value_norm, replay=replay, env_state=env_state, latents=latents,
                               latent_countdown=countdown, key=key, iteration=state.iteration + 1)
        return new_state, metrics

    def rollout_only(state: TrainState):
        """The collection part of an iteration alone (for benchmarks)."""
        (env_state, latents, countdown), traj = rollout(state, state.key)
        return state.replace(env_state=env_state, latents=latents, latent_countdown=countdown), traj.done.sum()

    return TrainFns(init=pmapped_init(init, devices), loss_and_grad=grad_fn,
                    step=jax.pmap(train_step, axis_name=AXIS, devices=devices, donate_argnums=0),
                    rollout=jax.pmap(rollout_only, axis_name=AXIS, devices=devices), networks=nets,
                    num_devices=num_devices)


@struct.dataclass
class TrainFns:
    init: callable = struct.field(pytree_node=False)
    loss_and_grad: callable = struct.field(pytree_node=False)  # (params, norms, batch, demo, replay, key)
    step: callable = struct.field(pytree_node=False)
    rollout: callable = struct.field(pytree_node=False)
    networks: object = struct.field(pytree_node=False)
    num_devices: int = struct.field(pytree_node=False)
