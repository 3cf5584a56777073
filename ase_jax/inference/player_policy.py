"""The policy the C-MuJoCo player runs, whatever it came from: an export folder of
`python -m ase_jax.export` (policy.json with llc.onnx / hlc.onnx, run with onnxruntime: no checkpoint,
no JAX networks), or a run folder / checkpoint (inference.trained_run), whose networks run in JAX.
Numpy in, numpy out, one state at a time."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ase_jax.errors import AseInputError


@dataclasses.dataclass
class PlayerPolicy:
    """A loaded policy, whatever it came from: numpy in, numpy out, one state at a time."""

    meta: dict  # policy.json's content (ase_jax.export.describe)
    env_config: object  # ase_jax.config.sections.EnvConfig
    character: object
    task: object  # ase_jax.tasks.base.Task or None
    llc: object  # (obs (obs_size,), z (latent_dim,)) -> action (nu,); None for a scratch task policy
    hlc: object  # task obs -> unit latent, or action for a scratch policy; None for pre-training runs
    source: str

    @property
    def latent_dim(self) -> int | None:
        return self.meta["llc"]["latent_dim"] if "llc" in self.meta else None

    @property
    def steps_per_action(self) -> int:
        return self.meta["task"]["llc_steps"] if "task" in self.meta else 1


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


def load_export(folder) -> PlayerPolicy:
    """A policy from an export folder (policy.json + ONNX files), run with onnxruntime."""
    from ase_jax.character import load_character
    from ase_jax.inference.policy_file import JSON_FILE
    from ase_jax.tasks import make_task

    folder = Path(folder)
    try:
        meta = json.loads((folder / JSON_FILE).read_text())
    except (OSError, ValueError) as e:
        raise AseInputError(f"{folder / JSON_FILE}: not a readable export description ({e})") from None
    from ase_jax.inference.policy_file import FORMAT

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

    try:
        character = load_character(meta["character"]["name"])
        task = make_task(meta["task"]["name"]) if "task" in meta else None
        env_config = env_config_of_export(meta["env"], folder / JSON_FILE)
        llc = session(meta["llc"]) if "llc" in meta else None
        hlc = session(meta["hlc"]) if "hlc" in meta else None
    except KeyError as e:
        raise AseInputError(f"{folder / JSON_FILE}: has no entry {e}; export the run again") from None
    plain_amp = "llc" in meta and meta["llc"].get("latent_dim") == 0  # its llc.onnx has no z input
    llc_fn = None if llc is None else (lambda obs, z: llc(obs=obs)) if plain_amp else (lambda obs, z: llc(obs=obs, z=z))
    return PlayerPolicy(meta, env_config, character, task, llc_fn,
                        None if hlc is None else (lambda obs: hlc(obs=obs)), str(folder))


def load_checkpoint(checkpoint) -> PlayerPolicy:
    """A policy from a run folder or checkpoint, its networks run in JAX."""
    from ase_jax.inference.policy_file import describe
    from ase_jax.inference.trained_run import load_trained_run

    run = load_trained_run(checkpoint)
    config, character, pretrained, task_policy = run.config, run.character, run.pretrained, run.task_policy
    meta = describe(config, character, run.step, str(run.workdir), task_policy)
    llc = hlc = None
    if pretrained is not None:
        act = jax.jit(pretrained.action)
        llc = lambda obs, z: np.asarray(act(jnp.asarray(obs, jnp.float32), jnp.asarray(z, jnp.float32)))
    task = None
    if task_policy is not None:
        high = jax.jit(task_policy.high_level_action)
        hlc = lambda obs: np.asarray(high(jnp.asarray(obs, jnp.float32)))
        task = task_policy.env.task
    return PlayerPolicy(meta, config.env, character, task, llc, hlc, str(checkpoint))


def load_player_policy(path) -> PlayerPolicy:
    """An export folder (it holds policy.json) or a run folder / checkpoint."""
    from ase_jax.inference.policy_file import JSON_FILE

    path = Path(path).expanduser()
    if (path / JSON_FILE).is_file():
        return load_export(path)
    return load_checkpoint(path)
