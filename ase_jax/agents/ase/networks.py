"""ASE networks: skill-conditioned actor, critic, and the discriminator with its encoder.

Architecture and initialisation follow docs/reference.md §5.2. Hidden stacks reuse brax's `MLP`
(ReLU between layers, zero bias init); only the kernel initialiser is swapped for PyTorch's
default `Linear` init, since the reference trains from that init. Inputs are expected already
normalised (the running normalisers live in the training state, as in brax).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from brax.training import networks as brax_networks
from flax import linen as nn

Params = Any  # a flax variables dict: {"params": {...}}
Initializer = jax.nn.initializers.Initializer

# PyTorch's default Linear init, kaiming_uniform(a=sqrt(5)), is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
TORCH_DEFAULT_INIT: Initializer = jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

# Parameter-tree names of the discriminator's layers; the losses use them to find the kernels.
DISC_TRUNK = "trunk"
DISC_LOGIT = "logit_layer"
DISC_ENCODER = "enc_layer"
ENC_TRUNK = "enc_trunk"  # the encoder's own hidden layers, with `separate_encoder`
ENCODER_LAYERS = frozenset({DISC_ENCODER, ENC_TRUNK})  # the disc tree's layers that belong to the encoder alone


def symmetric_uniform(scale: float) -> Initializer:
    """An initialiser drawing U(-scale, scale) (jax's `uniform` only draws U(0, scale))."""

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """x / max(|x|, eps) along the last axis, as torch.nn.functional.normalize."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


class Actor(nn.Module):
    """Policy mean mu(obs, z) of `AMPStyleCatNet1` (docs/reference.md §5.2).

    The latent z passes through a style MLP ending in tanh; the trunk sees concat(obs, style).
    The style MLP's output layer is drawn U(-style_init_scale, style_init_scale) (the reference: 1).
    With latent_dim 0 (plain AMP) there is no style branch: mu(obs) is the trunk on obs alone, the
    reference AMP's actor (`amp_humanoid.yaml`); z, of shape (..., 0), is ignored.
    """

    action_size: int
    latent_dim: int = 64
    units: Sequence[int] = (1024, 1024, 512)
    style_units: Sequence[int] = (512, 256)
    style_init_scale: float = 1.0

    @nn.compact
    def __call__(self, obs: jax.Array, z: jax.Array) -> jax.Array:
        if self.latent_dim == 0:
            return brax_networks.MLP(
                layer_sizes=tuple(self.units) + (self.action_size,), activation=nn.relu,
                kernel_init=TORCH_DEFAULT_INIT, name="trunk")(obs)
        style = brax_networks.MLP(
            layer_sizes=tuple(self.style_units) + (self.latent_dim,), activation=nn.relu,
            kernel_init=TORCH_DEFAULT_INIT, output_kernel_init=symmetric_uniform(self.style_init_scale), name="style")(z)
        hidden = jnp.concatenate([obs, jnp.tanh(style)], axis=-1)
        return brax_networks.MLP(
            layer_sizes=tuple(self.units) + (self.action_size,), activation=nn.relu,
            kernel_init=TORCH_DEFAULT_INIT, name="trunk")(hidden)


class Critic(nn.Module):
    """Value V(obs, z) in normalised units, from concat(obs, z) (`AMPMLPNet`, docs/reference.md §5.2);
    for plain AMP z has shape (..., 0) and the input is obs alone."""

    units: Sequence[int] = (1024, 1024, 512)

    @nn.compact
    def __call__(self, obs: jax.Array, z: jax.Array) -> jax.Array:
        hidden = jnp.concatenate([obs, z], axis=-1)
        value = brax_networks.MLP(
            layer_sizes=tuple(self.units) + (1,), activation=nn.relu,
            kernel_init=TORCH_DEFAULT_INIT, name="mlp")(hidden)
        return jnp.squeeze(value, axis=-1)


class DiscEnc(nn.Module):
    """Discriminator logit D(o) and encoder e(o) (docs/reference.md §5.2).

    As the reference (`enc.separate: False`), both heads read one shared trunk; with `separate`
    the encoder has hidden layers of its own of the same sizes (MimicKit's layout). Input is the
    normalised, flattened discriminator-observation history. `__call__` returns (logit, encoding);
    `logit` and `encode` compute one output only (use them with `apply(..., method=...)`).
    With latent_dim 0 (plain AMP) there is no encoder: the encoding has shape (..., 0).
    """

    latent_dim: int = 64
    units: Sequence[int] = (1024, 1024, 512)
    separate: bool = False

    def setup(self) -> None:
        # Hidden layers only (activate_final): the heads read the last ReLU features.
        # (setup names submodules after their attributes: `trunk` is DISC_TRUNK, `enc_trunk` ENC_TRUNK)
        mlp = lambda: brax_networks.MLP(layer_sizes=tuple(self.units), activation=nn.relu,
                                        kernel_init=TORCH_DEFAULT_INIT, activate_final=True)
        self.trunk = mlp()
        if self.separate:
            self.enc_trunk = mlp()
        self.logit_layer = nn.Dense(1, kernel_init=symmetric_uniform(1.0))
        if self.latent_dim > 0:
            self.enc_layer = nn.Dense(self.latent_dim, kernel_init=symmetric_uniform(0.1))

    def __call__(self, amp_obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        features = self.trunk(amp_obs)
        enc_features = self._enc_features(amp_obs) if self.separate else features  # one trunk pass when shared
        return self._logit_head(features), self._enc_head(enc_features)

    def logit(self, amp_obs: jax.Array) -> jax.Array:
        """The discriminator logit D(o), shape (...,)."""
        return self._logit_head(self.trunk(amp_obs))

    def encode(self, amp_obs: jax.Array) -> jax.Array:
        """The unit-norm encoder output e(o), shape (..., latent_dim)."""
        return self._enc_head(self._enc_features(amp_obs))

    def _enc_features(self, amp_obs: jax.Array) -> jax.Array:
        return (self.enc_trunk if self.separate else self.trunk)(amp_obs)

    def _logit_head(self, features: jax.Array) -> jax.Array:
        return jnp.squeeze(self.logit_layer(features), axis=-1)

    def _enc_head(self, features: jax.Array) -> jax.Array:
        if self.latent_dim == 0:
            return jnp.zeros(features.shape[:-1] + (0,), features.dtype)
        return l2_normalize(self.enc_layer(features).astype(jnp.float32))  # the norm in float32 under bfloat16


def in_compute_dtype(apply: Callable, dtype) -> Callable:
    """`apply(params, *inputs, **kw)` computing in `dtype`: floating parameters and inputs cast to it
    on the way in (the float32 parameters get float32 gradients through the cast), every output back
    to float32, so that losses and their reductions stay float32. The identity for float32.

    Casting around `apply` keeps brax's MLP (which has no dtype attribute) and the parameter tree
    unchanged, so checkpoints are the same whatever the compute dtype."""
    if jnp.dtype(dtype) == jnp.float32:
        return apply
    cast = lambda tree, to: jax.tree.map(
        lambda x: x.astype(to) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)

    def apply_in_dtype(params, *inputs, **kwargs):
        return cast(apply(cast(params, dtype), *cast(inputs, dtype), **kwargs), jnp.float32)

    return apply_in_dtype


@dataclasses.dataclass(frozen=True)
class ASENetworks:
    """The three ASE modules, their input sizes and the fixed action log-std (docs/reference.md §4.2);
    `compute_dtype` is the dtype their layers compute in (parameters and outputs are float32)."""

    actor: Actor
    critic: Critic
    disc: DiscEnc
    obs_size: int
    amp_obs_size: int
    action_size: int
    latent_dim: int
    log_std: float
    compute_dtype: str = "float32"

    def _apply(self, module: nn.Module) -> Callable:
        return in_compute_dtype(module.apply, self.compute_dtype)

    def actor_apply(self, params: Params, obs: jax.Array, z: jax.Array) -> jax.Array:
        """Action mean mu(obs, z); obs normalised, z unit-norm."""
        return self._apply(self.actor)(params, obs, z)

    def critic_apply(self, params: Params, obs: jax.Array, z: jax.Array) -> jax.Array:
        """Value V(obs, z) in normalised value units."""
        return self._apply(self.critic)(params, obs, z)

    def disc_enc_apply(self, params: Params, amp_obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(D(o), e(o)) from one trunk pass over normalised discriminator obs."""
        return self._apply(self.disc)(params, amp_obs)

    def disc_logit_apply(self, params: Params, amp_obs: jax.Array) -> jax.Array:
        """The discriminator logit D(o) only."""
        return self._apply(self.disc)(params, amp_obs, method=DiscEnc.logit)

    def encode_apply(self, params: Params, amp_obs: jax.Array) -> jax.Array:
        """The unit-norm encoding e(o) only."""
        return self._apply(self.disc)(params, amp_obs, method=DiscEnc.encode)


def make_ase_networks(
    obs_size: int,
    amp_obs_size: int,
    action_size: int,
    latent_dim: int = 64,
    actor_units: Sequence[int] = (1024, 1024, 512),
    style_units: Sequence[int] = (512, 256),
    critic_units: Sequence[int] = (1024, 1024, 512),
    disc_units: Sequence[int] = (1024, 1024, 512),
    log_std: float = -2.9,
    style_init_scale: float = 1.0,
    separate_encoder: bool = False,
    compute_dtype: str = "float32",
) -> ASENetworks:
    """Builds the ASE actor, critic and discriminator/encoder for the given sizes (docs/reference.md §5.2)."""
    # Tuples keep the modules hashable when sizes come from a config as lists.
    return ASENetworks(
        actor=Actor(action_size=action_size, latent_dim=latent_dim, units=tuple(actor_units),
                    style_units=tuple(style_units), style_init_scale=float(style_init_scale)),
        critic=Critic(units=tuple(critic_units)),
        disc=DiscEnc(latent_dim=latent_dim, units=tuple(disc_units), separate=bool(separate_encoder)),
        obs_size=obs_size, amp_obs_size=amp_obs_size, action_size=action_size, latent_dim=latent_dim,
        log_std=float(log_std), compute_dtype=compute_dtype)


def networks_for(config, obs_size: int, amp_obs_size: int, action_size: int) -> ASENetworks:
    """The ASE networks for these input and action sizes with a pre-training config's layer sizes
    (`amp_obs_size`: one flattened discriminator history)."""
    return make_ase_networks(
        obs_size=obs_size, amp_obs_size=amp_obs_size, action_size=action_size, latent_dim=config.ase.latent_dim,
        actor_units=config.ppo.actor_units, style_units=config.ase.style_units, critic_units=config.ppo.critic_units,
        disc_units=config.ase.disc_units, log_std=config.ppo.action_log_std,
        style_init_scale=config.ase.style_init_scale, separate_encoder=config.ase.separate_encoder,
        compute_dtype=config.ppo.compute_dtype)


def init_params(networks: ASENetworks, key: jax.Array) -> dict[str, Params]:
    """Fresh parameters {"actor", "critic", "disc"} for `networks`."""
    k_actor, k_critic, k_disc = jax.random.split(key, 3)
    obs = jnp.zeros((1, networks.obs_size))
    z = jnp.zeros((1, networks.latent_dim))
    amp_obs = jnp.zeros((1, networks.amp_obs_size))
    return {
        "actor": networks.actor.init(k_actor, obs, z),
        "critic": networks.critic.init(k_critic, obs, z),
        "disc": networks.disc.init(k_disc, amp_obs),
    }


def disc_logit_kernel(disc_params: Params) -> jax.Array:
    """The logit layer's weight matrix (penalised by `disc_logit_reg`, docs/reference.md §5.4)."""
    return disc_params["params"][DISC_LOGIT]["kernel"]


def disc_kernels(disc_params: Params) -> list[jax.Array]:
    """Weight matrices of the trunk and the logit layer, without biases and the encoder (its head,
    and its own trunk where it has one).

    These are the weights `disc_weight_decay` covers (docs/reference.md §5.4).
    """
    leaves = jax.tree_util.tree_flatten_with_path(disc_params)[0]
    names = lambda path: [getattr(k, "key", None) for k in path]
    return [leaf for path, leaf in leaves
            if names(path)[-1] == "kernel" and not ENCODER_LAYERS & set(names(path))]


def parameter_group(path: tuple[str, ...]) -> str:
    """The optimiser group of a parameter, from its path of keys in {"actor", "critic", "disc"}:
    the top-level key, except "enc" for the encoder's own layers (its head, and its trunk where it
    has one of its own)."""
    if path[0] == "disc" and ENCODER_LAYERS & set(path):
        return "enc"
    return path[0]


def sample_latents(key: jax.Array, shape: Sequence[int], latent_dim: int) -> jax.Array:
    """Skill latents uniform on the unit sphere S^(latent_dim-1): normalised N(0, I) (docs/reference.md §5.1);
    empty (shape (..., 0)) for plain AMP."""
    return l2_normalize(jax.random.normal(key, tuple(shape) + (latent_dim,)))


def sample_latent_steps(key: jax.Array, shape: Sequence[int], low: int = 1, high: int = 150) -> jax.Array:
    """Control steps until the next latent switch: randint(low, high), high exclusive (docs/reference.md §5.1)."""
    return jax.random.randint(key, tuple(shape), low, high)
