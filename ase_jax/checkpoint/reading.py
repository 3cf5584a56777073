"""Reading a run folder without training: play, evaluate, export, task --llc, the C-MuJoCo player.

Readers decide which checkpoint to use as training does (the newest that can be read) but never
move or delete anything: a run folder gives its newest checkpoint that can be read in full (one
warning line names those passed over), a checkpoint folder that cannot be read is refused in one
line (`UnreadableCheckpoint`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from ase_jax.checkpoint.checkpointer import Checkpointer, quiet_reads, unreadable
from ase_jax.errors import AseInputError


class UnreadableCheckpoint(AseInputError):
    """A checkpoint whose files cannot be read (truncated, corrupted, missing or partly written)."""

    def __init__(self, where: Path, reason: str):
        self.where, self.reason = where, reason
        super().__init__(f"checkpoint {where} cannot be read ({reason}); nothing was changed. Give the run folder, "
                         f"{where.parent.parent}, to use its newest checkpoint that can be read")


@contextlib.contextmanager
def _reading(workdir):
    """A Checkpointer that only reads (orbax's read_only: nothing saved, deleted or created), closed on
    exit; orbax's log lines about read-only folders and bad metadata files are left out."""
    with quiet_reads():
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
        raise UnreadableCheckpoint(where, unreadable(e)) from None
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
        raise UnreadableCheckpoint(where, unreadable(e)) from None
