"""Strike: knock over a target, a free box in the scene the character can hit (docs/reference.md §7.4)."""

import jax
import jax.numpy as jnp
import mujoco

from ase_jax import quat
from ase_jax.env import termination
from ase_jax.quat import _xp
from ase_jax.tasks.base import Task, heading_local, root_pos, root_rot, root_velocity_xy

TARGET = "strike_target"
SHIELD_PROXY = "shield_proxy"  # in the MJCF: the shield's stand-in against boxes


class Strike(Task):
    name = "strike"
    # the task part of the observation, appended to the character's (docs/export.md): name, size, meaning
    obs_layout = (("target_position", 3, "target - root in xy (heading frame), the target's height in z (m)"),
                  ("target_rotation", 6, "tan_norm of the target's rotation in the heading frame"),
                  ("target_velocity", 3, "heading frame (m/s)"),
                  ("target_angular_velocity", 3, "world-frame angular velocity in the heading frame (rad/s)"))
    change_steps = None  # the target is placed once per episode
    half_size = (0.2, 0.2, 0.9)  # 0.4 x 0.4 x 1.8 m
    density = 30.0
    strike_bodies = ("sword", "right_hand", "right_lower_arm")

    def add_props(self, spec):
        body = spec.worldbody.add_body(name=TARGET, pos=[2.0, 0.0, self.half_size[2]])
        body.add_freejoint(name=TARGET)
        # Collision bits (humanoid_xml/: floor 1/2, character 2/3): the target touches the floor and
        # the character through its conaffinity 3 and, through contype 4, the shield's box proxy
        # (MJX has no box-cylinder collision; the shield's cylinder, contype 8, does not meet it).
        # A shield hit pushes the target and, as in the reference, counts as a body other than the
        # striking ones touching something.
        body.add_geom(name=TARGET, type=mujoco.mjtGeom.mjGEOM_BOX, size=list(self.half_size), density=self.density,
                      contype=4, conaffinity=3, condim=3, friction=[1.0, 0.05, 0.05], rgba=[0.8, 0.3, 0.2, 1.0])

    @staticmethod
    def _adr(character):
        return character.nq, character.nv, 1 + character.num_bodies  # qpos, qvel, body id of the target

    def sample_targets(self, key, data, character):
        return {}

    def place_props(self, key, state, data, character):
        """At U(0.5, d_max) from the root at a uniform angle (d_max 1.5 or 10, equally likely), upright,
        uniform yaw, at rest."""
        k_far, k_dist, k_angle, k_yaw = jax.random.split(key, 4)
        d_max = jnp.where(jax.random.bernoulli(k_far), 10.0, 1.5)
        dist = 0.5 + jax.random.uniform(k_dist, ()) * (d_max - 0.5)
        angle = jax.random.uniform(k_angle, (), minval=-jnp.pi, maxval=jnp.pi)
        xy = root_pos(data)[:2] + dist * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        yaw = jax.random.uniform(k_yaw, (), minval=-jnp.pi, maxval=jnp.pi)
        rot = quat.from_axis_angle(jnp.array([0.0, 0.0, 1.0]), yaw)
        q0, v0, _ = self._adr(character)
        qpos = data.qpos.at[q0: q0 + 7].set(jnp.concatenate([xy, jnp.array([self.half_size[2]]), rot]))
        return data.replace(qpos=qpos, qvel=data.qvel.at[v0: v0 + 6].set(0.0))

    def _target(self, data, character):
        q0, v0, _ = self._adr(character)
        pos, rot = data.qpos[q0: q0 + 3], data.qpos[q0 + 3: q0 + 7]
        return pos, rot, data.qvel[v0: v0 + 3], quat.rotate(rot, data.qvel[v0 + 3: v0 + 6])

    def observe(self, state, data, character):
        pos, rot, vel, ang_vel = self._target(data, character)
        local = (pos - root_pos(data)).at[2].set(pos[2])
        h = quat.heading_inv(root_rot(data))
        return jnp.concatenate([heading_local(data, local), quat.tan_norm(quat.mul(h, rot)),
                                heading_local(data, vel), heading_local(data, ang_vel)])

    def reward(self, state, data, prev_root_pos, dt, character):
        pos, rot, _, _ = self._target(data, character)
        return strike_reward(rot, pos[:2], root_pos(data)[:2], root_velocity_xy(data, prev_root_pos, dt))

    def terminated(self, state, data, contacts, scene):
        """The target was hit while a body other than the feet and the striking arm touches something.

        "Hit" is a contact between the target and a character body. The reference tests the
        target's horizontal contact force > 1 N from any source, which also fires while the target
        slides or topples on the floor; MJX gives no per-contact forces without solving for them.
        Works on MJX's contact list (jax) and C MuJoCo's (numpy): `ase_jax.env.termination`.
        """
        xp = _xp(contacts.geom, contacts.dist)
        target_geom = scene.geom_id(TARGET)
        touching = contacts.dist < 0
        g1, g2 = contacts.geom[:, 0], contacts.geom[:, 1]
        geom_body = xp.asarray(scene.geom_body)
        other = xp.where(g1 == target_geom, geom_body[g2], geom_body[g1])
        hit = xp.any(touching & ((g1 == target_geom) | (g2 == target_geom)) & (other < scene.num_bodies))
        allowed = scene.is_contact_body | scene.body_mask(self.strike_bodies)
        return hit & xp.any(termination.body_contacts(contacts, scene, xp) & ~xp.asarray(allowed))


def strike_reward(target_rot, target_xy, root_xy, velocity_xy):
    """0.6 max(1 - up_z, 0) + 0.4 r_vel towards the target; 1 once the target is knocked over."""
    up_z = quat.rotate(target_rot, jnp.array([0.0, 0.0, 1.0]))[2]
    r_rot = jnp.maximum(1.0 - up_z, 0.0)
    delta = target_xy - root_xy
    d = delta / jnp.maximum(jnp.linalg.norm(delta), 1e-6)
    s = jnp.dot(d, velocity_xy)
    r_vel = jnp.where(s > 0, jnp.exp(-4.0 * jnp.maximum(1.0 - s, 0.0) ** 2), 0.0)
    return jnp.where(up_z < 0.2, 1.0, 0.6 * r_rot + 0.4 * r_vel)
