"""An export folder of `python -m ase_jax.export` (policy.json with llc.onnx / hlc.onnx) read as the one
inference `Policy`, its networks run with onnxruntime: no checkpoint, no JAX networks, numpy in and
out, one state at a time (the C-MuJoCo player plays it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ase_jax.errors import AseInputError
from ase_jax.inference.policy import Policy, described_sizes
from ase_jax.inference.policy_file import FORMAT, JSON_FILE


def env_config_of_export(values, where):
    """The env section of an export (policy.json's "env") through the config module's checks, as a
    checkpoint's saved config is read: unknown keys and bad values are errors, missing keys take
    their defaults."""
    from ase_jax.config.schema import from_dict

    try:
        if not isinstance(values, dict):
            raise AseInputError(f"expected a mapping of env keys, got {type(values).__name__}")
        return from_dict({"command": "pretrain", "env": values}).env
    except AseInputError as e:
        raise AseInputError(f"{where}: the export's env settings are not valid for this version of ase_jax: "
                            f"{e}") from None


def load_export(folder) -> Policy:
    """The policy of an export folder (policy.json + ONNX files), run with onnxruntime."""
    from ase_jax.character import load_character
    from ase_jax.tasks import make_task

    folder = Path(folder)
    try:
        meta = json.loads((folder / JSON_FILE).read_text())
    except (OSError, ValueError) as e:
        raise AseInputError(f"{folder / JSON_FILE}: not a readable export description ({e})") from None
    missing = [k for k in ("character", "control", "env", "source") if not isinstance(meta, dict) or k not in meta]
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or missing:
        raise AseInputError(f"{folder / JSON_FILE}: not an export description of this ase_jax (format "
                            f"{meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT}"
                            + (f"; missing {missing}" if missing else "") + "); export the run again")
    try:
        import onnxruntime as ort
    except ImportError:
        raise AseInputError("playing an exported policy needs onnxruntime: pip install -e '.[export]'") from None

    def session(entry):
        path = folder / entry["file"]
        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own error types
            raise AseInputError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:200]})") from None
        names = [o.name for o in sess.get_outputs()]

        def run(**inputs):
            feed = {k: np.asarray(v, np.float32)[None] for k, v in inputs.items()}
            return sess.run(names[:1], feed)[0][0]

        return run

    plain_amp = "llc" in meta and meta["llc"].get("latent_dim") == 0  # its llc.onnx has no z input
    try:
        llc = session(meta["llc"]) if "llc" in meta else None
        hlc = session(meta["hlc"]) if "hlc" in meta else None
        return Policy(
            low_level=None if llc is None else (lambda obs, z: llc(obs=obs)) if plain_amp else (
                lambda obs, z: llc(obs=obs, z=z)),
            high_level=None if hlc is None else (lambda obs: hlc(obs=obs)),
            **described_sizes(meta), meta=meta,
            env_config=env_config_of_export(meta["env"], folder / JSON_FILE),
            character=load_character(meta["character"]["name"]),
            task=make_task(meta["task"]["name"]) if "task" in meta else None, source=str(folder),
            step=meta["source"]["step"], traceable=False)
    except KeyError as e:
        raise AseInputError(f"{folder / JSON_FILE}: has no entry {e}; export the run again") from None
