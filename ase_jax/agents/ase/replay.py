"""Replay buffer of past agent discriminator observations (docs/reference.md §5.6).

The reference stores every agent sample until the buffer has seen more than its capacity, then
keeps each new sample with probability `keep_prob`. Shapes must be static under jit, so here the
fill phase writes the whole batch and the steady phase writes round(batch x keep_prob) randomly
chosen samples per iteration: the same expected number as the reference's Bernoulli draws. Writes
go to a ring position, as in the reference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayBuffer:
    data: jax.Array  # (capacity, ...) samples
    count: jax.Array  # int32: valid samples (<= capacity)
    total: jax.Array  # int32: samples ever offered (decides fill vs steady phase); saturates
    head: jax.Array  # int32: next ring position


def init_replay(capacity: int, sample_shape, dtype=jnp.float32) -> ReplayBuffer:
    zero = jnp.zeros((), jnp.int32)
    return ReplayBuffer(jnp.zeros((capacity,) + tuple(sample_shape), dtype), zero, zero, zero)


def _write(buffer: ReplayBuffer, samples: jax.Array) -> ReplayBuffer:
    capacity = buffer.data.shape[0]
    n = samples.shape[0]
    idx = (buffer.head + jnp.arange(n)) % capacity
    return buffer.replace(data=buffer.data.at[idx].set(samples), count=jnp.minimum(buffer.count + n, capacity),
                          head=(buffer.head + n) % capacity)


def insert(buffer: ReplayBuffer, samples: jax.Array, key: jax.Array, keep_prob: float) -> ReplayBuffer:
    capacity = buffer.data.shape[0]
    if samples.shape[0] > capacity:  # keep a random subset that fits, as the reference does
        samples = jax.random.permutation(key, samples)[:capacity]
    n = samples.shape[0]
    num_keep = min(n, max(1, int(round(n * keep_prob))))

    def fill(buf):
        return _write(buf, samples)

    def steady(buf):
        return _write(buf, jax.random.choice(key, samples, (num_keep,), replace=False))

    out = fill(buffer) if num_keep == n else jax.lax.cond(buffer.total <= capacity, fill, steady, buffer)
    # `total` only needs to tell whether more than `capacity` samples were offered: saturate it.
    return out.replace(total=jnp.minimum(buffer.total + n, capacity + 1))


def sample(buffer: ReplayBuffer, key: jax.Array, num: int, fallback: jax.Array) -> jax.Array:
    """`num` samples drawn uniformly from the valid part; from `fallback` while the buffer is empty."""
    k_idx, k_fallback = jax.random.split(key)
    idx = jax.random.randint(k_idx, (num,), 0, jnp.maximum(buffer.count, 1))
    fb_idx = jax.random.randint(k_fallback, (num,), 0, fallback.shape[0])
    return jnp.where(buffer.count > 0, buffer.data[idx].reshape((num,) + fallback.shape[1:]),
                     fallback[fb_idx])
