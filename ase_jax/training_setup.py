"""What the commands build before they train: the env and motion data of a pre-training config,
its compiled training functions (cached per config and data), and a task run's env with its frozen
low-level controller; whether this machine has an accelerator (the training commands' default
config depends on it). Commands call these; nothing here parses argv or prints."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import pkgutil

import jax

from ase_jax.agents.ase.pretrained import Pretrained
from ase_jax.agents.ase.train import make_train_fns
from ase_jax.character import load_character
from ase_jax.compile_cache import CompileCache
from ase_jax.config.schema import Config, to_dict
from ase_jax.env_factory import make_env, purpose_config
from ase_jax.errors import AseInputError
from ase_jax.inference.pretrained_loading import load_pretrained
from ase_jax.motions.dataset import load_dataset
from ase_jax.package_data import resolve_path


def accelerator_installed() -> bool:
    """Whether JAX can use a GPU or TPU here, judged without starting JAX's backends (a
    multi-process run must call jax.distributed.initialize first): JAX_PLATFORMS when it is set,
    else whether a CUDA, ROCm or TPU plugin is installed."""
    chosen = os.environ.get("JAX_PLATFORMS", "").split(",")[0].strip().lower()
    if chosen:
        return chosen != "cpu"
    plugins = {ep.name for ep in importlib.metadata.entry_points(group="jax_plugins")}
    try:
        import jax_plugins

        plugins |= {m.name for m in pkgutil.iter_modules(jax_plugins.__path__)}
    except ImportError:
        pass
    return bool(plugins) or importlib.util.find_spec("libtpu") is not None


def machine_default_config(reference: str, cpu: str, cpu_sizes: str) -> tuple[str, str | None]:
    """(config name, a line for the user or None) of a training command run without --config:
    `reference` (the reference's sizes) where JAX has an accelerator, else `cpu`, whose sizes
    (`cpu_sizes`) the line names: the reference sizes take many minutes per iteration on a CPU."""
    if accelerator_installed():
        return reference, None
    return cpu, (f"no GPU or TPU found: using the CPU-sized config '{cpu}' (configs/{cpu}.yaml: {cpu_sizes}); "
                 f"--config={reference} keeps the reference's sizes")


def build_pretrain(config: Config):
    """(env, dataset) of a pre-training config: the character, its motion data and the env."""
    character = load_character(config.env.character)
    dataset = load_dataset(resolve_path(config.env.motions), character)
    return make_env(config, "train", character=character, dataset=dataset), dataset


# Compiled training functions of the last two (config, motion data) pairs: repeated runs in one
# process (a notebook, the tests) reuse them instead of compiling again.
_TRAIN_FNS = CompileCache("training functions", max_entries=2)


def compiled_train_fns(config: Config):
    """(env, dataset, TrainFns) for `config`, reusing the compiled functions of an equal earlier run."""
    env, dataset = build_pretrain(config)
    digest = hashlib.sha256(dataset.weights.tobytes())
    for clip in dataset.clips:
        digest.update(clip.qpos.tobytes())
    # The run section says how long to run and where to write, not what is computed (but the seed
    # picks the env's fall states, which the compiled step holds).
    computed = {k: v for k, v in to_dict(config).items() if k != "run"}
    key = (repr(computed), config.run.seed, digest.hexdigest(), tuple(jax.local_devices()))
    env, fns = _TRAIN_FNS.get(key, lambda: (env, make_train_fns(config, env)))
    return env, dataset, fns


# Env keys the low-level controller was trained with and the task env must share.
LLC_SHARED_KEYS = ("character", "physics_steps_per_control_step", "demo_history")


def load_llc(config: Config) -> Pretrained:
    if not config.task.llc:
        raise AseInputError("task training needs --llc=RUN_FOLDER (a python -m ase_jax.pretrain run), or --scratch")
    try:
        llc = load_pretrained(config.task.llc, purpose=None)  # it drives the task's env
    except AseInputError as e:
        raise AseInputError(f"--llc={config.task.llc}: {e}") from None
    if llc.config.ase.latent_dim == 0:
        raise AseInputError(f"--llc={config.task.llc}: a plain AMP run (latent_dim 0) has no latent space for a "
                            "high-level controller to steer; give an ASE run, or train the task with --scratch")
    for key in LLC_SHARED_KEYS:
        mine, theirs = getattr(config.env, key), getattr(llc.config.env, key)
        if mine != theirs:
            raise AseInputError(f"--llc={config.task.llc}: the low-level controller was trained with {key}={theirs!r}, "
                                f"but this run has {key}={mine!r}; they must agree")
    return llc


def build_task(config: Config):
    """(config with the task's own overrides, env, frozen LLC or None for --scratch)."""
    llc = None if config.task.scratch else load_llc(config)
    config = purpose_config(config, "train")  # with the task's own settings
    return config, make_env(config, "train"), llc  # the character is the LLC's: checked above
