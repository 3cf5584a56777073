"""The bundled default clips (`motions/bundled/`, made by `motions/make_bundled.py`).

The generator reproduces the committed files exactly, and it refuses to write a clip that fails
its own plausibility check (nothing below the floor, a foot on the floor in every frame, standing
feet that do not slide, no body parts through each other, joints within their ranges), so those
limits hold for the committed files without re-measuring them here. The other tests check what
that check does not: the dataset loads for the sword-and-shield character, root heights, stored
velocities that match the motion, the clips do what their names say, loops are seamless, and the
PD drive can hold the idle stance.
"""

from __future__ import annotations

import dataclasses
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


def _entries():
    return read_dataset_entries(BUNDLED_YAML)


def _names():
    return [e.path.stem for e in _entries()]


@pytest.fixture(scope="module")
def clips():
    return {e.path.stem: load_clip(e.path) for e in _entries()}


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


def test_stored_velocities_match_the_motion(clips, sword_shield):
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
        body_pos = convert_clip(clip, sword_shield, name).body_pos
        pos = gaussian_filter1d(body_pos, 2.0, axis=0, mode="nearest")
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


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A fresh run of the generator: (its module, the output folder, {clip: ClipMeasures})."""
    spec = importlib.util.spec_from_file_location("make_bundled", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("bundled")
    return module, out, module.main(out, verbose=False)


def test_generator_reproduces_the_committed_files(generated):
    """`main` runs the generator's plausibility check on every clip before writing it, so this
    also guards the committed clips' floor, foot, slide, self-penetration and joint-range limits."""
    _, out, _ = generated
    assert (out / "dataset.yaml").read_text() == BUNDLED_YAML.read_text()
    for entry in _entries():
        ours, theirs = load_clip(out / entry.path.name), load_clip(entry.path)
        assert ours.fps == theirs.fps
        for key in ("local_rotation", "root_translation", "global_velocity", "global_angular_velocity"):
            np.testing.assert_allclose(getattr(ours, key), getattr(theirs, key), rtol=0, atol=1e-9,
                                       err_msg=f"{entry.path.name}: {key} differs from a fresh run")
        np.testing.assert_array_equal(ours.skeleton.local_translation, theirs.skeleton.local_translation)


def test_generator_rejects_implausible_clips(generated):
    """The test above relies on the generator's check: it must refuse each kind of implausible clip."""
    module, _, measures = generated
    good = measures["idle"]
    module.check("idle", good)
    for bad in (dict(min_geom_z=-0.05), dict(lowest_non_foot_z=0.0), dict(max_lowest_foot_z=0.05),
                dict(max_foot_slide=0.05), dict(max_self_penetration=0.05), dict(max_joint_limit_excess=0.1)):
        with pytest.raises(RuntimeError, match="not plausible"):
            module.check("idle", dataclasses.replace(good, **bad))


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
