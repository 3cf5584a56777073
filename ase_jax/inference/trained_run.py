"""What a run folder (or one of its checkpoints) holds, decided once: a pre-training run (a low-level
policy, its discriminator and encoder) or a task run (a high-level controller, with the frozen
low-level policy it steers unless it was trained --scratch). Every reader that accepts either kind
(play, perturb, export, the C-MuJoCo player) asks here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ase_jax.agents.ase.pretrained import Pretrained
from ase_jax.checkpoint import find_checkpoint, read_saved_config
from ase_jax.errors import AseInputError
from ase_jax.inference.pretrained_loading import load_pretrained
from ase_jax.inference.task_policy import TaskPolicy, load_task_policy


def is_task_run(checkpoint) -> bool:
    """Whether a run folder or checkpoint is a task run's (else a pre-training run's)."""
    return read_saved_config(checkpoint).get("command") == "task"


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    config: object  # the run's Config (a task run's for task runs)
    character: object
    step: int
    workdir: Path
    pretrained: Pretrained | None  # the low-level policy (a task run's frozen one); None for --scratch
    task_policy: TaskPolicy | None  # None for pre-training runs


def load_trained_run(checkpoint, purpose: str | None = None) -> TrainedRun:
    """A run folder or checkpoint as either kind of trained policy; its env built for `purpose`
    (env_factory's), or none (`purpose=None`: a task run's env is built whatever the purpose). Any
    problem reading it is an AseInputError."""
    try:
        workdir, step = find_checkpoint(checkpoint)
        if is_task_run(checkpoint):
            policy = load_task_policy(checkpoint, purpose=purpose or "inspect")
            return TrainedRun(policy.config, policy.env.character, policy.step, workdir, policy.llc, policy)
        from ase_jax.character import load_character

        pretrained = load_pretrained(checkpoint, purpose=purpose)
        character = pretrained.env.character if pretrained.env is not None else load_character(
            pretrained.config.env.character)
        return TrainedRun(pretrained.config, character, pretrained.step, workdir, pretrained, None)
    except AseInputError:
        raise
    except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds of errors for bad files
        raise AseInputError(f"{checkpoint}: cannot read this checkpoint ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
