"""Characters: an MJCF plus the facts the environment and the motion library need about it.

A character is described by its MJCF (`humanoid_xml/`) and a small `CharacterSpec` naming the bodies
with special roles (key bodies for the discriminator, contact bodies for termination). Everything
else (body tree, joint layout, PD targets) is read from the MJCF, so a new character needs an MJCF
and one registry entry, not code changes.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

import mujoco
import numpy as np

from ase_jax.errors import CharacterError
from ase_jax.package_data import data_path

XML_DIR = data_path("humanoid_xml")


@dataclasses.dataclass(frozen=True)
class CharacterSpec:
    """Roles of bodies that the MJCF cannot express (docs/reference.md §3.2 and §4.3)."""

    xml: str
    key_bodies: tuple[str, ...]
    contact_bodies: tuple[str, ...]
    termination_height: float = 0.15
    # Bodies with their own termination height (the larger of this and the default is used).
    termination_height_overrides: tuple[tuple[str, float], ...] = ()


CHARACTERS: dict[str, CharacterSpec] = {
    "sword_shield": CharacterSpec(
        xml="sword_shield_humanoid.xml",
        key_bodies=("right_hand", "left_hand", "right_foot", "left_foot", "sword", "shield"),
        contact_bodies=("right_foot", "left_foot"),
        termination_height_overrides=(("head", 0.3), ("left_lower_arm", 0.32)),
    ),
    "amp_humanoid": CharacterSpec(
        xml="amp_humanoid.xml",
        key_bodies=("right_hand", "left_hand", "right_foot", "left_foot"),
        contact_bodies=("right_foot", "left_foot"),
        termination_height_overrides=(("head", 0.3),),
    ),
}


@dataclasses.dataclass(frozen=True)
class Joint:
    """One actuated joint of the character (ball = 3 DoF, hinge = 1 DoF)."""

    name: str
    body: int  # body index in character order (0 = root; MuJoCo body id - 1)
    kind: str  # "ball" or "hinge"
    qpos_adr: int
    dof_adr: int
    axis: tuple[float, float, float]  # hinge axis in the body frame (unused for balls)
    range: tuple[float, float]  # radians; for a ball (0, largest angle its axis limits allow)
    # Radians, per DoF: a hinge's range, or each exp-map axis's limit of a ball joint (its actuators'
    # lengthrange, enforced by ase_jax.drive; without them, +-the ball's cone limit or +-pi).
    axis_ranges: tuple[tuple[float, float], ...] = ()
    axis_limited: bool = False  # a ball whose per-axis limits ase_jax.drive enforces

    @property
    def num_dof(self) -> int:
        return 3 if self.kind == "ball" else 1


@dataclasses.dataclass(frozen=True, eq=False)
class Character:
    name: str
    xml_path: Path
    model: mujoco.MjModel
    body_names: tuple[str, ...]
    parent_indices: tuple[int, ...]  # -1 for the root
    joints: tuple[Joint, ...]
    key_body_ids: tuple[int, ...]
    contact_body_ids: tuple[int, ...]
    termination_heights: tuple[float, ...]  # per body
    pd_offset: np.ndarray  # (nu,) PD target = offset + scale * action (docs/reference.md §4.1)
    pd_scale: np.ndarray  # (nu,)

    @property
    def num_bodies(self) -> int:
        return len(self.body_names)

    @property
    def nq(self) -> int:
        return self.model.nq

    @property
    def nv(self) -> int:
        return self.model.nv

    @property
    def num_actions(self) -> int:
        return self.model.nu

    @property
    def dof_obs_size(self) -> int:
        """Size of the DoF rotations in the discriminator observation (6 per joint)."""
        return 6 * len(self.joints)

    def body_id(self, name: str) -> int:
        if name not in self.body_names:
            raise CharacterError(f"{self.xml_path}: no body named '{name}'"
                                 f"{_did_you_mean(name, self.body_names)}")
        return self.body_names.index(name)


def _did_you_mean(name, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def load_character(name_or_xml: str | Path, spec: CharacterSpec | None = None) -> Character:
    """Loads a registered character by name, or any MJCF path together with its `spec`."""
    if spec is None:
        key = str(name_or_xml)
        if key not in CHARACTERS:
            raise CharacterError(f"unknown character '{key}'{_did_you_mean(key, CHARACTERS)}; "
                                 f"known: {sorted(CHARACTERS)} (or pass an MJCF path with a CharacterSpec)")
        spec = CHARACTERS[key]
        name, xml_path = key, XML_DIR / spec.xml
    else:
        xml_path = Path(name_or_xml)
        name = xml_path.stem
    if not xml_path.is_file():
        raise CharacterError(f"{xml_path}: MJCF file not found")
    try:
        model = mujoco.MjModel.from_xml_path(str(xml_path))
    except ValueError as e:
        raise CharacterError(f"{xml_path}: MuJoCo cannot load this MJCF: {e}") from None
    return _build(name, xml_path, model, spec)


# The character's geoms carry this conaffinity bit so that they collide with each other (and the
# shield's box proxy with them); clearing it turns self-collision off (humanoid_xml/ headers).
SELF_COLLISION_BIT = 2


def character_spec(character: Character, self_collision: bool = True) -> mujoco.MjSpec:
    """An editable copy of the character's MJCF (tasks add props to it), with or without the
    self-collision the MJCF has by default."""
    spec = mujoco.MjSpec.from_file(str(character.xml_path))
    if not self_collision:
        for geom in spec.geoms:
            if geom.parent.name != spec.worldbody.name:
                geom.conaffinity &= ~SELF_COLLISION_BIT
    return spec


def read_joints(model: mujoco.MjModel, where="MJCF") -> tuple[Joint, ...]:
    """The actuated joints of a character model (all joints after the root's free joint), in MJCF
    order; a CharacterError naming `where` for a body with several joints or a joint that is not
    a ball or hinge. Unlimited joints get the range (0, pi) (ball) or (-pi, pi) (hinge).

    A ball joint's per-axis limits are the `lengthrange` (radians: MuJoCo never converts it) of the
    actuators that drive its x, y and z exp-map components (docs/character.md)."""
    joints = []
    for j in range(1, model.njnt):
        body = int(model.jnt_bodyid[j]) - 1
        if any(jt.body == body for jt in joints):
            raise CharacterError(f"{where}: body '{model.body(body + 1).name}' has several joints; "
                                 "use one ball joint for 3 DoF")
        kind = {int(mujoco.mjtJoint.mjJNT_BALL): "ball", int(mujoco.mjtJoint.mjJNT_HINGE): "hinge"}.get(
            int(model.jnt_type[j]))
        if kind is None:
            raise CharacterError(f"{where}: joint '{model.joint(j).name}' must be a ball or hinge joint")
        lo, hi = (float(x) for x in model.jnt_range[j])
        if not model.jnt_limited[j]:
            lo, hi = (0.0, np.pi) if kind == "ball" else (-np.pi, np.pi)
        axis_ranges, axis_limited = ((lo, hi),), False
        if kind == "ball":
            axis_ranges = _ball_axis_ranges(model, j)
            axis_limited = axis_ranges is not None
            if axis_limited:
                hi = max(max(abs(a), abs(b)) for a, b in axis_ranges)
                if model.jnt_limited[j]:
                    hi = min(hi, float(model.jnt_range[j, 1]))
            axis_ranges = axis_ranges or ((-hi, hi),) * 3
        joints.append(Joint(model.joint(j).name, body, kind, int(model.jnt_qposadr[j]),
                            int(model.jnt_dofadr[j]), tuple(float(a) for a in model.jnt_axis[j]), (lo, hi),
                            axis_ranges, axis_limited))
    return tuple(joints)


def _ball_axis_ranges(model: mujoco.MjModel, joint: int):
    """((lo, hi) x 3) from the lengthrange of the actuators on ball joint `joint`'s x, y and z exp-map
    components, or None unless all three have one."""
    ranges = [None, None, None]
    for i in range(model.nu):
        if model.actuator_trntype[i] != mujoco.mjtTrn.mjTRN_JOINT or model.actuator_trnid[i, 0] != joint:
            continue
        axis = np.flatnonzero(model.actuator_gear[i, :3])
        lo, hi = (float(x) for x in model.actuator_lengthrange[i])
        if len(axis) == 1 and lo < hi:
            ranges[int(axis[0])] = (lo, hi)
    return tuple(ranges) if all(r is not None for r in ranges) else None


def _build(name: str, xml_path: Path, model: mujoco.MjModel, spec: CharacterSpec) -> Character:
    def fail(problem):
        raise CharacterError(f"{xml_path}: {problem}")

    if model.nbody < 2:
        fail("no bodies besides the world")
    body_names = tuple(model.body(i).name for i in range(1, model.nbody))
    parents = tuple(int(model.body_parentid[i]) - 1 for i in range(1, model.nbody))
    if model.njnt == 0 or model.jnt_type[0] != mujoco.mjtJoint.mjJNT_FREE or model.jnt_bodyid[0] != 1:
        fail("the first body must be the character's root with a free joint")
    if model.jnt_type[1:].tolist().count(mujoco.mjtJoint.mjJNT_FREE):
        fail("only the root may have a free joint (one character per MJCF; props belong to the task scene)")

    joints = read_joints(model, xml_path)

    # One position actuator per DoF, in DoF order, so that ctrl[i] is the target of qvel[6 + i].
    num_dof = model.nv - 6
    if model.nu != num_dof:
        fail(f"expected one actuator per joint DoF ({num_dof}), found {model.nu}")
    offset, scale = np.zeros(num_dof), np.zeros(num_dof)
    for joint in joints:
        for k in range(joint.num_dof):
            i = joint.dof_adr - 6 + k
            act = model.actuator(i)
            if model.actuator_trntype[i] != mujoco.mjtTrn.mjTRN_JOINT or model.actuator_trnid[i, 0] != model.joint(joint.name).id:
                fail(f"actuator {i} ('{act.name}') must drive joint '{joint.name}' (DoF order)")
            if joint.kind == "ball" and not np.allclose(model.actuator_gear[i, :3], np.eye(3)[k]):
                fail(f"actuator '{act.name}' on ball joint '{joint.name}' needs gear {np.eye(3)[k].tolist()}")
            if model.actuator_biastype[i] != mujoco.mjtBias.mjBIAS_AFFINE or model.actuator_biasprm[i, 1] >= 0 \
                    or model.actuator_biasprm[i, 2] != 0:
                fail(f"actuator '{act.name}' must be a <position> actuator with kp and no kv (kd is the joint's "
                     "damping)")
            if model.actuator_forcelimited[i] or model.actuator_forcerange[i, 1] <= 0:
                fail(f"actuator '{act.name}' needs forcelimited=\"false\" and a forcerange (the torque limit, "
                     "which ase_jax.drive applies to P and D together; docs/character.md)")
            lo, hi = joint.range
            if joint.kind == "ball":  # symmetric range, 1.2x the largest axis limit (docs/character.md)
                offset[i], scale[i] = 0.0, min(1.2 * hi, np.pi)
            else:
                offset[i], scale[i] = 0.5 * (lo + hi), 0.7 * (hi - lo)

    def ids(names, what):
        out = []
        for n in names:
            if n not in body_names:
                fail(f"{what} body '{n}' not found{_did_you_mean(n, body_names)}")
            out.append(body_names.index(n))
        return tuple(out)

    heights = [spec.termination_height] * len(body_names)
    overrides = dict(spec.termination_height_overrides)
    for b in ids(overrides, "termination-height"):
        heights[b] = max(overrides[body_names[b]], spec.termination_height)
    return Character(name, xml_path, model, body_names, parents, tuple(joints),
                     ids(spec.key_bodies, "key"), ids(spec.contact_bodies, "contact"), tuple(heights),
                     offset, scale)
