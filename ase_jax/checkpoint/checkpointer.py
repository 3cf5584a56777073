"""Checkpoints of a training run with orbax: the whole training state plus the resolved config,
saved, kept and restored by `Checkpointer` (the format is in `layout.py`).

orbax writes each checkpoint into a temporary folder and renames it when complete, so a run killed
during a save leaves the previous checkpoints intact and no half-written one that looks valid.
Retention: the last `keep` checkpoints plus every `keep_period`-th step.

Resuming compares the saved layout with the tree the code builds now (`jax.eval_shape` of the
init), so a run can resume exactly when every path, shape and dtype agrees; otherwise the error
names the leaves and config values that differ, and nothing is moved. Only a checkpoint that
cannot be read (truncated or corrupted files) is moved aside by training, never deleted, and the one
before it is used.

Multi-process runs (`ase_jax.distributed`): every process calls `save` and `restore`, as orbax
wants. Each process holds only its own devices' rows of the state, so `save` first gathers every
process's rows (one allgather of the whole state) and hands orbax host arrays with the leading axis
over all devices of all processes; orbax then writes one copy, from process 0. We gather to host
arrays instead of saving global jax.Arrays because the checkpoint then has exactly the layout of a
single-process run over the same total number of devices, so either kind of run resumes the other
(and play/evaluate read it as any other). `restore` reads the whole state on every process and
keeps its own devices' rows. (At scale the gather costs each process a host copy of every
device's env states and replay buffer per checkpoint; saving sharded global arrays would avoid it.)
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from ase_jax import distributed
from ase_jax.checkpoint.layout import FORMAT, check_format, describe, layout_differences, leaf_spec, leaves_by_path
from ase_jax.checkpoint.mismatch import CheckpointMismatch, mismatch_message
from ase_jax.errors import AseInputError


class Checkpointer:
    def __init__(self, workdir: Path, keep: int | None, keep_period: int | None = None, read_only: bool = False):
        """`read_only`: orbax saves, deletes and creates nothing (the readers of `read_checkpoint`)."""
        self.workdir = Path(workdir).resolve()
        self.directory = self.workdir / "checkpoints"
        options = (ocp.CheckpointManagerOptions(read_only=True, save_interval_steps=0, create=False) if read_only else
                   ocp.CheckpointManagerOptions(max_to_keep=keep, keep_period=keep_period or None, create=True))
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, config: dict) -> None:
        leaves = leaves_by_path(distributed.gather_device_axis(state))  # all devices of all processes
        layout = {"format": FORMAT, "leaves": {path: leaf_spec(leaf) for path, leaf in leaves.items()}}
        arrays = {path: np.asarray(leaf) for path, leaf in leaves.items() if np.size(leaf) > 0}
        self.save_raw(step, arrays, layout, config)

    def save_raw(self, step: int, arrays: dict, layout: dict, config: dict) -> None:
        """Writes arrays by tree path with their layout and config, as `restore_raw` returns them."""
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(arrays),
                                                        config=ocp.args.JsonSave(config),
                                                        layout=ocp.args.JsonSave(layout)))

    def saved_config(self, step: int) -> dict:
        return self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

    def restore(self, step: int, target, config: dict | None = None):
        """The state saved at `step`, as a pytree shaped like `target` (host numpy arrays).

        `target` is the state this run builds, as arrays or as `jax.ShapeDtypeStruct`s (e.g.
        `jax.eval_shape(init, key)`). A saved state with other paths, shapes or dtypes raises
        CheckpointMismatch naming them, plus the values of `config` (this run's config) that differ
        from the saved one; nothing on disk is changed. Files that cannot be read raise orbax's or
        tensorstore's own errors (or ValueError for an inconsistent checkpoint)."""
        where = self.directory / str(step)
        local_target, target = target, _over_all_processes(target)
        saved = self.manager.restore(step, args=ocp.args.Composite(layout=ocp.args.JsonRestore(),
                                                                   config=ocp.args.JsonRestore()))
        saved_leaves, saved_config = check_format(self.directory / str(step), saved["layout"])["leaves"], saved["config"]
        want = {path: leaf_spec(leaf) for path, leaf in leaves_by_path(target).items()}
        differences = layout_differences(saved_leaves, want)
        if differences:
            raise CheckpointMismatch(mismatch_message(where, differences, saved_config, config))
        arrays = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
        with_path, treedef = jax.tree_util.tree_flatten_with_path(target)
        out = []
        for path, leaf in with_path:
            key, spec = jax.tree_util.keystr(path), leaf_spec(leaf)
            if int(np.prod(spec["shape"])) == 0:
                out.append(np.zeros(spec["shape"], leaf.dtype))
                continue
            if key not in arrays:
                raise ValueError(f"{where}: the layout lists {key} but the saved arrays do not hold it")
            value = np.asarray(arrays[key])
            if leaf_spec(value) != spec:
                raise ValueError(f"{where}: saved array {key} is {describe(leaf_spec(value))}, its layout says "
                                 f"{describe(spec)}")
            out.append(value)
        if jax.process_count() > 1:  # this process's devices' rows
            out = [leaf[distributed.local_device_rows(leaf.shape[0])] for leaf in out]
            treedef = jax.tree_util.tree_structure(local_target)
        return jax.tree_util.tree_unflatten(treedef, out)

    def restore_raw(self, step: int) -> tuple[dict, dict, dict]:
        """(arrays by tree path, layout, saved config) without a target; the layout is the saved
        {"format", "leaves"} JSON, to be passed to `select_subtree`."""
        restored = self.manager.restore(step, args=ocp.args.Composite(layout=ocp.args.JsonRestore(),
                                                                      config=ocp.args.JsonRestore()))
        layout = check_format(self.directory / str(step), restored["layout"])
        arrays = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
        return dict(arrays), layout, dict(restored["config"])

    def restore_latest_readable(self, target, config: dict | None = None, log=logging.warning):
        """(state, step) from the newest checkpoint that can be read, or (None, None) if there is none.

        `target` is as for `restore` (`jax.eval_shape` of the init needs no compilation); `config`
        is this run's config, named in the message of a mismatch. A mismatch or an older checkpoint
        format propagates and nothing is moved or changed.

        Unreadable checkpoints (truncated or corrupted files) are moved to `corrupt_checkpoints/`
        beside `checkpoints/` with a warning, so that nothing saved is ever deleted and the step can
        be written again.
        """
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                with quiet_reads():
                    return self.restore(step, target, config), step
            except AseInputError:
                raise
            except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds of errors for bad files
                if jax.process_count() > 1:  # moving files aside is for one process to do, and all to agree on
                    raise AseInputError(
                        f"checkpoint {self.directory / str(step)} is unreadable ({unreadable(e)}); "
                        f"a multi-process run does not move it aside: resume once with a single process (which "
                        f"moves it to corrupt_checkpoints/ and uses the one before), or move it yourself") from None
                aside = self.workdir / "corrupt_checkpoints" / f"{step}-{int(time.time())}"
                aside.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(self.directory / str(step)), str(aside))
                log(f"checkpoint {self.directory / str(step)} is unreadable ({unreadable(e)}); moved it to {aside} "
                    f"and trying the one before")
                self.manager.reload()
        return None, None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def _over_all_processes(target):
    """`target` (this process's rows of a pmapped state, arrays or ShapeDtypeStructs) as
    ShapeDtypeStructs with the leading device axis over all processes; `target` itself for one."""
    if jax.process_count() == 1:
        return target
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct((leaf.shape[0] * jax.process_count(),) + tuple(leaf.shape[1:]),
                                                          leaf.dtype), target)


def unreadable(error: BaseException) -> str:
    """`Type: first line` of an error raised by orbax/tensorstore/json while reading a checkpoint."""
    text = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _quiet_unraisable(previous):
    """An unraisablehook that drops the RuntimeError('Event loop is closed') which tensorstore's
    pending reads raise, by the dozen, once orbax has given up on a checkpoint that cannot be read."""

    def hook(unraisable):
        if isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed":
            return
        previous(unraisable)

    hook.ase_jax_quiet = True
    return hook


@contextlib.contextmanager
def quiet_reads():
    """While reading checkpoint files: orbax's own log lines (a missing or unparsable metadata file)
    off, and the asynchronous noise of an aborted read filtered out (for good: it arrives later)."""
    if not getattr(sys.unraisablehook, "ase_jax_quiet", False):
        sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        absl.setLevel(level)
