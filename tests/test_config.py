"""Sectioned configs: one source of defaults, per-command keys, files written for a command."""

import pytest

from ase_jax.config import load_config
from ase_jax.config.flags import config_from_args
from ase_jax.config.keys import ConfigError
from ase_jax.config.schema import from_dict, to_dict
from ase_jax.config.sections import COMMANDS, SECTIONS
from ase_jax.pretrain import main as pretrain_main
from ase_jax.task import main as task_main


def test_default_config_file_changes_no_default():
    """configs/default.yaml holds no values: the dataclasses are the one source of defaults."""
    config = load_config("default")
    for section in COMMANDS["pretrain"]:
        assert getattr(config, section) == SECTIONS[section](), section
    assert config.task is None


def test_files_hold_only_their_differences_by_section():
    tiny, task_tiny = load_config("tiny"), load_config("task_tiny")
    assert (tiny.ppo.num_envs, tiny.ase.disc_units, tiny.env.self_collision) == (4, (64, 64), False)
    assert tiny.ppo.learning_rate == SECTIONS["ppo"]().learning_rate  # not set in tiny: the default
    assert task_tiny.command == "task" and task_tiny.ase is None
    assert (task_tiny.env.state_init, task_tiny.ppo.action_log_std, task_tiny.task.disc_reward_w) == ("default", -2.3, 0.1)


def test_flags_parse_as_users_type_them():
    config = config_from_args(["--config=tiny", "--learning_rate=1e-4", "--actor_units=32,32", "--ppo.horizon=16",
                               "--motions=123"])
    assert config.ppo.learning_rate == 1e-4 and config.ppo.actor_units == (32, 32) and config.ppo.horizon == 16
    assert config.env.motions == "123"  # paths stay strings
    task = config_from_args(["--name=reach", "--disc_reward_w=0.3"], command="task", default="task_tiny")
    assert task.task.name == "reach" and task.task.disc_reward_w == 0.3  # the task section's key


@pytest.mark.parametrize("load, message", [
    (lambda: load_config("tiny", {"task_reward_w": 1.0}), "'task_reward_w' is a key of the task section, which "
                                                          "python -m ase_jax.pretrain does not use"),
    (lambda: load_config("task_tiny", {"disc_coef": 1.0}), "'disc_coef' is a key of the ase section"),
    (lambda: load_config("tiny", command="task"), "'tiny' is a pretrain config; python -m ase_jax.task needs a task"),
    (lambda: load_config("task", command="pretrain"), "'task' is a task config"),
    (lambda: load_config("tiny", {"ppo.num_env": 3}), "did you mean 'ppo.num_envs'"),
    (lambda: load_config("tiny", {"asee.latent_dim": 3}), "unknown config section 'asee'; did you mean 'ase'"),
    (lambda: load_config("tiny", {"task.name": "reach"}), "does not use the task section"),
    (lambda: from_dict({"command": "pretrain", "ppo": {"num_envs": 0}}), "'num_envs' = 0 must be > 0"),
])
def test_keys_a_command_does_not_use_are_refused(load, message):
    with pytest.raises(ConfigError, match=message):
        load()


def test_a_config_file_for_the_other_command_is_refused(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text("base: tiny\ntask:\n  name: reach\n")
    with pytest.raises(ConfigError, match="a pretrain config cannot set the task section"):
        load_config(str(path))
    path.write_text("base: tiny\nppo: 3\n")
    with pytest.raises(ConfigError, match="'ppo' is not a config section"):
        load_config(str(path))
    path.write_text("base: tiny\nnum_envs: 3\n")
    with pytest.raises(ConfigError, match=r"keys go under their section, e.g. ppo: \{num_envs: ...\}"):
        load_config(str(path))


def test_saved_configs_round_trip():
    for name in ("tiny", "task_tiny", "no_sd"):
        config = load_config(name)
        assert from_dict(to_dict(config)) == config


def test_cli_refuses_in_one_line(capsys):
    """The issue's new-user case: a pre-training config given to `task` is one line, exit 1."""
    assert task_main(["--name=heading", "--llc=L", "--config=tiny"]) == 1
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "needs a task config such as 'task' or 'task_tiny'" in err and "Traceback" not in err
    assert pretrain_main(["--config=tiny", "--task_reward_w=1"]) == 1
    assert "does not use" in " ".join(capsys.readouterr().err.split())
