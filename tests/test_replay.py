"""The discriminator's replay buffer (ase_jax.agents.ase.replay, docs/reference.md §5.6).

Rows carry a unique positive id in their first column, so a test can tell which inserted rows the
buffer holds (unused slots are all zeros).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ase_jax.agents.ase import replay

pytestmark = pytest.mark.timeout(300)

insert = jax.jit(replay.insert, static_argnames=("keep_prob",))
sample = jax.jit(replay.sample, static_argnames=("num",))


def _rows(first_id: int, n: int) -> jnp.ndarray:
    """n rows (id, 2 id): ids first_id .. first_id + n - 1."""
    ids = np.arange(first_id, first_id + n, dtype=np.float32)
    return jnp.asarray(np.stack([ids, 2 * ids], axis=-1))


def _ids(buffer) -> np.ndarray:
    """Ids of the valid rows, in ring order (slot 0 first)."""
    data = np.asarray(buffer.data)
    return data[: int(buffer.count), 0].astype(int)


def _full_buffer(capacity: int, batch: int, key):
    """A buffer filled (and just past the fill phase) with ids 1 ... by batches of `batch` rows."""
    buf = replay.init_replay(capacity, (2,))
    next_id = 1
    while int(buf.total) <= capacity:
        key, k = jax.random.split(key)
        buf = insert(buf, _rows(next_id, batch), k, keep_prob=0.1)
        next_id += batch
    return buf, next_id, key


def test_init_is_empty():
    buf = replay.init_replay(16, (3, 2))
    assert buf.data.shape == (16, 3, 2) and buf.data.dtype == jnp.float32
    assert int(buf.count) == 0 and int(buf.total) == 0 and int(buf.head) == 0


def test_fill_writes_every_row_in_order_until_full():
    """While at most `capacity` rows were offered, every row is kept (whatever keep_prob), in order."""
    buf = replay.init_replay(12, (2,))
    key = jax.random.PRNGKey(0)
    for i in range(3):  # 3 x 4 = 12 rows: exactly full
        buf = insert(buf, _rows(1 + 4 * i, 4), jax.random.fold_in(key, i), keep_prob=0.01)
        assert int(buf.count) == 4 * (i + 1)
        np.testing.assert_array_equal(_ids(buf), np.arange(1, 4 * (i + 1) + 1))
    np.testing.assert_array_equal(np.asarray(buf.data)[:, 1], 2 * np.arange(1, 13))  # whole rows, not just ids


def test_the_batch_that_fills_the_buffer_wraps_over_the_oldest_rows():
    """The last fill-phase batch is written whole: past the end it wraps to slot 0, replacing the oldest."""
    buf = replay.init_replay(10, (2,))
    key = jax.random.PRNGKey(1)
    for i in range(3):  # 12 rows offered into 10 slots; the third batch starts with 8 offered (<= 10)
        buf = insert(buf, _rows(1 + 4 * i, 4), jax.random.fold_in(key, i), keep_prob=0.01)
    assert int(buf.count) == 10
    np.testing.assert_array_equal(_ids(buf), [11, 12, 3, 4, 5, 6, 7, 8, 9, 10])


def test_once_full_new_rows_are_kept_with_keep_prob():
    """Past the fill phase each offered row is kept with probability keep_prob (here 0.1).

    Over 60 batches of 200 rows the kept share must be 0.1 within 0.015 (the reference's Bernoulli
    draws have a standard deviation of 0.0027 here); rows are chosen at random, not from one end of
    the batch, and are whole, distinct rows of the batch.
    """
    capacity, batch, keep_prob, inserts = 2000, 200, 0.1, 60
    buf, next_id, key = _full_buffer(capacity, batch, jax.random.PRNGKey(2))
    kept_total = 0
    kept_first_half = 0
    positions = np.zeros(batch, int)
    for _ in range(inserts):
        before = set(_ids(buf))
        key, k = jax.random.split(key)
        buf = insert(buf, _rows(next_id, batch), k, keep_prob=keep_prob)
        data = np.asarray(buf.data)
        ids = data[:, 0].astype(int)
        new = ids[ids >= next_id]
        assert len(set(new)) == len(new), "a row was stored twice"
        assert np.all(new < next_id + batch), "a stored row is not from the batch"
        np.testing.assert_array_equal(data[ids >= next_id, 1], 2 * new)
        assert set(ids) - set(new) <= before, "old rows were changed"
        assert int(buf.count) == capacity
        kept_total += len(new)
        kept_first_half += int(np.sum(new < next_id + batch // 2))
        positions[new - next_id] += 1
        next_id += batch
    offered = inserts * batch
    assert abs(kept_total / offered - keep_prob) < 0.015, kept_total / offered
    # not always the same rows of the batch: both halves at the same rate, and most positions kept sometimes
    assert abs(kept_first_half / (offered / 2) - keep_prob) < 0.025, kept_first_half / (offered / 2)
    assert np.count_nonzero(positions) > 0.8 * batch, np.count_nonzero(positions)  # P(never) = 0.9^60 = 0.002


def test_once_full_writes_go_round_the_ring_evicting_the_oldest_rows():
    """Kept rows replace the oldest stored rows; the write position wraps round the buffer."""
    capacity, batch, keep_prob = 50, 20, 0.25  # 5 rows kept per batch
    buf, next_id, key = _full_buffer(capacity, batch, jax.random.PRNGKey(3))
    # age of each id = the insert it came in with (ids of one insert share an age)
    age = {}
    for i in range(1, next_id):
        age[i] = (i - 1) // batch
    head_slots = []
    for step in range(25):  # 25 x 5 = 125 rows: round the ring 2.5 times
        before = _ids(buf)
        key, k = jax.random.split(key)
        buf = insert(buf, _rows(next_id, batch), k, keep_prob=keep_prob)
        after = _ids(buf)
        for i in range(next_id, next_id + batch):
            age[i] = 1000 + step
        changed = np.nonzero(before != after)[0]
        assert len(changed) == 5
        head_slots.append(changed)
        evicted, survivors = set(before) - set(after), set(before) & set(after)
        assert max(age[i] for i in evicted) <= min(age[i] for i in survivors), (evicted, survivors)
        next_id += batch
    # the changed slots are consecutive modulo capacity and follow on from one insert to the next
    starts = []
    for c in head_slots:
        first = [s for s in c if (s - 1) % capacity not in c]
        assert len(first) == 1, c  # one block of consecutive slots (mod capacity)
        starts.append(first[0])
    for s0, s1 in zip(starts, starts[1:]):
        assert s1 == (s0 + 5) % capacity
    # after 125 kept rows through 50 slots, only rows from the last 10 inserts remain
    assert min(age[i] for i in _ids(buf)) >= 1000 + 15


def test_a_batch_larger_than_the_buffer_keeps_a_random_subset():
    buf = replay.init_replay(8, (2,))
    buf = insert(buf, _rows(1, 100), jax.random.PRNGKey(4), keep_prob=0.5)
    ids = _ids(buf)
    assert int(buf.count) == 8 and len(set(ids)) == 8 and np.all((ids >= 1) & (ids <= 100))
    assert not np.array_equal(np.sort(ids), np.arange(1, 9)), "not random: the first rows"


def test_sample_draws_only_stored_rows_uniformly():
    buf = replay.init_replay(64, (2,))
    buf = insert(buf, _rows(1, 10), jax.random.PRNGKey(5), keep_prob=0.01)  # 10 of 64 slots used
    fallback = _rows(1000, 3)
    rows = np.asarray(sample(buf, jax.random.PRNGKey(6), 5000, fallback))
    assert rows.shape == (5000, 2)
    ids = rows[:, 0].astype(int)
    assert set(ids) == set(range(1, 11)), set(ids)  # only stored rows (never an empty slot or the fallback)
    np.testing.assert_array_equal(rows[:, 1], 2 * rows[:, 0])
    counts = np.bincount(ids, minlength=11)[1:]
    assert np.all(np.abs(counts - 500) < 100), counts  # uniform: std of each count is 21


def test_sample_from_a_full_ring_uses_every_slot():
    buf = replay.init_replay(16, (2,))
    for i in range(3):
        buf = insert(buf, _rows(1 + 8 * i, 8), jax.random.PRNGKey(i), keep_prob=0.01)  # ids 9..24 remain
    rows = np.asarray(sample(buf, jax.random.PRNGKey(7), 4000, _rows(1000, 2)))
    assert set(rows[:, 0].astype(int)) == set(range(9, 25))


def test_sample_from_an_empty_buffer_returns_fallback_rows():
    buf = replay.init_replay(32, (2,))
    fallback = _rows(500, 4)
    rows = np.asarray(sample(buf, jax.random.PRNGKey(8), 1000, fallback))
    assert rows.shape == (1000, 2)
    assert set(rows[:, 0].astype(int)) == {500, 501, 502, 503}
    np.testing.assert_array_equal(rows[:, 1], 2 * rows[:, 0])
