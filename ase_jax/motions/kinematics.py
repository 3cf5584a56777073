"""Forward kinematics of a skeleton from local rotations (facts sheet section 1.1)."""

from __future__ import annotations

import numpy as np

from ase_jax import quat


def forward_kinematics(local_rotation, root_translation, parent_indices, local_translation):
    """Global body rotations (wxyz) and positions from local rotations (wxyz).

    p_child = p_parent + R_parent local_translation; R_child = R_parent q_local; the root uses
    root_translation and local_rotation[..., 0, :]. Parents must precede their children.
    Returns (global_rotation (..., B, 4), global_position (..., B, 3)).
    """
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
            poss[b] = poss[p] + quat.rotate(rots[p], np.broadcast_to(local_translation[b], poss[p].shape))
    return np.stack(rots, axis=-2), np.stack(poss, axis=-2)
