"""`load_policy`: what a folder holds, decided once, loaded as the one inference `Policy`.

A folder holding policy.json is an export (`inference.export_folder`); otherwise it is a run folder
or one of its checkpoints: a pre-training run (a low-level policy, its discriminator and encoder) or
a task run (a high-level controller, with the frozen low-level policy it steers unless it was
trained --scratch; everything from the task run's own checkpoint).
"""

from __future__ import annotations

from pathlib import Path

from ase_jax.checkpoint import find_checkpoint, read_saved_config
from ase_jax.errors import AseInputError
from ase_jax.inference.policy import Policy, described_sizes
from ase_jax.inference.policy_file import JSON_FILE, describe


def is_task_run(checkpoint) -> bool:
    """Whether a run folder or checkpoint is a task run's (else a pre-training run's); reads its config only."""
    return read_saved_config(checkpoint).get("command") == "task"


def is_export_folder(path) -> bool:
    """Whether `path` is an export folder of `python -m ase_jax.export` (it holds policy.json)."""
    return (Path(path).expanduser() / JSON_FILE).is_file()


def load_policy(path, purpose: str | None = "inspect") -> Policy:
    """An export folder, a run folder (its latest checkpoint) or one checkpoint folder as a `Policy`.
    A run's env is built for `purpose` (env_factory's: inspect, play, perturb, ...); with
    `purpose=None` a pre-training run gets none (a task run's env is built whatever the purpose).
    Any problem reading it is an AseInputError naming the folder."""
    if is_export_folder(path):
        from ase_jax.inference.export_folder import load_export

        return load_export(Path(path).expanduser())
    return _load_run(path, purpose)


def _load_run(checkpoint, purpose: str | None) -> Policy:
    try:
        workdir, step = find_checkpoint(checkpoint)
        if is_task_run(checkpoint):
            from ase_jax.inference.task_policy import load_task_policy

            task_policy = load_task_policy(checkpoint, purpose=purpose or "inspect")
            config, env, pretrained = task_policy.config, task_policy.env, task_policy.llc
            character = env.character
        else:
            from ase_jax.character import load_character
            from ase_jax.inference.pretrained_loading import load_pretrained

            task_policy = None
            pretrained = load_pretrained(checkpoint, purpose=purpose)
            config, env = pretrained.config, pretrained.env
            character = env.character if env is not None else load_character(config.env.character)
    except AseInputError:
        raise
    except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds of errors for bad files
        raise AseInputError(f"{checkpoint}: cannot read this checkpoint ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    meta = describe(config, character, step, str(Path(workdir).resolve()), task_policy)
    return Policy(
        low_level=None if pretrained is None else pretrained.action,
        high_level=None if task_policy is None else task_policy.high_level_action,
        **described_sizes(meta), meta=meta, env_config=config.env, character=character,
        task=None if task_policy is None else env.task, source=str(checkpoint), step=step, env=env, config=config,
        pretrained=pretrained, task_policy=task_policy)
