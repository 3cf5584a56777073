"""The bundled default clips (`motions/bundled/`, made by `motions/make_bundled.py`).

Checks that every clip of the bundled dataset loads for the sword-and-shield character and is
physically plausible, measured here with MuJoCo kinematics on our MJCF (independently of the
generator's own checks): nothing below the floor, a foot on the floor in every frame, standing feet
that do not slide, a sensible root height, no body parts through each other, joints within their
ranges, stored velocities that match the motion; and that the generator reproduces the committed
files exactly.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml
from scipy.ndimage import gaussian_filter1d

from ase_jax import quat
from ase_jax.character import character_spec
from ase_jax.drive import make_drive, mujoco_step
from ase_jax.motions.convert import convert_clip
from ase_jax.motions.dataset import load_dataset, read_dataset_entries
from ase_jax.motions.npy_format import load_clip

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_YAML = REPO_ROOT / "motions" / "bundled" / "dataset.yaml"
REQUIRED = ("idle", "walk_forward", "turn_left", "sword_swing", "shield_block")
LOOPING = ("idle", "walk_forward", "walk_backward")  # whole cycles: last frame = first (moved along)
GENERATOR = REPO_ROOT / "motions" / "make_bundled.py"

FLOOR_TOLERANCE = 0.01  # m a geom may go below the floor
CONTACT_HEIGHT = 0.02  # m: a foot this close to the floor stands on it
SLIDE_CONTACT_HEIGHT = 0.01  # m: foot corners this low are in contact for the slide measure
MAX_SLIDE = 0.02  # m a foot corner may travel horizontally while in contact
MAX_PENETRATION = 0.02  # m two non-adjacent body parts may overlap


def _entries():
    return read_dataset_entries(BUNDLED_YAML)


def _names():
    return [e.path.stem for e in _entries()]


@pytest.fixture(scope="module")
def clips():
    return {e.path.stem: load_clip(e.path) for e in _entries()}


@pytest.fixture(scope="module")
def kinematics(sword_shield, clips):
    """Per clip: qpos (T, nq), lowest point of every geom (T, ngeom), foot box corners (T, 2, 8, 3),
    and the deepest overlap of two character geoms that MuJoCo does not treat as adjacent."""
    model = sword_shield.model
    data = mujoco.MjData(model)
    # A copy in which the character's geoms also collide with each other.
    coll = copy.copy(model)
    char = coll.geom_bodyid > 0
    coll.geom_contype[char] |= 8
    coll.geom_conaffinity[char] |= 8
    coll.body_contype[1:] |= 8
    coll.body_conaffinity[1:] |= 8
    coll.geom_margin[:] = 0.0
    coll_data = mujoco.MjData(coll)
    feet = [model.geom("right_foot").id, model.geom("left_foot").id]
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)
    out = {}
    for name, clip in clips.items():
        states = convert_clip(clip, sword_shield, name)
        lowest = np.zeros((states.num_frames, model.ngeom))
        corners = np.zeros((states.num_frames, 2, 8, 3))
        penetration, pair = 0.0, None
        for t in range(states.num_frames):
            data.qpos[:] = states.qpos[t]
            mujoco.mj_kinematics(model, data)
            for g in range(model.ngeom):
                size, rot, z = model.geom_size[g], data.geom_xmat[g].reshape(3, 3), data.geom_xpos[g, 2]
                gtype = model.geom_type[g]
                if gtype == mujoco.mjtGeom.mjGEOM_PLANE:
                    lowest[t, g] = np.inf
                elif gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
                    lowest[t, g] = z - size[0]
                elif gtype == mujoco.mjtGeom.mjGEOM_CAPSULE:
                    lowest[t, g] = z - abs(rot[2, 2]) * size[1] - size[0]
                elif gtype == mujoco.mjtGeom.mjGEOM_CYLINDER:
                    lowest[t, g] = z - abs(rot[2, 2]) * size[1] - size[0] * np.sqrt(max(0.0, 1 - rot[2, 2] ** 2))
                elif gtype == mujoco.mjtGeom.mjGEOM_BOX:
                    lowest[t, g] = z - np.abs(rot[2]) @ size
                else:
                    raise AssertionError(f"geom type {gtype} not handled by this test")
            for k, g in enumerate(feet):
                rot = data.geom_xmat[g].reshape(3, 3)
                corners[t, k] = data.geom_xpos[g] + (signs * model.geom_size[g]) @ rot.T
            coll_data.qpos[:] = states.qpos[t]
            mujoco.mj_fwdPosition(coll, coll_data)
            for c in coll_data.contact[:coll_data.ncon]:
                if min(c.geom1, c.geom2) > 0 and -c.dist > penetration:
                    penetration = -c.dist
                    pair = (model.geom(c.geom1).name, model.geom(c.geom2).name, t)
        out[name] = dict(states=states, lowest=lowest, corners=corners, penetration=penetration, pair=pair)
    return out


def test_dataset_lists_the_required_clips():
    doc = yaml.safe_load(BUNDLED_YAML.read_text())
    names = _names()
    assert set(REQUIRED) <= set(names), f"missing clips: {set(REQUIRED) - set(names)}"
    weights = [m["weight"] for m in doc["motions"]]
    assert all(w > 0 for w in weights)
    assert abs(sum(weights) - 1.0) < 1e-6


def test_clips_load_for_the_character(clips, sword_shield):
    for name, clip in clips.items():
        assert clip.skeleton.node_names == sword_shield.body_names, name
        assert len(clip.skeleton.node_names) == 17
        assert clip.fps == 30.0, name
        assert clip.length >= 3.0, f"{name}: {clip.length:.2f} s"
        assert clip.length <= 10.0, f"{name}: {clip.length:.2f} s"
        rot = quat.from_xyzw(clip.local_rotation)
        for body in ("sword", "shield", "left_hand"):  # welded bodies stay at identity
            np.testing.assert_allclose(np.abs(rot[:, sword_shield.body_id(body), 0]), 1.0, atol=1e-12)
        for joint in sword_shield.joints:  # hinges are pure rotations about their axis
            if joint.kind == "hinge":
                q = rot[:, joint.body]
                off_axis = q[:, 1:] - np.outer(q[:, 1:] @ np.asarray(joint.axis), joint.axis)
                assert np.abs(off_axis).max() < 1e-12, (name, joint.name)
    dataset = load_dataset(BUNDLED_YAML, sword_shield)
    assert len(dataset.clips) == len(clips)


def test_root_height(clips):
    for name, clip in clips.items():
        z = clip.root_translation[:, 2]
        assert 0.6 <= z.min() and z.max() <= 1.1, f"{name}: root height {z.min():.3f}..{z.max():.3f} m"


def test_nothing_below_the_floor(kinematics):
    for name, k in kinematics.items():
        low = k["lowest"].min()
        assert low >= -FLOOR_TOLERANCE, f"{name}: a geom reaches {low * 100:.1f} cm below the floor"


def test_only_the_feet_touch_the_floor(kinematics, sword_shield):
    model = sword_shield.model
    feet = {model.geom("right_foot").id, model.geom("left_foot").id}
    others = [g for g in range(model.ngeom) if model.geom_bodyid[g] > 0 and g not in feet]
    for name, k in kinematics.items():
        low = k["lowest"][:, others].min()
        assert low > 0.02, f"{name}: a body part other than the feet comes {low * 100:.1f} cm near the floor"


def test_a_foot_is_always_on_the_floor(kinematics, sword_shield):
    model = sword_shield.model
    feet = [model.geom("right_foot").id, model.geom("left_foot").id]
    for name, k in kinematics.items():
        lower_foot = k["lowest"][:, feet].min(axis=1)
        t = int(lower_foot.argmax())
        assert lower_foot.max() <= CONTACT_HEIGHT, f"{name}: both feet off the floor at frame {t} " \
                                                   f"({lower_foot[t] * 100:.1f} cm)"


def test_standing_feet_do_not_slide(kinematics):
    for name, k in kinematics.items():
        corners = k["corners"]
        touching = corners[..., 2] < SLIDE_CONTACT_HEIGHT
        both = touching[1:] & touching[:-1]
        step = np.linalg.norm(corners[1:, ..., :2] - corners[:-1, ..., :2], axis=-1)
        worst = 0.0
        for foot in range(2):
            for c in range(8):
                run = 0.0
                for s, b in zip(step[:, foot, c], both[:, foot, c]):
                    run = run + s if b else 0.0
                    worst = max(worst, run)
        assert worst < MAX_SLIDE, f"{name}: a foot slides {worst * 100:.1f} cm while on the floor"


def test_no_self_penetration(kinematics):
    for name, k in kinematics.items():
        assert k["penetration"] < MAX_PENETRATION, \
            f"{name}: {k['pair'][0]} and {k['pair'][1]} overlap by {k['penetration'] * 100:.1f} cm at frame {k['pair'][2]}"


def test_joints_within_their_ranges(kinematics, sword_shield):
    for name, k in kinematics.items():
        states = k["states"]
        for joint in sword_shield.joints:
            lo, hi = joint.range
            if joint.kind == "ball":
                _, angle = quat.to_axis_angle(states.local_rotation[:, joint.body])
                assert np.abs(angle).max() <= hi + 1e-6, (name, joint.name, np.rad2deg(np.abs(angle).max()))
            else:
                v = states.qpos[:, joint.qpos_adr]
                assert lo - 1e-6 <= v.min() and v.max() <= hi + 1e-6, (name, joint.name, np.rad2deg([v.min(), v.max()]))


def test_stored_velocities_match_the_motion(clips, kinematics):
    for name, clip in clips.items():
        dt = 1.0 / clip.fps
        # Root: the integral of the stored velocity follows the root translation.
        root = clip.root_translation
        integral = np.concatenate([np.zeros((1, 3)), np.cumsum(
            0.5 * (clip.global_velocity[1:, 0] + clip.global_velocity[:-1, 0]) * dt, axis=0)])
        drift = np.linalg.norm(integral - (root - root[0]), axis=-1).max()
        assert drift < 0.05, f"{name}: integrated stored root velocity drifts {drift * 100:.1f} cm from the root"
        # Every body, away from the clip ends (where the smoothing pads with the end values): the
        # stored velocities are smoothed (Gaussian, sigma 2 frames), so they integrate to the
        # displacement of the equally smoothed positions.
        pos = gaussian_filter1d(kinematics[name]["states"].body_pos, 2.0, axis=0, mode="nearest")
        a, b = 6, clip.num_frames - 7
        moved = pos[b] - pos[a]
        integral = np.sum(0.5 * (clip.global_velocity[a + 1:b + 1] + clip.global_velocity[a:b]), axis=0) * dt
        err = np.linalg.norm(integral - moved, axis=-1).max()
        assert err < 0.01, f"{name}: stored body velocities disagree with the motion by {err * 100:.1f} cm"
        # Root heading: the integral of the stored angular velocity about z follows the yaw.
        yaw = np.unwrap(quat.heading(quat.from_xyzw(clip.local_rotation[:, 0])))
        yaw_integral = np.sum(0.5 * (clip.global_angular_velocity[1:, 0, 2] + clip.global_angular_velocity[:-1, 0, 2])) * dt
        assert abs(yaw_integral - (yaw[-1] - yaw[0])) < 0.1, (name, yaw_integral, yaw[-1] - yaw[0])
        # Speeds are those of a person, not of a glitch.
        assert np.linalg.norm(clip.global_velocity, axis=-1).max() < 15.0, name
        assert np.linalg.norm(clip.global_velocity[:, 0], axis=-1).max() < 2.5, name


def test_walk_and_turn_do_what_their_names_say(clips):
    walk = clips["walk_forward"]
    disp = walk.root_translation[-1] - walk.root_translation[0]
    speed = disp[0] / walk.length
    assert 1.0 <= speed <= 1.3 and abs(disp[1]) < 0.05, (speed, disp)
    turn = clips["turn_left"]
    yaw = np.unwrap(quat.heading(quat.from_xyzw(turn.local_rotation[:, 0])))
    assert np.deg2rad(80) <= yaw[-1] - yaw[0] <= np.deg2rad(190), np.rad2deg(yaw[-1] - yaw[0])
    assert np.linalg.norm(turn.root_translation[-1, :2] - turn.root_translation[0, :2]) < 0.15


def test_looping_clips_are_seamless(clips):
    for name in LOOPING:
        if name not in clips:
            continue
        clip = clips[name]
        first, last = quat.from_xyzw(clip.local_rotation[0]), quat.from_xyzw(clip.local_rotation[-1])
        assert np.abs(np.abs(np.sum(first * last, axis=-1)) - 1.0).max() < 1e-9, name
        np.testing.assert_allclose(clip.root_translation[-1, 2], clip.root_translation[0, 2], atol=1e-9)


def test_generator_reproduces_the_committed_files(tmp_path):
    spec = importlib.util.spec_from_file_location("make_bundled", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path, verbose=False)
    assert (tmp_path / "dataset.yaml").read_text() == BUNDLED_YAML.read_text()
    for entry in _entries():
        ours, theirs = load_clip(tmp_path / entry.path.name), load_clip(entry.path)
        assert ours.fps == theirs.fps
        for key in ("local_rotation", "root_translation", "global_velocity", "global_angular_velocity"):
            np.testing.assert_allclose(getattr(ours, key), getattr(theirs, key), rtol=0, atol=1e-9,
                                       err_msg=f"{entry.path.name}: {key} differs from a fresh run")
        np.testing.assert_array_equal(ours.skeleton.local_translation, theirs.skeleton.local_translation)


def test_idle_pose_can_be_held_by_the_pd_controllers(sword_shield, clips):
    """The guard stance is statically balanced: holding an idle frame with the env's PD drive (no
    balance control) keeps the character standing for 2 s."""
    model = character_spec(sword_shield).compile()
    drive = make_drive(sword_shield)
    states = convert_clip(clips["idle"], sword_shield, "idle")
    for frame in (0, 40, 80):
        data = mujoco.MjData(model)
        data.qpos[:] = states.qpos[frame]
        data.qvel[:] = states.qvel[frame]
        target = drive.lengths(states.qpos[frame])
        lowest = np.inf
        for _ in range(int(round(2.0 / model.opt.timestep))):
            mujoco_step(model, data, drive, target)
            lowest = min(lowest, data.qpos[2])
        assert lowest > 0.7, f"idle frame {frame}: the PD-held character sank to {lowest:.2f} m"
