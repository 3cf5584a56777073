"""Policy and discriminator observations (docs/reference.md §3), as pure functions of arrays.

Both are computed in the heading-local frame H = heading_inv(root rotation). The discriminator
("AMP") frame is a function of (qpos, qvel, body positions) only, so the agent's frames (from MJX
data) and the demo frames (from the motion library's states) come from the same function on the
same kind of state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ase_jax import quat
from ase_jax.character import Character


def _joint_rotations(qpos: jax.Array, character: Character) -> jax.Array:
    """(J, 4) local rotation of each actuated joint: the ball's quaternion, the hinge's angle-axis."""
    rots = []
    for joint in character.joints:
        if joint.kind == "ball":
            rots.append(qpos[joint.qpos_adr: joint.qpos_adr + 4])
        else:
            angle = qpos[joint.qpos_adr]
            rots.append(quat.from_axis_angle(jnp.asarray(joint.axis, qpos.dtype), angle))
    return jnp.stack(rots)


def amp_obs_frame(qpos: jax.Array, qvel: jax.Array, body_pos: jax.Array, character: Character) -> jax.Array:
    """One discriminator frame (docs/reference.md §3.2): 13 + 6 J + (nv - 6) + 3 K values (140 for sword & shield).

    [root height, tan_norm(H q_root), H v_root, H w_root, tan_norm of each joint rotation,
    joint velocities, H (p_key - p_root)]. qvel's root angular velocity is in the body frame
    (MuJoCo's free joint); it is rotated to the world frame first, as ASE observes it.
    """
    root_pos, root_rot = qpos[0:3], qpos[3:7]
    h = quat.heading_inv(root_rot)
    root_vel = quat.rotate(h, qvel[0:3])
    root_ang_vel = quat.rotate(h, quat.rotate(root_rot, qvel[3:6]))
    key_pos = body_pos[jnp.asarray(character.key_body_ids)] - root_pos
    key_pos = quat.rotate(jnp.broadcast_to(h, key_pos.shape[:-1] + (4,)), key_pos)
    return jnp.concatenate([
        root_pos[2:3],
        quat.tan_norm(quat.mul(h, root_rot)),
        root_vel,
        root_ang_vel,
        quat.tan_norm(_joint_rotations(qpos, character)).reshape(-1),
        qvel[6:],
        key_pos.reshape(-1),
    ])


def amp_obs_size(character: Character) -> int:
    return 13 + character.dof_obs_size + (character.nv - 6) + 3 * len(character.key_body_ids)


def policy_obs(body_pos: jax.Array, body_rot: jax.Array, body_vel: jax.Array, body_ang_vel: jax.Array) -> jax.Array:
    """Policy observation (docs/reference.md §3.1) from maximal coordinates of all B bodies (root first).

    [root height, H (p_b - p_root) for b >= 1, tan_norm(H q_b), H v_b, H w_b]: 1 + 15 B - 3 values
    (253 for sword & shield). The root's rotation entries are tan_norm(H q_root), heading-invariant
    like the rest; the reference's `localRootObs` quirk (which puts the *global* root rotation there)
    is not copied, so that turning the whole character about the vertical leaves the observation
    unchanged.
    """
    root_pos = body_pos[0]
    h = jnp.broadcast_to(quat.heading_inv(body_rot[0]), body_rot.shape)
    local_pos = quat.rotate(h[1:], body_pos[1:] - root_pos)
    local_rot = quat.tan_norm(quat.mul(h, body_rot))
    return jnp.concatenate([
        root_pos[2:3],
        local_pos.reshape(-1),
        local_rot.reshape(-1),
        quat.rotate(h, body_vel).reshape(-1),
        quat.rotate(h, body_ang_vel).reshape(-1),
    ])


def policy_obs_size(character: Character) -> int:
    return 1 + 15 * character.num_bodies - 3
