"""The character's geoms and how low they reach: which geoms are its body and which its feet, and
the height of their lowest points in a pose (C MuJoCo kinematics). Retargeting grounds a clip and
keeps the character's parts apart with these; its report and the authored clips' checks measure
with them.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ase_jax.character import Character


def geom_lowest_z(model: mujoco.MjModel, data: mujoco.MjData, geoms) -> np.ndarray:
    """Height of the lowest point of each of `geoms` after mj_kinematics (spheres, capsules,
    cylinders, boxes)."""
    out = np.full(len(geoms), np.inf)
    for i, g in enumerate(geoms):
        size, r, z = model.geom_size[g], data.geom_xmat[g].reshape(3, 3), data.geom_xpos[g][2]
        kind = model.geom_type[g]
        if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
            out[i] = z - size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            out[i] = z - abs(r[2, 2]) * size[1] - size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
            out[i] = z - abs(r[2, 2]) * size[1] - size[0] * np.sqrt(max(0.0, 1.0 - r[2, 2] ** 2))
        elif kind == mujoco.mjtGeom.mjGEOM_BOX:
            out[i] = z - np.abs(r[2]) @ size[:3]
    return out


def foot_geoms(character: Character) -> dict:
    """{contact body name: its geom ids} for the character's contact bodies (the feet)."""
    model = character.model
    out = {}
    for b in character.contact_body_ids:
        out[character.body_names[b]] = [g for g in range(model.ngeom) if model.geom_bodyid[g] == b + 1]
    return out


def character_geoms(model: mujoco.MjModel) -> list[int]:
    """The character's colliding geoms (not the floor's, not the visual-only ones)."""
    return [g for g in range(model.ngeom)
            if model.geom_bodyid[g] > 0 and model.geom_contype[g] | model.geom_conaffinity[g]]


def lowest_points(character: Character, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((T, F) height of each foot's lowest point per frame, in `foot_geoms` order; (T,) height of
    the character's lowest point per frame)."""
    model, data = character.model, mujoco.MjData(character.model)
    feet = foot_geoms(character)
    body = character_geoms(model)
    out, lowest = np.zeros((qpos.shape[0], len(feet))), np.zeros(qpos.shape[0])
    for t in range(qpos.shape[0]):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        out[t] = [geom_lowest_z(model, data, g).min() for g in feet.values()]
        lowest[t] = geom_lowest_z(model, data, body).min()
    return out, lowest
