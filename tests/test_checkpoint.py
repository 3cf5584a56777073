"""Checkpoint format and resume checks on small pytrees (no MJX): leaves saved by tree path, a saved
state that does not fit is refused without touching it, unreadable checkpoints are set aside."""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import struct

from ase_jax.checkpoint import find_checkpoint, read_checkpoint, read_saved_config
from ase_jax.checkpoint.checkpointer import Checkpointer
from ase_jax.checkpoint.layout import select_subtree
from ase_jax.checkpoint.mismatch import CheckpointMismatch
from ase_jax.checkpoint.reading import UnreadableCheckpoint
from ase_jax.errors import AseInputError
from conftest import CHECKPOINT_DAMAGE

CONFIG = {"task": "heading", "num_envs": 4, "ppo": {"horizon": 4}}


@struct.dataclass
class Data:
    qpos: jax.Array
    contact: jax.Array  # zero-size, as MJX data has


@struct.dataclass
class State:
    params: dict
    data: Data
    iteration: jax.Array


@struct.dataclass
class StateWithExtra:
    params: dict
    data: Data
    iteration: jax.Array
    bonus: jax.Array


@struct.dataclass
class StateReordered:  # the same fields as State, in another order
    iteration: jax.Array
    data: Data
    params: dict


def _state(dense=(3, 2), dtype=jnp.float32, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    return State(params={"dense": {"kernel": jax.random.normal(k1, (1,) + dense, dtype),
                                   "bias": jax.random.normal(k2, (1, dense[1]))}},
                 data=Data(qpos=jax.random.normal(k3, (1, 4, 5)), contact=jnp.zeros((1, 4, 0))),
                 iteration=jnp.full((1,), 7, jnp.int32))


def _save(workdir, *steps, state=None, config=CONFIG):
    ckpt = Checkpointer(workdir, keep=10)
    for step in steps:
        ckpt.save(step, _state(seed=step) if state is None else state, config)
    ckpt.wait()
    ckpt.close()


def _listing(workdir):
    """{relative path: sha1} of every file under workdir."""
    return {str(p.relative_to(workdir)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(workdir.rglob("*")) if p.is_file()}


def _assert_same(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.shape(x) == np.shape(y) and np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_by_tree_path(tmp_path):
    _save(tmp_path, 1, 2)
    ckpt = Checkpointer(tmp_path, keep=10)
    try:
        target = jax.eval_shape(lambda: _state())
        state, step = ckpt.restore_latest_readable(target, config=CONFIG)
        assert step == 2
        _assert_same(state, jax.device_get(_state(seed=2)))
        _assert_same(ckpt.restore(1, target), jax.device_get(_state(seed=1)))

        arrays, layout, saved = ckpt.restore_raw(2)
    finally:
        ckpt.close()
    assert saved == CONFIG
    assert layout["format"] == 2
    assert list(layout["leaves"]) == [jax.tree_util.keystr(p) for p, _ in
                                      jax.tree_util.tree_flatten_with_path(_state())[0]]
    assert layout["leaves"][".data.contact"] == {"shape": [1, 4, 0], "dtype": "float32"}
    assert ".data.contact" not in arrays  # orbax cannot store zero-size arrays; rebuilt from the layout
    np.testing.assert_array_equal(arrays[".params['dense']['kernel']"], np.asarray(_state(seed=2).params["dense"]["kernel"]))

    # select_subtree: a part of the saved state by path prefix, first device replica
    params = select_subtree(arrays, layout, ".params", jax.tree.map(lambda x: np.asarray(x)[0], _state().params))
    _assert_same(params, jax.tree.map(lambda x: np.asarray(x)[0], _state(seed=2).params))
    data = select_subtree(arrays, layout, ".data", jax.eval_shape(lambda: jax.tree.map(lambda x: x[0], _state().data)))
    assert data.contact.shape == (4, 0)
    with pytest.raises(AseInputError, match=r"no entry \.params\['dense'\]\['scale'\]"):
        select_subtree(arrays, layout, ".params", {"dense": {"scale": np.zeros(2)}})
    with pytest.raises(AseInputError, match=r"\.data\.qpos has shape \(4, 5\), expected \(4, 6\)"):
        select_subtree(arrays, layout, ".data", Data(qpos=np.zeros((4, 6)), contact=np.zeros((4, 0))))

    _, step, arrays2, layout2, saved2 = read_checkpoint(tmp_path)
    assert step == 2 and layout2 == layout and saved2 == CONFIG and arrays2.keys() == arrays.keys()


def test_fields_are_matched_by_name_not_position(tmp_path):
    """Leaves of the same shapes in another order land in the right fields."""
    state = State(params={"a": jnp.ones((1, 2)), "b": jnp.full((1, 2), 2.0)},
                  data=Data(qpos=jnp.full((1, 2), 3.0), contact=jnp.zeros((1, 0))), iteration=jnp.full((1, 2), 4.0))
    _save(tmp_path, 1, state=state)
    ckpt = Checkpointer(tmp_path, keep=10)
    try:
        restored = ckpt.restore(1, jax.eval_shape(lambda: StateReordered(iteration=state.iteration, data=state.data,
                                                                         params=state.params)))
    finally:
        ckpt.close()
    assert float(restored.iteration[0, 0]) == 4.0 and float(restored.data.qpos[0, 0]) == 3.0
    assert float(restored.params["b"][0, 0]) == 2.0


def _now_state(change):
    s = _state()
    if change == "extra":
        return StateWithExtra(params=s.params, data=s.data, iteration=s.iteration, bonus=jnp.zeros((1, 3)))
    if change == "missing":
        return s.replace(params={"dense": {"kernel": s.params["dense"]["kernel"]}})
    if change == "shape":
        return _state(dense=(5, 2))
    if change == "dtype":
        return s.replace(iteration=s.iteration.astype(jnp.float32))
    raise AssertionError(change)


@pytest.mark.parametrize("change, message", [
    ("extra", r"\.bonus: missing from the checkpoint \(this run has float32\(1, 3\)\)"),
    ("missing", r"\.params\['dense'\]\['bias'\]: in the checkpoint \(float32\(1, 2\)\) but not in this run's state"),
    ("shape", r"\.params\['dense'\]\['kernel'\]: saved float32\(1, 3, 2\), this run has float32\(1, 5, 2\)"),
    ("dtype", r"\.iteration: saved int32\(1,\), this run has float32\(1,\)"),
])
def test_a_state_that_does_not_fit_is_refused_and_left_untouched(tmp_path, change, message):
    _save(tmp_path, 1, 2)
    before = _listing(tmp_path)
    now = {"task": "location", "num_envs": 4, "ppo": {"horizon": 8}}
    ckpt = Checkpointer(tmp_path, keep=10)
    try:
        with pytest.raises(CheckpointMismatch, match=message) as error:
            ckpt.restore_latest_readable(jax.eval_shape(lambda: _now_state(change)), config=now)
    finally:
        ckpt.close()
    text = str(error.value)
    assert isinstance(error.value, AseInputError)
    assert str(tmp_path / "checkpoints" / "2") in text and "cannot resume" in text
    assert "1 leaf of the saved state differs" in text
    assert "task: saved 'heading', now 'location'" in text and "ppo.horizon: saved 4, now 8" in text
    assert "num_envs" not in text  # equal values are not listed
    assert "another --workdir" in text and "saved run's config to resume" in text
    assert _listing(tmp_path) == before, "a checkpoint that does not fit must stay exactly as it was"
    assert not (tmp_path / "corrupt_checkpoints").exists()


def test_a_long_list_of_differences_is_capped(tmp_path):
    _save(tmp_path, 1, state={f"w{i:02d}": np.zeros((2,)) for i in range(30)})
    ckpt = Checkpointer(tmp_path, keep=10)
    try:
        with pytest.raises(CheckpointMismatch) as error:
            ckpt.restore_latest_readable({f"w{i:02d}": np.zeros((3,)) for i in range(30)}, config=CONFIG)
    finally:
        ckpt.close()
    text = str(error.value)
    assert "30 leaves of the saved state differ" in text and "and 24 more" in text
    assert "['w05']" in text and "['w06']" not in text
    assert "config differs" not in text  # the config is the same


def test_truncated_checkpoint_is_moved_aside_and_the_previous_used(tmp_path):
    _save(tmp_path, 1, 2)
    newest = tmp_path / "checkpoints" / "2"
    victims = [p for p in (newest / "state").rglob("*") if p.is_file() and p.stat().st_size > 0]
    assert victims
    for victim in victims:
        victim.write_bytes(victim.read_bytes()[: max(1, victim.stat().st_size // 3)])
    untouched = _listing(tmp_path / "checkpoints" / "1")
    warnings = []
    ckpt = Checkpointer(tmp_path, keep=10)
    try:
        state, step = ckpt.restore_latest_readable(jax.eval_shape(lambda: _state()), config=CONFIG,
                                                   log=warnings.append)
    finally:
        ckpt.close()
    assert step == 1
    _assert_same(state, jax.device_get(_state(seed=1)))
    assert len(warnings) == 1 and "unreadable" in warnings[0]
    assert not newest.exists()
    aside = list((tmp_path / "corrupt_checkpoints").iterdir())
    assert len(aside) == 1 and aside[0].name.startswith("2-") and (aside[0] / "state").is_dir()
    assert _listing(tmp_path / "checkpoints" / "1") == untouched


def test_a_checkpoint_of_an_older_ase_jax_is_refused_and_left_untouched(tmp_path):
    """The earlier format stored leaves as leaf_00000, ... with a list of paths as the layout."""
    manager = ocp.CheckpointManager((tmp_path / "checkpoints").resolve(),
                                    options=ocp.CheckpointManagerOptions(create=True))
    manager.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave({"leaf_00000": np.zeros(3)}),
                                            config=ocp.args.JsonSave(CONFIG),
                                            layout=ocp.args.JsonSave([".params"])))
    manager.wait_until_finished()
    manager.close()
    before = _listing(tmp_path)
    ckpt = Checkpointer(tmp_path, keep=10)
    try:
        with pytest.raises(AseInputError, match="saved by an older ase_jax"):
            ckpt.restore_latest_readable({"params": np.zeros(3)}, config=CONFIG)
    finally:
        ckpt.close()
    with pytest.raises(AseInputError, match="saved by an older ase_jax"):
        read_checkpoint(tmp_path)
    assert _listing(tmp_path) == before
    assert not (tmp_path / "corrupt_checkpoints").exists()


DAMAGE = {k: CHECKPOINT_DAMAGE[k] for k in ("truncated arrays", "garbage layout JSON", "missing array files")}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_reader_passes_over_an_unreadable_checkpoint_of_a_run_folder_and_moves_nothing(tmp_path, damage):
    _save(tmp_path, 1, 2, 3)
    DAMAGE[damage](tmp_path / "checkpoints" / "3")
    before = _listing(tmp_path)
    warnings = []
    # A command looks at a run several times (which checkpoint, its config, its arrays): one decision, one warning.
    assert find_checkpoint(tmp_path, warnings.append) == (tmp_path, 2)
    assert read_saved_config(tmp_path, warnings.append) == CONFIG
    workdir, step, arrays, layout, saved = read_checkpoint(tmp_path, warnings.append)
    assert step == 2 and saved == CONFIG
    np.testing.assert_array_equal(arrays[".params['dense']['kernel']"], np.asarray(_state(seed=2).params["dense"]["kernel"]))
    assert len(warnings) == 1, warnings
    assert f"{tmp_path / 'checkpoints'}: checkpoint 3 cannot be read (" in warnings[0]
    assert "using checkpoint 2" in warnings[0] and "\n" not in warnings[0]
    assert _listing(tmp_path) == before
    assert not (tmp_path / "corrupt_checkpoints").exists()


@pytest.mark.parametrize("damage", DAMAGE)
def test_an_unreadable_checkpoint_given_by_name_is_refused_in_one_line(tmp_path, damage):
    _save(tmp_path, 1, 2)
    DAMAGE[damage](tmp_path / "checkpoints" / "2")
    before = _listing(tmp_path)
    with pytest.raises(UnreadableCheckpoint) as error:
        read_checkpoint(tmp_path / "checkpoints" / "2", warn=pytest.fail)
    text = str(error.value)
    assert isinstance(error.value, AseInputError) and "\n" not in text
    assert text.startswith(f"checkpoint {tmp_path / 'checkpoints' / '2'} cannot be read (")
    assert f"Give the run folder, {tmp_path}," in text
    assert _listing(tmp_path) == before


def test_a_run_folder_without_a_readable_checkpoint_is_refused(tmp_path):
    _save(tmp_path, 1, 2)
    DAMAGE["garbage layout JSON"](tmp_path / "checkpoints" / "1")
    DAMAGE["missing array files"](tmp_path / "checkpoints" / "2")
    before = _listing(tmp_path)
    with pytest.raises(AseInputError, match=r"none of its 2 checkpoint\(s\) can be read \(the newest, 2: "):
        read_checkpoint(tmp_path, warn=pytest.fail)
    assert _listing(tmp_path) == before


def test_a_checkpoint_still_being_written_is_named_as_such(tmp_path):
    _save(tmp_path, 1)
    partial = tmp_path / "checkpoints" / "2.orbax-checkpoint-tmp-1700000000"
    partial.mkdir()
    with pytest.raises(AseInputError, match="still being written when its run stopped"):
        read_checkpoint(partial)
    assert read_checkpoint(tmp_path, warn=pytest.fail)[1] == 1  # orbax does not list it as a step
