"""Checkpoints of a training run with orbax: the whole training state plus the resolved config.

orbax writes each checkpoint into a temporary folder and renames it when complete, so a run killed
during a save leaves the previous checkpoints intact and no half-written one that looks valid.
Retention: the last `keep` checkpoints plus every `keep_period`-th step.

Format (FORMAT = 2), three orbax items per checkpoint folder `checkpoints/<step>/`:

- `state`: the state's leaves as a flat {tree path: array} dict, the path as written by
  `jax.tree_util.keystr` (e.g. ".params['actor']['Dense_0']['kernel']", ".env_state.data.qpos").
  orbax cannot store zero-size arrays (MJX data has some); those are left out here and rebuilt as
  zeros from the layout.
- `layout`: JSON {"format": 2, "leaves": {path: {"shape": [...], "dtype": "float32"}}} for every
  leaf, zero-size ones included, in tree order.
- `config`: the run's resolved config as JSON.

Resuming compares the saved layout with the tree the code builds now (`jax.eval_shape` of the
init), so a run can resume exactly when every path, shape and dtype agrees; otherwise the error
names the leaves and config values that differ, and nothing is moved. Only a checkpoint that
cannot be read (truncated or corrupted files) is moved aside by training, never deleted, and the one
before it is used. Checkpoints of older ase_jax versions (leaves named `leaf_00000`, ...) are refused.

Commands that only read a run (play, evaluate, export, task --llc, the C-MuJoCo player) go through
`read_checkpoint` / `find_checkpoint` / `read_saved_config`, which decide the same way but change
nothing: a run folder gives its newest checkpoint that can be read in full (one warning line names
those passed over), a checkpoint folder that cannot be read is refused in one line.

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

from pathlib import Path

import contextlib
import logging
import os
import shutil
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from ase_jax import distributed
from ase_jax.errors import AseInputError

FORMAT = 2
MAX_LISTED = 6  # config values and leaves named in a mismatch message; the rest are counted


class CheckpointMismatch(AseInputError):
    """A readable checkpoint whose saved state does not fit the state this run builds."""


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
        leaves = _leaves_by_path(distributed.gather_device_axis(state))  # all devices of all processes
        layout = {"format": FORMAT, "leaves": {path: _spec(leaf) for path, leaf in leaves.items()}}
        arrays = {path: np.asarray(leaf) for path, leaf in leaves.items() if np.size(leaf) > 0}
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
        saved_leaves, saved_config = self._check_format(step, saved["layout"])["leaves"], saved["config"]
        want = {path: _spec(leaf) for path, leaf in _leaves_by_path(target).items()}
        differences = layout_differences(saved_leaves, want)
        if differences:
            raise CheckpointMismatch(mismatch_message(where, differences, saved_config, config))
        arrays = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
        with_path, treedef = jax.tree_util.tree_flatten_with_path(target)
        out = []
        for path, leaf in with_path:
            key, spec = jax.tree_util.keystr(path), _spec(leaf)
            if int(np.prod(spec["shape"])) == 0:
                out.append(np.zeros(spec["shape"], leaf.dtype))
                continue
            if key not in arrays:
                raise ValueError(f"{where}: the layout lists {key} but the saved arrays do not hold it")
            value = np.asarray(arrays[key])
            if _spec(value) != spec:
                raise ValueError(f"{where}: saved array {key} is {_describe(_spec(value))}, its layout says "
                                 f"{_describe(spec)}")
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
        layout = self._check_format(step, restored["layout"])
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
                with _quiet_reads():
                    return self.restore(step, target, config), step
            except AseInputError:
                raise
            except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds of errors for bad files
                if jax.process_count() > 1:  # moving files aside is for one process to do, and all to agree on
                    raise AseInputError(
                        f"checkpoint {self.directory / str(step)} is unreadable ({_unreadable(e)}); "
                        f"a multi-process run does not move it aside: resume once with a single process (which "
                        f"moves it to corrupt_checkpoints/ and uses the one before), or move it yourself") from None
                aside = self.workdir / "corrupt_checkpoints" / f"{step}-{int(time.time())}"
                aside.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(self.directory / str(step)), str(aside))
                log(f"checkpoint {self.directory / str(step)} is unreadable ({_unreadable(e)}); moved it to {aside} "
                    f"and trying the one before")
                self.manager.reload()
        return None, None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()

    def _check_format(self, step: int, layout) -> dict:
        where = self.directory / str(step)
        if isinstance(layout, list) or (isinstance(layout, dict) and "format" not in layout):
            raise AseInputError(f"{where}: saved by an older ase_jax (leaves stored by index, not by tree path); "
                                f"this version cannot read it. Train a new run in another --workdir")
        if not isinstance(layout, dict) or not isinstance(layout.get("leaves"), dict):
            raise ValueError(f"{where}: the saved layout is not readable")
        if layout["format"] != FORMAT:
            raise AseInputError(f"{where}: saved in checkpoint format {layout['format']!r}, but this version of "
                                f"ase_jax reads format {FORMAT}; use the ase_jax version that wrote it")
        return layout


def _over_all_processes(target):
    """`target` (this process's rows of a pmapped state, arrays or ShapeDtypeStructs) as
    ShapeDtypeStructs with the leading device axis over all processes; `target` itself for one."""
    if jax.process_count() == 1:
        return target
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct((leaf.shape[0] * jax.process_count(),) + tuple(leaf.shape[1:]),
                                                          leaf.dtype), target)


def _leaves_by_path(tree) -> dict:
    """{keystr(path): leaf} in tree order."""
    return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _dtype_name(dtype) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def _spec(leaf) -> dict:
    """{"shape": [...], "dtype": name} of an array, scalar or jax.ShapeDtypeStruct."""
    if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
        leaf = np.asarray(leaf)
    return {"shape": [int(n) for n in leaf.shape], "dtype": _dtype_name(leaf.dtype)}


def _describe(spec: dict) -> str:
    return f"{spec['dtype']}{tuple(spec['shape'])}"


def layout_differences(saved: dict, now: dict) -> list[str]:
    """Readable lines for the leaves that differ between two {path: spec} layouts: changed shape or
    dtype and missing from the checkpoint (in the order of `now`), then saved but not built now."""
    out = []
    for path, spec in now.items():
        if path not in saved:
            out.append(f"{path}: missing from the checkpoint (this run has {_describe(spec)})")
        elif saved[path] != spec:
            out.append(f"{path}: saved {_describe(saved[path])}, this run has {_describe(spec)}")
    out += [f"{path}: in the checkpoint ({_describe(spec)}) but not in this run's state"
            for path, spec in saved.items() if path not in now]
    return out


def _flat_config(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return out


def config_differences(saved: dict, now: dict) -> list[str]:
    """Readable lines for the config values (nested sections as dotted keys) that differ; the run
    section (where to write, how long to run) may change on resume and is left out."""
    ignore = lambda flat: {k: v for k, v in flat.items() if not k.startswith("run.")}
    saved, now = ignore(_flat_config(saved)), ignore(_flat_config(now))
    missing = object()
    out = []
    for key in list(now) + [k for k in saved if k not in now]:
        a, b = saved.get(key, missing), now.get(key, missing)
        if a != b:
            a = "(not set)" if a is missing else repr(list(a) if isinstance(a, tuple) else a)
            b = "(not set)" if b is missing else repr(list(b) if isinstance(b, tuple) else b)
            out.append(f"{key}: saved {a}, now {b}")
    return out


def _capped(lines: list[str], limit: int) -> str:
    shown = "; ".join(lines[:limit])
    return shown + (f"; and {len(lines) - limit} more" if len(lines) > limit else "")


def mismatch_message(where: Path, differences: list[str], saved_config: dict | None, config: dict | None) -> str:
    """What differs between a saved run and this one (config values first: the likely cause), and
    what to do about it."""
    message = f"{where} holds a run that this config cannot resume: "
    changed = config_differences(saved_config, config) if saved_config is not None and config is not None else []
    if changed:
        message += f"the saved config differs in {_capped(changed, MAX_LISTED)}; "
    leaves = "1 leaf of the saved state differs" if len(differences) == 1 else \
        f"{len(differences)} leaves of the saved state differ"
    message += (f"{leaves} from the state this config builds: "
                f"{_capped(differences, MAX_LISTED)}.")
    return message + (f" Use another --workdir for a new run, or rerun with the saved run's config to resume it; "
                      f"the checkpoints in {where.parent} are left as they are.")


def select_subtree(arrays: dict, layout: dict, prefix: str, template):
    """The part of a saved state whose paths start with `prefix`, shaped like `template`.

    `arrays` and `layout` are as returned by `Checkpointer.restore_raw` / `read_checkpoint`;
    `template` is a pytree with the same structure as that part (e.g. freshly initialised params,
    arrays or jax.ShapeDtypeStructs); saved leaves keep their leading device axis, of which the first
    replica is taken.
    """
    leaves_layout = layout["leaves"]
    with_path, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for path, leaf in with_path:
        full = prefix + jax.tree_util.keystr(path)
        if full not in leaves_layout:
            raise AseInputError(f"checkpoint has no entry {full}: not a compatible ase_jax checkpoint")
        shape, dtype = tuple(leaves_layout[full]["shape"]), leaves_layout[full]["dtype"]
        if shape[1:] != tuple(_spec(leaf)["shape"]):
            raise AseInputError(f"checkpoint entry {full} has shape {shape[1:]}, expected {tuple(_spec(leaf)['shape'])}")
        value = arrays.get(full)
        value = np.zeros(shape, dtype) if value is None else np.asarray(value)
        leaves.append(value[0])
    return jax.tree_util.tree_unflatten(treedef, leaves)


# --- reading a run folder without training: play, evaluate, export, task --llc -----------------------
#
# Readers decide which checkpoint to use as training does (the newest that can be read) but never
# move or delete anything: an unreadable checkpoint given by name is refused in one line, and one
# found in a run folder is passed over for the one before it, with a one-line warning.

def _unreadable(error: BaseException) -> str:
    """`Type: first line` of an error raised by orbax/tensorstore/json while reading a checkpoint."""
    text = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class UnreadableCheckpoint(AseInputError):
    """A checkpoint whose files cannot be read (truncated, corrupted, missing or partly written)."""

    def __init__(self, where: Path, reason: str):
        self.where, self.reason = where, reason
        super().__init__(f"checkpoint {where} cannot be read ({reason}); nothing was changed. Give the run folder, "
                         f"{where.parent.parent}, to use its newest checkpoint that can be read")


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
def _quiet_reads():
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


@contextlib.contextmanager
def _reading(workdir):
    """A Checkpointer that only reads (orbax's read_only: nothing saved, deleted or created), closed on
    exit; orbax's log lines about read-only folders and bad metadata files are left out."""
    with _quiet_reads():
        checkpointer = Checkpointer(workdir, keep=None, read_only=True)
        try:
            yield checkpointer
        finally:
            checkpointer.close()


def _files(folder: Path) -> tuple:
    """(relative path, size, modification time) of every file below `folder`: what a decision about
    its readability depends on."""
    out = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            stat = os.stat(os.path.join(root, name))
            out.append((os.path.relpath(os.path.join(root, name), folder), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


# The newest readable step of a run folder, by the folder and the files of its checkpoints, so that
# a command that looks at a run several times (config, then arrays) decides once and warns once.
_NEWEST_READABLE: dict = {}
# The last checkpoint read in full, by its folder and files: the read that decided it is readable
# serves the one that uses it. One entry; `read_checkpoint` takes it out.
_LAST_READ: dict = {}


def _read_whole(workdir: Path, step: int) -> tuple[dict, dict, dict]:
    """(arrays, layout, config) of one checkpoint; UnreadableCheckpoint naming its folder if its files
    cannot be read, AseInputError (e.g. an older format) as it comes; nothing on disk is changed."""
    where = workdir / "checkpoints" / str(step)
    key = (str(where), _files(where))
    if key in _LAST_READ:
        return _LAST_READ[key]
    try:
        with _reading(workdir) as checkpointer:
            read = checkpointer.restore_raw(step)
    except AseInputError:
        raise
    except Exception as e:  # noqa: BLE001 - orbax/tensorstore/json raise many kinds of errors for bad files
        raise UnreadableCheckpoint(where, _unreadable(e)) from None
    _LAST_READ.clear()
    _LAST_READ[key] = read
    return read


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def find_checkpoint(path, warn=_warn) -> tuple[Path, int]:
    """(workdir, step) of a checkpoint folder `.../checkpoints/N`, or of a run folder's newest
    checkpoint that can be read in full; passing over newer ones that cannot (truncated, corrupted
    or missing files) is said in one line to `warn`, and nothing is moved (training moves them aside).
    Bad input (no such folder, no checkpoints, none readable) is an AseInputError naming the folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise AseInputError(f"{path}: no such run folder or checkpoint")
    if path.parent.name == "checkpoints" and not path.name.isdigit() and ".orbax-checkpoint-tmp" in path.name:
        raise AseInputError(f"{path}: a checkpoint that was still being written when its run stopped (incomplete); "
                            f"give the run folder {path.parent.parent} or one of its numbered checkpoints")
    if path.name.isdigit() and path.parent.name == "checkpoints":
        return path.parent.parent, int(path.name)
    if not (path / "checkpoints").is_dir():
        raise AseInputError(f"{path}: not an ase_jax run folder (no checkpoints/ inside)")
    with _reading(path) as checkpointer:
        steps = sorted(checkpointer.manager.all_steps(), reverse=True)
    if not steps:
        raise AseInputError(f"{path / 'checkpoints'}: holds no complete checkpoint")
    key = (str(path.resolve()), tuple((step, _files(path / "checkpoints" / str(step))) for step in steps))
    if key in _NEWEST_READABLE:
        return path, _NEWEST_READABLE[key]
    passed_over = []
    for step in steps:
        try:
            _read_whole(path, step)
        except UnreadableCheckpoint as e:
            passed_over.append(e)
            continue
        if passed_over:
            newer = ", ".join(e.where.name for e in passed_over)
            warn(f"{path / 'checkpoints'}: checkpoint{'s' if len(passed_over) > 1 else ''} {newer} cannot be read "
                 f"({passed_over[0].reason}); using checkpoint {step}, the newest that can (nothing was moved)")
        _NEWEST_READABLE[key] = step
        return path, step
    raise AseInputError(f"{path / 'checkpoints'}: none of its {len(steps)} checkpoint(s) can be read (the newest, "
                        f"{steps[0]}: {passed_over[0].reason}); nothing was changed")


def read_checkpoint(path, warn=_warn) -> tuple[Path, int, dict, dict, dict]:
    """(workdir, step, arrays by tree path, layout, saved config) of a run folder (its newest
    readable checkpoint, as `find_checkpoint`) or checkpoint folder; `arrays` and `layout` are for
    `select_subtree`."""
    workdir, step = find_checkpoint(path, warn)
    arrays, layout, saved = _read_whole(workdir, step)
    _LAST_READ.clear()  # the caller holds it now
    return workdir, step, arrays, layout, saved


def read_saved_config(path, warn=_warn) -> dict:
    """The config saved with a run folder's newest readable checkpoint (or with one checkpoint folder)."""
    workdir, step = find_checkpoint(path, warn)
    where = workdir / "checkpoints" / str(step)
    read = _LAST_READ.get((str(where), _files(where)))  # the read that found it readable
    if read is not None:
        return read[2]
    try:
        with _reading(workdir) as checkpointer:
            return checkpointer.saved_config(step)
    except Exception as e:  # noqa: BLE001 - as in _read_whole
        raise UnreadableCheckpoint(where, _unreadable(e)) from None
