"""Fallen poses for fall initialisation and get-up training (docs/reference.md §4.5).

Built once at start-up on the CPU with C MuJoCo (multi-threaded `mujoco.rollout`, with the env's PD
drive, ase_jax.drive, acting between physics steps): each pose starts
from the spawn pose with a uniformly random root orientation, holds random actions U(-0.5, 0.5)
for 300 physics steps (2.5 s: the reference's 150 Isaac Gym `simulate` calls of its 1/60 s sim dt;
docs/reference.md §4.5; an older note said 1.25 s, mixing in our 1/120 s substep) and keeps the final root and joint
positions; velocities are zero.
The reference drops the character from its spawn height of 0.89 m, where a random orientation can
put limbs into the floor; we drop it from 1.3 m so that MuJoCo's contact solver is not handed
deep penetrations.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ase_jax.character import Character, character_spec
from ase_jax.drive import make_drive, mujoco_rollout

DROP_HEIGHT = 1.3
HOLD_STEPS = 300


def make_fall_states(character: Character, num: int, seed: int = 0, self_collision: bool = True,
                     torque_limit="gear") -> np.ndarray:
    """(num, nq) qpos of fallen characters."""
    model = character_spec(character, self_collision).compile()
    data = mujoco.MjData(model)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.zeros(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state, spec)
    rng = np.random.default_rng(seed)
    init = np.repeat(state[None], num, axis=0)
    rot = rng.normal(size=(num, 4))
    init[:, 1 + 2] = DROP_HEIGHT  # state layout: time, qpos, qvel, ...
    init[:, 1 + 3: 1 + 7] = rot / np.linalg.norm(rot, axis=-1, keepdims=True)
    actions = rng.uniform(-0.5, 0.5, (num, model.nu))
    target = character.pd_offset + character.pd_scale * actions
    states = mujoco_rollout(model, make_drive(character, torque_limit), init, target, HOLD_STEPS)
    return states[:, 1: 1 + model.nq].copy()
