"""The PPO machinery that ASE pre-training and task training share.

Both iterations are one compiled program per device, `pmap`ped over the local devices (over the
devices of all processes in a multi-process run, `ase_jax.distributed`): each device simulates its
share of the environments, and gradients and normaliser statistics are averaged over devices, so
that the parameters stay identical everywhere. An algorithm supplies its rollout, its
rewards and its loss; this module supplies the rest:

    split_over_devices / pmapped_init / compile_train_fns   the device split and the pmap boundary
    make_optimizer                                           Adam, optional clip, non-finite skip
    init_normalizer / normalize / update_normalizer          running observation and value statistics
    denormalize_values / normalize_returns                   value units, with the reference's ±5 clamp
    sample_actions                                           the fixed-std Gaussian policy
    advantages_and_returns                                   GAE, then standardised advantages
    ppo_loss                                                 clipped actor + critic + bounds terms
    update                                                   mini-epochs x shuffled minibatches
    reduce_metrics                                           means (or sums) over devices

Normalisers are updated once per iteration from the whole batch (brax's convention; the reference
updates per minibatch). Their std is sqrt(var + 1e-5), the reference's epsilon (docs/reference.md
§3.1), where brax's default would let a near-constant feature blow up to the clip value.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from brax.training import distribution
from brax.training.acme import running_statistics
from brax.training.acme.specs import Array as Spec
from flax import struct

from ase_jax.config.keys import ConfigError
from ase_jax.config.sections import PPOConfig

AXIS = "devices"
NORM_STD_EPS = 1e-5  # rl_games RunningMeanStd epsilon (docs/reference.md §3.1)
Normalizer = running_statistics.RunningStatisticsState


# --- loss terms: pure functions over arrays --------------------------------------------------


def gaussian_log_prob(actions: jax.Array, mean: jax.Array, log_std: float) -> jax.Array:
    """log N(actions; mean, exp(log_std)^2 I), summed over action dims (fixed std, docs/reference.md §4.2)."""
    std = jnp.full_like(mean, jnp.exp(log_std))
    return distribution.NormalDistribution(mean.shape[-1]).log_prob((mean, std), actions)


# --- advantages (docs/reference.md §5.5, §5.7) -----------------------------------------------------------------


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    dones: jax.Array,
    terminated: jax.Array,
    gamma: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    """GAE over time-major (T, N) arrays; returns (advantages, returns = advantages + values).

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t): time-outs keep their bootstrap
    (docs/reference.md §5.7); A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}: the recursion is cut at every
    done; A after the last step is 0 (docs/reference.md §5.5, rl_games `discount_values`).
    """
    deltas = rewards + gamma * next_values * (1.0 - terminated) - values

    def step(next_adv: jax.Array, inputs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, done = inputs
        adv = delta + gamma * lam * (1.0 - done) * next_adv
        return adv, adv

    _, advantages = jax.lax.scan(step, jnp.zeros_like(values[0]), (deltas, dones.astype(deltas.dtype)),
                                 reverse=True)
    return advantages, advantages + values


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """sum(x * mask) / sum(mask); 0 when the mask is empty."""
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1e-8)


def standardize(x: jax.Array, mask: jax.Array, axis_name: str | None = None, eps: float = 1e-8) -> jax.Array:
    """(x - mean) / (std + eps) with mean and unbiased std over masked samples, applied to all.

    rl_games `normalization_with_masks` (docs/reference.md §5.5). With `axis_name`, the statistics are pooled
    over the devices of a pmap.
    """
    mask = mask.astype(x.dtype)
    sums = jnp.stack([jnp.sum(mask), jnp.sum(x * mask), jnp.sum(jnp.square(x) * mask)])
    if axis_name is not None:
        sums = jax.lax.psum(sums, axis_name)
    count, total, total_sq = sums[0], sums[1], sums[2]
    mean = total / jnp.maximum(count, 1.0)
    var = (total_sq - count * jnp.square(mean)) / jnp.maximum(count - 1.0, 1.0)
    return (x - mean) / (jnp.sqrt(jnp.maximum(var, 0.0)) + eps)


# --- PPO terms (docs/reference.md §5.4) -----------------------------------------------------------------------


def ppo_actor_loss(
    logp_new: jax.Array, logp_old: jax.Array, advantages: jax.Array, mask: jax.Array, clip: float = 0.2
) -> jax.Array:
    """Clipped surrogate: masked mean of max(-A r, -A clip(r, 1-clip, 1+clip)), r = exp(logp_new - logp_old)."""
    ratio = jnp.exp(logp_new - logp_old)
    loss = jnp.maximum(-advantages * ratio, -advantages * jnp.clip(ratio, 1.0 - clip, 1.0 + clip))
    return masked_mean(loss, mask)


def critic_loss(values: jax.Array, returns: jax.Array) -> jax.Array:
    """Mean over all samples of (R - V)^2, both in normalised units; no PPO value clipping (rl_games'
    `clip_value`, off in the reference; docs/reference.md §5.4)."""
    return jnp.mean(jnp.square(returns - values))


def bounds_loss(mu: jax.Array, mask: jax.Array, bound: float = 1.0) -> jax.Array:
    """Masked mean of sum over action dims of max(mu - b, 0)^2 + min(mu + b, 0)^2 (docs/reference.md §5.4)."""
    per_sample = jnp.sum(jnp.square(jnp.maximum(mu - bound, 0.0)) + jnp.square(jnp.minimum(mu + bound, 0.0)),
                         axis=-1)
    return masked_mean(per_sample, mask)


# --- devices -------------------------------------------------------------------------------------


class DeviceSplit(NamedTuple):
    devices: list
    local_envs: int  # environments each device simulates
    local_batch: int  # transitions each device collects per iteration
    num_minibatches: int  # minibatches per epoch on each device


def split_over_devices(ppo: PPOConfig, num_devices: int | None = None) -> DeviceSplit:
    """How an iteration's environments and minibatches divide over the first `num_devices` local
    devices (all of them by default); a ConfigError when they do not divide evenly.

    In a multi-process run (`jax.distributed`) the split is over the devices of all processes,
    ordered by process: global device g = process_index x local devices + local index, and each
    process feeds and reads back the rows of its own devices only (pmap's per-process view)."""
    if jax.process_count() > 1:
        if num_devices is not None:
            raise ConfigError(f"num_devices={num_devices}: a multi-process run uses every device of every process")
        devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    else:
        devices = jax.local_devices()[: num_devices or jax.local_device_count()]
    n = len(devices)
    if ppo.num_envs % n:
        raise ConfigError(f"num_envs={ppo.num_envs} must be divisible by the {n} devices")
    local_envs = ppo.num_envs // n
    local_batch = local_envs * ppo.horizon
    if local_batch % ppo.minibatch_size:
        raise ConfigError(f"minibatch_size={ppo.minibatch_size} must divide num_envs x horizon / devices = "
                          f"{ppo.num_envs} x {ppo.horizon} / {n} = {local_batch}")
    return DeviceSplit(devices, local_envs, local_batch, local_batch // ppo.minibatch_size)


def pmapped_init(init: Callable, devices) -> Callable:
    """`key -> state` from `init(param_key, env_key)`, pmapped: every device starts from the same
    parameters and from its own environments. Device g of `devices` gets env key g of
    `split(env_key, len(devices))` wherever it is, so a run over 2 processes x 1 device starts
    exactly as one over 1 process x 2 devices (each process passes the keys of its own devices)."""
    pinit = jax.pmap(init, axis_name=AXIS, devices=devices)
    mine = [g for g, d in enumerate(devices) if d.process_index == jax.process_index()]

    def init_state(key):
        param_key, env_key = jax.random.split(key)
        env_keys = jax.random.split(env_key, len(devices))
        if len(mine) < len(devices):  # multi-process: this process's devices only
            env_keys = env_keys[jnp.asarray(mine)]
        return pinit(jnp.broadcast_to(param_key, (len(mine),) + param_key.shape), env_keys)

    return init_state


@struct.dataclass
class TrainFns:
    """An algorithm's compiled functions: `init(key) -> state`, `step(state) -> (state, metrics)`
    (one whole iteration) and `rollout(state) -> (state, episodes finished)` (collection only, for
    benchmarks); all pmapped, states carry a leading device axis. `place(state)` puts a state read
    from disk (host arrays) on the devices as `init` leaves one, so that `step` is called with the
    inputs it was compiled (and cached) for."""

    init: Callable = struct.field(pytree_node=False)
    step: Callable = struct.field(pytree_node=False)
    rollout: Callable = struct.field(pytree_node=False)
    networks: object = struct.field(pytree_node=False)
    num_devices: int = struct.field(pytree_node=False)
    loss_and_grad: Callable | None = struct.field(pytree_node=False, default=None)
    place: Callable = struct.field(pytree_node=False, default=lambda state: state)


def compile_train_fns(init, train_step, rollout_only, devices, networks, loss_and_grad=None) -> TrainFns:
    """The pmap boundary: one compiled program per iteration (the step donates its input state)."""
    return TrainFns(init=pmapped_init(init, devices),
                    step=jax.pmap(train_step, axis_name=AXIS, devices=devices, donate_argnums=0),
                    rollout=jax.pmap(rollout_only, axis_name=AXIS, devices=devices), networks=networks,
                    num_devices=len(devices), loss_and_grad=loss_and_grad,
                    place=jax.pmap(lambda state: state, axis_name=AXIS, devices=devices))


# --- optimiser and normalisers -------------------------------------------------------------------


def make_optimizer(ppo: PPOConfig, group_rates: dict[str, float] | None = None,
                   group_of: Callable[[tuple[str, ...]], str] | None = None) -> optax.GradientTransformation:
    """Adam (eps 1e-8, as torch), with a global-norm clip when `max_grad_norm` > 0. A gradient with
    a non-finite entry is skipped (zero update, Adam moments kept) instead of poisoning the
    parameters; the run loop stops after `max_bad_iterations` iterations of only skips, so the
    skip never gives up by itself here.

    `group_rates` gives groups of parameters learning rates of their own (0 or absent:
    `learning_rate`); a parameter's group is `group_of(path)` of its path of dict keys, by default
    the top-level key ("actor", "critic", "disc"). Adam is elementwise, so groups at one rate equal
    a single Adam: the plain optimiser (and its state's layout) is kept unless a rate differs."""
    rates = {k: v for k, v in (group_rates or {}).items() if v > 0 and v != ppo.learning_rate}
    if rates:
        group_of = group_of or (lambda names: names[0])

        def labels(params):
            def label(path, _):
                group = group_of(tuple(str(getattr(k, "key", k)) for k in path))
                return group if group in rates else "default"
            return jax.tree_util.tree_map_with_path(label, params)

        optimizer = optax.multi_transform(
            {"default": optax.adam(ppo.learning_rate, eps=1e-8), **{k: optax.adam(v, eps=1e-8) for k, v in rates.items()}},
            labels)
    else:
        optimizer = optax.adam(ppo.learning_rate, eps=1e-8)
    if ppo.max_grad_norm > 0:
        optimizer = optax.chain(optax.clip_by_global_norm(ppo.max_grad_norm), optimizer)
    return optax.apply_if_finite(optimizer, max_consecutive_errors=2**30)


def init_normalizer(shape) -> Normalizer:
    state = running_statistics.init_state(Spec(tuple(shape), jnp.float32), std_eps=NORM_STD_EPS)
    # brax keeps std_eps as a Python float, which a pmapped init turns into a weakly typed array; a
    # restored checkpoint's is strongly typed, so the training step would not be the program that was
    # compiled (and cached) for a fresh start. Strongly typed from the start: the same values.
    return state.replace(std_eps=jnp.asarray(NORM_STD_EPS, jnp.float32))


def normalize(x: jax.Array, state: Normalizer, clip: float | None) -> jax.Array:
    return running_statistics.normalize(x, state, max_abs_value=clip)


def denormalize(x: jax.Array, state: Normalizer, clip: float | None = None) -> jax.Array:
    """x x std + mean; with `clip` > 0, x is first clamped to [-clip, clip] (rl_games' `unnorm`)."""
    if clip:
        x = jnp.clip(x, -clip, clip)
    return running_statistics.denormalize(x, state)


def value_clip(ppo: PPOConfig) -> float | None:
    """The clamp of normalised values (`normalize_value_clip`), None when it is off (0)."""
    return ppo.normalize_value_clip or None


def denormalize_values(values: jax.Array, value_norm: Normalizer, ppo: PPOConfig) -> jax.Array:
    """The critic's output (normalised units) in return units for GAE: clamped to
    ±`normalize_value_clip` first, as rl_games' value normaliser does (docs/reference.md §5.4)."""
    return denormalize(values, value_norm, value_clip(ppo))


def normalize_returns(returns: jax.Array, value_norm: Normalizer, ppo: PPOConfig) -> jax.Array:
    """The critic's target: returns in normalised units, clamped to ±`normalize_value_clip`
    (docs/reference.md §5.4)."""
    return normalize(returns, value_norm, value_clip(ppo))


def update_normalizer(state: Normalizer, batch: jax.Array) -> Normalizer:
    """Statistics updated with `batch` (rows of the normaliser's shape) pooled over all devices."""
    return running_statistics.update(state, batch, pmap_axis_name=AXIS)


# --- policy, advantages and loss -----------------------------------------------------------------


def sample_actions(key, mu: jax.Array, log_std: float, stochastic: jax.Array | None = None):
    """(actions, log-probabilities) of the fixed-std Gaussian around `mu`; rows whose `stochastic`
    is 0 play the mean (the reference's epsilon-greedy envs) but keep their log-probability."""
    noise = jnp.exp(log_std) * jax.random.normal(key, mu.shape)
    if stochastic is not None:
        noise = stochastic[:, None] * noise
    actions = mu + noise
    return actions, gaussian_log_prob(actions, mu, log_std)


def advantages_and_returns(rewards, values, next_values, done, terminated, mask, ppo: PPOConfig):
    """(standardised advantages, returns, std of the raw advantages) of a time-major (T, N) rollout.

    GAE bootstraps on time-outs but not on terminations; the standardisation's statistics are taken
    over the masked samples of all devices (docs/reference.md §5.5, §5.7)."""
    advantages, returns = compute_gae(rewards, values, next_values, done, terminated, ppo.gamma,
                                             ppo.gae_lambda)
    raw_std = advantages.std()
    return standardize(advantages, mask, axis_name=AXIS), returns, raw_std


def ppo_loss(mu, values, minibatch: dict, mask, value_norm: Normalizer, ppo: PPOConfig):
    """(loss, metrics): clipped surrogate + critic_coef x value loss (normalised returns, clamped) +
    bounds_coef x action-bounds loss. `minibatch` holds actions, log_prob, advantages and returns
    from the rollout; `mask` weights the actor and bounds terms (docs/reference.md §5.4)."""
    log_prob = gaussian_log_prob(minibatch["actions"], mu, ppo.action_log_std)
    actor = ppo_actor_loss(log_prob, minibatch["log_prob"], minibatch["advantages"], mask, ppo.ppo_clip)
    critic = critic_loss(values, normalize_returns(minibatch["returns"], value_norm, ppo))
    bounds = bounds_loss(mu, mask)
    total = actor + ppo.critic_coef * critic + ppo.bounds_coef * bounds
    return total, {"loss/actor": actor, "loss/critic": critic, "loss/bounds": bounds}


def flatten_time(batch: dict) -> dict:
    """(T, N, ...) leaves to (T x N, ...)."""
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)


def update(loss_and_grad: Callable, optimizer: optax.GradientTransformation, params, opt_state, batch: dict,
           key, ppo: PPOConfig, num_minibatches: int):
    """`mini_epochs` passes over `batch` (flat leaves of one device's samples), each in a fresh
    random order cut into `num_minibatches` minibatches with one optimiser step each; gradients are
    averaged over devices first. `loss_and_grad(params, minibatch, key) -> ((loss, metrics), grads)`
    gets its own key per minibatch. Returns (params, opt_state, metrics averaged over all steps,
    with `skipped_updates` the share of steps skipped for non-finite gradients)."""

    def minibatch_step(carry, inputs):
        params, opt_state = carry
        minibatch, key = inputs
        (loss, metrics), grads = loss_and_grad(params, minibatch, key)
        grads = jax.lax.pmean(grads, AXIS)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = dict(metrics, **{"loss/total": loss,
                                   "skipped_updates": 1.0 - opt_state.last_finite.astype(jnp.float32)})
        return (params, opt_state), metrics

    def epoch(carry, key):
        k_perm, k_steps = jax.random.split(key)
        perm = jax.random.permutation(k_perm, jax.tree.leaves(batch)[0].shape[0])
        shuffled = jax.tree.map(lambda x: x[perm].reshape((num_minibatches, -1) + x.shape[1:]), batch)
        return jax.lax.scan(minibatch_step, carry, (shuffled, jax.random.split(k_steps, num_minibatches)))

    (params, opt_state), metrics = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, ppo.mini_epochs))
    return params, opt_state, jax.tree.map(jnp.mean, metrics)


def reduce_metrics(metrics: dict, sums=()) -> dict:
    """Per-device metrics to whole-run ones: sums over devices for the keys in `sums`, means otherwise."""
    return {k: (jax.lax.psum(v, AXIS) if k in sums else jax.lax.pmean(v, AXIS)) for k, v in metrics.items()}
