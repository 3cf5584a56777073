"""The env of each purpose, decided here and nowhere else: which settings of the run's config a
purpose changes, and whether its characters start from the motion data.

Purposes:
- `train`: the run's config as it is; a pre-training run's episodes start from the motion data
  (`state_init`).
- `benchmark`: as `train`; the motion data is loaded only where `state_init` needs it.
- `inspect`: a trained run's env as it was trained, every character started from the default pose
  (no motion data needed): `evaluate diversity`, a loaded model's own env.
- `play`: a character watched for as long as the viewer runs: no fallen starts, no recovery
  episodes, no time limit (falls still end an episode).
- `perturb`: `play`'s, and a fall ends nothing (the push test measures the fall itself).
- `evaluate`: `bench learn`'s evaluation: no fallen starts or recovery episodes, on the JAX back end
  whatever the run trains on (the evaluation's batch joins two resets, which MuJoCo Warp's
  batch-wide contact list does not allow; it is not the hot path).
A task run's env (config.command "task") has the task and no motion data whatever the purpose, and
the task's own settings (`Task.config_overrides`, e.g. getup's fallen starts) apply last.
"""

from __future__ import annotations

from ase_jax.character import load_character
from ase_jax.config import Config
from ase_jax.env import HumanoidEnv
from ase_jax.motions.dataset import load_dataset
from ase_jax.motions.library import build_motion_lib
from ase_jax.package_data import resolve_path
from ase_jax.tasks import make_task

_PLAY = {"fall_init_prob": 0.0, "recovery_episode_prob": 0.0, "episode_length": 1_000_000_000}

# The env settings each purpose changes (keys of EnvConfig).
OVERRIDES: dict[str, dict] = {
    "train": {},
    "benchmark": {},
    "inspect": {},
    "play": _PLAY,
    "perturb": {**_PLAY, "early_termination": False},
    "evaluate": {"fall_init_prob": 0.0, "recovery_episode_prob": 0.0, "mjx_impl": "jax"},
}
FROM_MOTION_DATA = ("train", "benchmark")  # the others start every character from the default pose
PURPOSES = tuple(OVERRIDES)


def is_task_config(config: Config) -> bool:
    return config.command == "task"


def purpose_config(config: Config, purpose: str) -> Config:
    """`config` with `purpose`'s env settings, then a task run's own (state_init stays as saved: the
    env of a purpose that starts from the default pose sets it there, in `make_env`)."""
    if purpose not in OVERRIDES:
        raise ValueError(f"unknown env purpose {purpose!r}; known: {PURPOSES}")
    config = config.replace(**OVERRIDES[purpose])
    if is_task_config(config):
        return config.replace(**make_task(config.task.name).config_overrides)
    return config


def make_env(config: Config, purpose: str, *, character=None, dataset=None, num_envs: int | None = None,
             **env_settings) -> HumanoidEnv:
    """The env of `config` for `purpose` (see the module's docstring). `character` and `dataset`
    (the motion data) are loaded from the config when needed and not given; `num_envs` defaults to
    the config's; `env_settings` are the caller's own env keys on top of the purpose's (e.g. an
    evaluation's episode length)."""
    config = purpose_config(config, purpose).replace(**env_settings)
    if purpose not in FROM_MOTION_DATA and not is_task_config(config):
        # the run's config keeps its state_init (a loaded model's config is the saved one); its env does not
        config = config.replace(state_init="default")
    character = character if character is not None else load_character(config.env.character)
    task = make_task(config.task.name) if is_task_config(config) else None
    motion_lib = None
    if task is None and (purpose == "train" or (purpose == "benchmark" and config.env.state_init != "default")):
        dataset = dataset if dataset is not None else load_dataset(resolve_path(config.env.motions), character)
        motion_lib = build_motion_lib(dataset, character)
    return HumanoidEnv(config.env, character, motion_lib, task, seed=config.run.seed,
                       num_envs=config.ppo.num_envs if num_envs is None else num_envs)
