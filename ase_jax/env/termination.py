"""Body contacts and the fall test (docs/reference.md §4.3) over arrays, for MJX and C MuJoCo alike.

The env (`ase_jax.env.humanoid`, inside its jitted step, on MJX data) and the C MuJoCo player
(`ase_jax.inference.mujoco_player`, on `MjData`) call the same functions. Each works in the array module of its
inputs: jax.numpy for jax arrays and tracers, numpy otherwise (as `ase_jax.drive` does); `xp`
forces one.

What they read:

  * `Contacts`: a contact list, geom pairs (n, 2) and signed distances (n,); a negative distance is
    an active contact (penetration), our stand-in for the reference's contact force > 0.1 N
    (docs/reference.md §11, D9). `mjx_contacts` gives MJX's fixed list of candidate contacts,
    `mujoco_contacts` C MuJoCo's `data.contact[:data.ncon]`.
  * `Scene`: plain numpy facts of a compiled scene (character plus task props): the character body
    of each geom, the contact bodies (feet) and the bodies' termination heights.
  * the character bodies' world heights, (B,).

Task termination (`ase_jax.tasks.base.Task.terminated`) takes the same contact list and scene.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from ase_jax.quat import _xp  # numpy or jax.numpy, by the inputs' type


@dataclasses.dataclass(frozen=True)
class Contacts:
    """A contact list: `geom` (n, 2) geom ids of each contact's pair, `dist` (n,) signed distances."""

    geom: object
    dist: object


def mjx_contacts(data, world=None) -> Contacts:
    """MJX's contact list (fixed size; MJX exposes it only on `data._impl`): every candidate pair
    (the JAX back end), or the Warp back end's `naconmax` slots shared by all the envs of a batch, of
    which the first `nacon` are in use, each tagged with its env (`world`: this env's index in the
    batch, `HumanoidEnv.world_index`). Slots not in use, or another env's, get an infinite distance,
    so that they touch nothing."""
    impl = data._impl
    if hasattr(impl, "contact"):
        return Contacts(impl.contact.geom, impl.contact.dist)
    in_use = jnp.arange(impl.contact__dist.shape[-1]) < impl.nacon
    if world is not None:
        in_use = in_use & (impl.contact__worldid == world)
    return Contacts(impl.contact__geom, jnp.where(in_use, impl.contact__dist, jnp.inf))


def mujoco_contacts(data) -> Contacts:
    """C MuJoCo's contact list of the last collision pass (`mj_forward` or the start of `mj_step`), copied."""
    n = data.ncon
    contact = data.contact
    return Contacts(np.array(contact.geom[:n], np.int64).reshape(n, 2), np.array(contact.dist[:n]))


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
    """What the contact tests know of a compiled scene, as numpy arrays; build it with `Scene.of`."""

    character: object  # ase_jax.character.Character
    geom_body: np.ndarray  # (ngeom,) int32: character body index of each geom; num_bodies for the world and props
    geom_names: tuple[str, ...]  # of the whole scene (character and props)
    is_contact_body: np.ndarray  # (B,) bool: bodies whose contacts are not falls (the feet)
    termination_heights: np.ndarray  # (B,) float64, m

    @classmethod
    def of(cls, model, character) -> "Scene":
        """The scene of a compiled MuJoCo model (`ase_jax.env.humanoid.scene_model`): the character's
        bodies first (body ids 1..B), then any props."""
        import mujoco

        nb = character.num_bodies
        geom_body = model.geom_bodyid.astype(np.int32) - 1
        geom_body = np.where((geom_body >= 0) & (geom_body < nb), geom_body, nb)
        contact = np.zeros(nb, bool)
        contact[list(character.contact_body_ids)] = True
        names = tuple(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or "" for g in range(model.ngeom))
        return cls(character, geom_body, names, contact, np.asarray(character.termination_heights, np.float64))

    @property
    def num_bodies(self) -> int:
        return self.character.num_bodies

    def geom_id(self, name: str) -> int:
        if name not in self.geom_names:
            raise KeyError(f"the scene has no geom named '{name}'")
        return self.geom_names.index(name)

    def body_mask(self, names) -> np.ndarray:
        """(B,) bool: the character bodies named."""
        mask = np.zeros(self.num_bodies, bool)
        mask[[self.character.body_id(n) for n in names]] = True
        return mask


def body_contacts(contacts: Contacts, scene: Scene, xp=None):
    """(B,) whether each character body touches something: one of its geoms has a contact with
    negative distance, with the floor, a prop or (with self_collision) another part of the character."""
    xp = xp or _xp(contacts.geom, contacts.dist)
    touching = contacts.dist < 0
    bodies = xp.asarray(scene.geom_body)[contacts.geom]  # (n, 2)
    nb = scene.num_bodies
    if xp is np:
        flags = np.zeros(nb + 1, bool)  # the last slot collects the world and props
        for side in range(2):
            np.logical_or.at(flags, bodies[:, side], touching)
    else:
        flags = jnp.zeros(nb + 1, bool)
        for side in range(2):
            flags = flags.at[bodies[:, side]].max(touching)
    return flags[:-1]


def fall_contact(flags, scene: Scene, xp=None):
    """Whether a body other than the feet touches something, from `body_contacts`' flags."""
    xp = xp or _xp(flags)
    return xp.any(flags & ~xp.asarray(scene.is_contact_body))


def below_height(heights, scene: Scene, xp=None):
    """Whether a body other than the feet is below its termination height; `heights` (B,) world z."""
    xp = xp or _xp(heights)
    limit = xp.asarray(scene.termination_heights, dtype=heights.dtype)
    return xp.any((heights < limit) & ~xp.asarray(scene.is_contact_body))


def has_fallen(contacts: Contacts, heights, scene: Scene, xp=None):
    """docs/reference.md §4.3: a non-foot body touches something AND a non-foot body is below its
    termination height. `heights`: the character bodies' world z, (B,)."""
    xp = xp or _xp(contacts.geom, contacts.dist, heights)
    return fall_contact(body_contacts(contacts, scene, xp), scene, xp) & below_height(heights, scene, xp)


def ends_episode(fallen, step_count, recovery_count):
    """Whether a fall (or a task's termination) ends the episode: not on its first step, nor while
    the recovery counter, already counted down for this step, protects it (docs/reference.md §4.5)."""
    return fallen & (step_count > 1) & (recovery_count <= 0)
