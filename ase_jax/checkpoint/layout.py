"""The saved form of a training state (FORMAT = 2): its leaves by tree path, and their layout.

Three orbax items per checkpoint folder `checkpoints/<step>/`:

- `state`: the state's leaves as a flat {tree path: array} dict, the path as written by
  `jax.tree_util.keystr` (e.g. ".params['actor']['Dense_0']['kernel']", ".env_state.data.qpos").
  orbax cannot store zero-size arrays (MJX data has some); those are left out here and rebuilt as
  zeros from the layout.
- `layout`: JSON {"format": 2, "leaves": {path: {"shape": [...], "dtype": "float32"}}} for every
  leaf, zero-size ones included, in tree order.
- `config`: the run's resolved config as JSON.

Checkpoints of older ase_jax versions (leaves named `leaf_00000`, ...) are refused.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from ase_jax.errors import AseInputError

FORMAT = 2


def leaves_by_path(tree) -> dict:
    """{keystr(path): leaf} in tree order."""
    return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _dtype_name(dtype) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def leaf_spec(leaf) -> dict:
    """{"shape": [...], "dtype": name} of an array, scalar or jax.ShapeDtypeStruct."""
    if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
        leaf = np.asarray(leaf)
    return {"shape": [int(n) for n in leaf.shape], "dtype": _dtype_name(leaf.dtype)}


def describe(spec: dict) -> str:
    return f"{spec['dtype']}{tuple(spec['shape'])}"


def layout_differences(saved: dict, now: dict) -> list[str]:
    """Readable lines for the leaves that differ between two {path: spec} layouts: changed shape or
    dtype and missing from the checkpoint (in the order of `now`), then saved but not built now."""
    out = []
    for path, spec in now.items():
        if path not in saved:
            out.append(f"{path}: missing from the checkpoint (this run has {describe(spec)})")
        elif saved[path] != spec:
            out.append(f"{path}: saved {describe(saved[path])}, this run has {describe(spec)}")
    out += [f"{path}: in the checkpoint ({describe(spec)}) but not in this run's state"
            for path, spec in saved.items() if path not in now]
    return out


def check_format(where: Path, layout) -> dict:
    """The saved `layout` of the checkpoint `where`, once it is known to be of this version's format."""
    if isinstance(layout, list) or (isinstance(layout, dict) and "format" not in layout):
        raise AseInputError(f"{where}: saved by an older ase_jax (leaves stored by index, not by tree path); "
                            f"this version cannot read it. Train a new run in another --workdir")
    if not isinstance(layout, dict) or not isinstance(layout.get("leaves"), dict):
        raise ValueError(f"{where}: the saved layout is not readable")
    if layout["format"] != FORMAT:
        raise AseInputError(f"{where}: saved in checkpoint format {layout['format']!r}, but this version of "
                            f"ase_jax reads format {FORMAT}; use the ase_jax version that wrote it")
    return layout


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
        expected = tuple(leaf_spec(leaf)["shape"])
        if shape[1:] != expected:
            raise AseInputError(f"checkpoint entry {full} has shape {shape[1:]}, expected {expected}")
        value = arrays.get(full)
        value = np.zeros(shape, dtype) if value is None else np.asarray(value)
        leaves.append(value[0])
    return jax.tree_util.tree_unflatten(treedef, leaves)
