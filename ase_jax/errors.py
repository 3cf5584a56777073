"""Errors raised for bad user input (files, configs, checkpoints).

Every message names the offending file or key and what was expected, so command-line entry points
can print it as is and exit with status 1.
"""


class AseInputError(ValueError):
    """Bad user input: a file, dataset, MJCF, config value or checkpoint that cannot be used."""


class MotionFileError(AseInputError):
    """A motion clip or dataset file that is missing, corrupt, truncated or mismatched."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"motion file {self.path}: {problem}")


class CharacterError(AseInputError):
    """An MJCF that does not describe a character the environment can drive."""
