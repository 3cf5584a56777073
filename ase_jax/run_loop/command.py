"""The body of a training command (`pretrain`, `task`): its flags read once into a config, its
`--help`, the console it prints on, and bad input or a stop turned into one line and an exit status."""

from __future__ import annotations

import signal
import traceback

from rich.console import Console

from ase_jax import cli, distributed
from ase_jax.config.flags import config_from_args
from ase_jax.config.help import config_help
from ase_jax.errors import AseInputError
from ase_jax.run_loop.stop import TrainingStopped


def run_command(train, argv: list[str], command: str, default_config) -> int:
    """The body of a training command: config from `argv` (`--config=NAME --key=value ...`, read
    once, by `config.flags.config_from_args`; a config written for `command`; without --config
    `default_config`, a name or a function of the console returning one), then
    `train(config, console)`; bad input is printed as one clear line and exits with status 1.

    With `--coordinator_address` (or under srun/mpirun) this process first joins the others of a
    multi-process run (`ase_jax.distributed`), and all check that they run the same thing; only
    process 0 prints progress.

    `--help` (`-h`) prints every config key of the command's sections, with type, default and help
    (`ase_jax.config.help.config_help`), and returns 0."""
    if cli.wants_help(argv):  # the defaults shown are those of the config this machine would run
        print(config_help(command, default_config(None) if callable(default_config) else default_config), end="")
        return 0
    console = command_console()
    try:
        default = (lambda: default_config(console)) if callable(default_config) else default_config
        config = config_from_args(argv, command, default)
        if distributed.initialize(config.run):  # before anything touches a jax device
            distributed.check_agreement(config)
            console = command_console(quiet=not distributed.is_primary())
        train(config, console)
    except AseInputError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        distributed.exit_now_if_joined(1)
        return 1
    except TrainingStopped as e:  # its line is printed
        distributed.exit_now_if_joined(e.code)
        return e.code
    except KeyboardInterrupt:  # before the loop, which handles Ctrl-C itself (StopRequests)
        Console(stderr=True).print(f"{command}: stopped by SIGINT while starting, before any iteration; nothing was "
                                   "saved", highlight=False, soft_wrap=True)
        distributed.exit_now_if_joined(128 + signal.SIGINT)
        return 128 + signal.SIGINT
    except BaseException:
        if distributed.joined():  # the others must not wait for this process
            traceback.print_exc()
            distributed.exit_now_if_joined(1)
        raise
    return 0


def command_console(**kwargs) -> Console:
    """The console a training command prints on. Where stdout is not a terminal (a log file, nohup,
    a batch scheduler, `| tee`) its lines are written whole: rich would wrap them at 80 columns."""
    console = Console(**kwargs)
    console.soft_wrap = not console.is_terminal
    return console
