"""Checkpoints of a training run (orbax): the whole training state plus the resolved config.

- `layout.py`: the saved form (FORMAT 2): leaves by tree path and their layout; a part of a saved
  state taken out by path (`select_subtree`).
- `checkpointer.py`: `Checkpointer`, what training saves, keeps and resumes from (an unreadable
  checkpoint is moved aside, never deleted).
- `mismatch.py`: what differs between a saved run and one that would resume it.
- `reading.py`: a run folder read without training (play, evaluate, export, task --llc): the newest
  checkpoint that can be read, and nothing moved.

The package hands on the readers' three names; everything else is imported from its module.
"""

from ase_jax.checkpoint.reading import find_checkpoint, read_checkpoint, read_saved_config

__all__ = ["find_checkpoint", "read_checkpoint", "read_saved_config"]
