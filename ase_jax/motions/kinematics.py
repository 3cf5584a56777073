"""Forward kinematics of a skeleton from local rotations (docs/reference.md §1.1).

Works on numpy arrays (float64, converting files) and on jax arrays (inside jit, where the motion
library uses it so that demo body positions are computed from the interpolated pose exactly as
MuJoCo's kinematics computes the agent's).
"""

from __future__ import annotations

from ase_jax import quat


def forward_kinematics(local_rotation, root_translation, parent_indices, local_translation):
    """Global body rotations (wxyz) and positions from local rotations (wxyz).

    p_child = p_parent + R_parent local_translation; R_child = R_parent q_local; the root uses
    root_translation and local_rotation[..., 0, :]. Parents must precede their children.
    Returns (global_rotation (..., B, 4), global_position (..., B, 3)).
    """
    xp = quat._xp(local_rotation, root_translation)
    num_bodies = len(parent_indices)
    rots = [None] * num_bodies
    poss = [None] * num_bodies
    for b in range(num_bodies):
        p = int(parent_indices[b])
        if p < 0:
            rots[b] = local_rotation[..., b, :]
            poss[b] = root_translation
        else:
            rots[b] = quat.mul(rots[p], local_rotation[..., b, :])
            offset = xp.zeros_like(poss[p]) + xp.asarray(local_translation[b], dtype=poss[p].dtype)
            poss[b] = poss[p] + quat.rotate(rots[p], offset)
    return xp.stack(rots, axis=-2), xp.stack(poss, axis=-2)
