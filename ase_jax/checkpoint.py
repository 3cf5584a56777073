"""Checkpoints of a training run with orbax: the whole training state plus the resolved config.

orbax writes each checkpoint into a temporary folder and renames it when complete, so a run killed
during a save leaves the previous checkpoints intact and no half-written one that looks valid.
Retention: the last `keep` checkpoints plus every `keep_period`-th step. A checkpoint that cannot
be read when resuming is moved aside (never deleted) and the one before it is used.
"""

from __future__ import annotations

from pathlib import Path

import contextlib
import logging
import shutil
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from ase_jax.errors import AseInputError

# Config keys that fix the shapes of the saved state: a run can only resume with the same values.
SHAPE_KEYS = ("character", "num_envs", "latent_dim", "actor_units", "style_units", "critic_units", "disc_units",
              "replay_buffer_size", "demo_history", "num_fall_states", "horizon")


class Checkpointer:
    def __init__(self, workdir: Path, keep: int, keep_period: int | None = None):
        self.workdir = Path(workdir).resolve()
        self.directory = self.workdir / "checkpoints"
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, keep_period=keep_period or None,
                                                                 create=True))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, config: dict) -> None:
        arrays, paths = _flatten(jax.device_get(state))
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(arrays),
                                                        config=ocp.args.JsonSave(config),
                                                        layout=ocp.args.JsonSave(paths)))

    def saved_config(self, step: int) -> dict:
        return self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

    def restore(self, step: int, target):
        """The state saved at `step`, as a pytree shaped like `target` (host arrays)."""
        arrays, paths = _flatten(jax.device_get(target))
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(arrays), layout=ocp.args.JsonRestore()))
        if restored["layout"] != paths:
            raise AseInputError(f"{self.directory / str(step)}: the saved state has a different layout than "
                                f"this version of ase_jax builds; it cannot be resumed")
        leaves, treedef = jax.tree_util.tree_flatten(jax.device_get(target))
        saved = restored["state"]
        out = [saved.get(f"leaf_{i:05d}", leaf) for i, leaf in enumerate(leaves)]
        return jax.tree_util.tree_unflatten(treedef, out)

    def restore_raw(self, step: int) -> tuple[dict, list[str], dict]:
        """(arrays by leaf name, tree paths of the saved state, saved config) without a target."""
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(), layout=ocp.args.JsonRestore(), config=ocp.args.JsonRestore()))
        return dict(restored["state"]), list(restored["layout"]), dict(restored["config"])

    def restore_latest_readable(self, target, check_config=None, log=logging.warning):
        """(state, step) from the newest checkpoint that can be read, or (None, None) if there is none.

        `check_config(saved_config)` may raise AseInputError for a run that cannot be resumed with
        this config; that error propagates and nothing is moved.

        Unreadable checkpoints (truncated or corrupted files) are moved to `corrupt_checkpoints/`
        beside `checkpoints/` with a warning, so that nothing saved is ever deleted and the step can
        be written again.
        """
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                saved = self.saved_config(step)
                if check_config is not None:
                    check_config(saved)
                return self.restore(step, target), step
            except AseInputError:
                raise
            except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds of errors for bad files
                aside = self.workdir / "corrupt_checkpoints" / f"{step}-{int(time.time())}"
                aside.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(self.directory / str(step)), str(aside))
                log(f"checkpoint {self.directory / str(step)} is unreadable ({type(e).__name__}: "
                    f"{str(e)[:200]}); moved it to {aside} and trying the one before")
                self.manager.reload()
        return None, None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def _flatten(tree) -> tuple[dict, list[str]]:
    """Leaves as {"leaf_00000": array} (orbax cannot store zero-size arrays, which MJX data has;
    those are skipped and rebuilt from the target on restore) plus the list of tree paths."""
    with_path, _ = jax.tree_util.tree_flatten_with_path(tree)
    arrays = {f"leaf_{i:05d}": np.asarray(leaf) for i, (_, leaf) in enumerate(with_path) if np.size(leaf) > 0}
    return arrays, [jax.tree_util.keystr(path) for path, _ in with_path]


def select_subtree(arrays: dict, layout: list[str], prefix: str, template):
    """The part of a saved state whose paths start with `prefix`, shaped like `template`.

    `template` is a pytree with the same structure as that part (e.g. freshly initialised params);
    saved leaves keep their leading device axis, of which the first replica is taken.
    """
    index = {path: i for i, path in enumerate(layout)}
    with_path, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for path, leaf in with_path:
        full = prefix + jax.tree_util.keystr(path)
        if full not in index:
            raise AseInputError(f"checkpoint has no entry {full}: not a compatible ase_jax checkpoint")
        value = arrays.get(f"leaf_{index[full]:05d}")
        value = np.zeros((1,) + np.shape(leaf), np.asarray(leaf).dtype) if value is None else value
        if value.shape[1:] != np.shape(leaf):
            raise AseInputError(f"checkpoint entry {full} has shape {value.shape[1:]}, expected {np.shape(leaf)}")
        leaves.append(value[0])
    return jax.tree_util.tree_unflatten(treedef, leaves)


@contextlib.contextmanager
def _reading(workdir):
    """A Checkpointer that only reads (its retention never deletes anything), closed on exit."""
    checkpointer = Checkpointer(workdir, keep=1_000_000)
    try:
        yield checkpointer
    finally:
        checkpointer.close()


def find_checkpoint(path) -> tuple[Path, int]:
    """(workdir, step) for a run folder (latest checkpoint) or a checkpoint folder `.../checkpoints/N`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise AseInputError(f"{path}: no such run folder or checkpoint")
    if path.name.isdigit() and path.parent.name == "checkpoints":
        return path.parent.parent, int(path.name)
    if not (path / "checkpoints").is_dir():
        raise AseInputError(f"{path}: not an ase_jax run folder (no checkpoints/ inside)")
    with _reading(path) as checkpointer:
        step = checkpointer.latest_step()
    if step is None:
        raise AseInputError(f"{path / 'checkpoints'}: holds no complete checkpoint")
    return path, step


def read_checkpoint(path) -> tuple[Path, int, dict, list[str], dict]:
    """(workdir, step, arrays, layout, saved config) of a run folder (latest) or checkpoint folder."""
    workdir, step = find_checkpoint(path)
    with _reading(workdir) as checkpointer:
        arrays, layout, saved = checkpointer.restore_raw(step)
    return workdir, step, arrays, layout, saved


def read_saved_config(path) -> dict:
    """The config saved with a run folder's latest checkpoint (or with one checkpoint folder)."""
    workdir, step = find_checkpoint(path)
    with _reading(workdir) as checkpointer:
        return checkpointer.saved_config(step)


def check_compatible(saved: dict, config: dict, where: Path) -> None:
    for key in SHAPE_KEYS:
        a, b = saved.get(key), config.get(key)
        if isinstance(a, list):
            a = tuple(a)
        if isinstance(b, list):
            b = tuple(b)
        if a != b:
            raise AseInputError(f"{where} holds a run with {key}={a!r}, but this run has {key}={b!r}; "
                                f"use another --workdir, or rerun with the same {key} to resume")
