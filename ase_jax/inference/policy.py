"""The one inference policy: a trained policy ready to act, whatever it came from (a pre-training run,
a task run, or an export folder of `python -m ase_jax.export`), as brax's `make_inference_fn` serves
every caller. `inference.policy_loading.load_policy` makes one; play, task playback, `evaluate`,
`export` and the C-MuJoCo player take one.

How it acts is defined here once (`Policy.act`): a task run's high-level controller picks a latent
(or, `--scratch`, the action itself) at every `steps_per_action`-th control step from the
observation then, the pick is held in between, and the low-level policy acts on the character's part
of the observation under the held latent. The low-level action itself is
`agents.ase.pretrained.deterministic_action` (a run) or the same graph in ONNX (an export).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ase_jax.errors import AseInputError


def if_then_else(pred, then: Callable, otherwise: Callable):
    """Python's branch, in the signature of `jax.lax.cond` (the host player steps one state at a time)."""
    return then() if pred else otherwise()


def described_sizes(meta: dict) -> dict:
    """The sizes a `Policy` carries, read from policy.json's content (`inference.policy_file.describe`),
    the one description of a run and of its export alike."""
    return {"steps_per_action": meta["task"]["llc_steps"] if "task" in meta else 1,
            "character_obs_size": meta["observation"]["size"],
            "latent_dim": meta["llc"]["latent_dim"] if "llc" in meta else None}


@dataclasses.dataclass(frozen=True)
class Policy:
    """A loaded policy. Its networks are JAX functions for a run (`traceable`: they can go inside a
    jitted rollout) or onnxruntime sessions for an export (numpy in and out)."""

    low_level: Callable | None  # (character obs, z) -> action in [-1, 1]; None for a --scratch task policy
    high_level: Callable | None  # task obs -> unit latent (--scratch: the action); None for pre-training runs
    steps_per_action: int  # control steps a high-level pick is held for (1 without one, and for --scratch)
    character_obs_size: int  # the low-level policy reads the first this many entries of the observation
    latent_dim: int | None  # the low-level policy's latent size (0: plain AMP); None without one
    meta: dict  # what it expects and does: policy.json's content (inference.policy_file.describe)
    env_config: object  # config.sections.EnvConfig of the run
    character: object
    task: object  # tasks.base.Task or None
    source: str  # the folder it was loaded from
    step: int  # the checkpoint's step
    traceable: bool = True
    # A run's loaded models (None for an export folder):
    env: object = None  # the MJX env built for the loading purpose (None with purpose=None for pre-training runs)
    config: object = None  # the run's Config (a task run's own)
    pretrained: object = None  # agents.ase.pretrained.Pretrained: the low-level model with its discriminator
    task_policy: object = None  # inference.task_policy.TaskPolicy: the high-level networks

    @property
    def task_name(self) -> str | None:
        return self.meta.get("task", {}).get("name")

    @property
    def is_task(self) -> bool:
        return self.high_level is not None

    def act(self, held, obs, t, cond: Callable = if_then_else):
        """One control step t (counted from the episode's start): returns (the high-level pick held
        after it, the action). `held` is the last pick (a task policy; anything of its shape at t=0),
        or the latent to act under (a pre-training run). Inside `lax.cond` the high-level output and
        `held` must agree in shape and dtype (float32). `cond` is `jax.lax.cond` inside a jitted
        rollout, Python's branch on the host."""
        if self.high_level is not None:
            held = cond(t % self.steps_per_action == 0, lambda: self.high_level(obs), lambda: held)
        if self.low_level is None:
            return held, held
        return held, self.low_level(obs[..., : self.character_obs_size], held)

    def on_host(self) -> "Policy":
        """The same policy with numpy in and out, each network one jitted call (the C-MuJoCo player);
        an export's already is."""
        if not self.traceable:
            return self

        def host(fn):
            if fn is None:
                return None
            jitted = jax.jit(fn)
            return lambda *args: np.asarray(jitted(*(jnp.asarray(a, jnp.float32) for a in args)))

        return dataclasses.replace(self, low_level=host(self.low_level), high_level=host(self.high_level),
                                   traceable=False)

    def pretraining_model(self, what: str):
        """The pre-training run's model (policy, discriminator, encoder and env) for `what`, which
        needs one; a task run or an export folder is an error naming the source."""
        if self.pretrained is None or self.is_task:
            kind = "an export folder" if self.config is None else "a task run"
            raise AseInputError(f"{self.source}: {kind}; {what} needs a pre-training run folder "
                                "(python -m ase_jax.pretrain) or one of its checkpoints")
        return self.pretrained
