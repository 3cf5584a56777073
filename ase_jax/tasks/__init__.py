"""Tasks for the high-level controller: one module each, registered here by name."""

from ase_jax.tasks.base import Task
from ase_jax.tasks.getup import Getup
from ase_jax.tasks.heading import Heading
from ase_jax.tasks.location import Location
from ase_jax.tasks.reach import Reach
from ase_jax.tasks.strike import Strike

TASKS: dict[str, type[Task]] = {t.name: t for t in (Heading, Location, Reach, Strike, Getup)}


def make_task(name: str) -> Task:
    from ase_jax.errors import AseInputError

    if name not in TASKS:
        import difflib

        close = difflib.get_close_matches(name, list(TASKS), n=1)
        raise AseInputError(f"unknown task '{name}'" + (f"; did you mean '{close[0]}'?" if close else "")
                            + f"; known tasks: {sorted(TASKS)}")
    return TASKS[name]()

