"""Motion files and datasets: loading, conversion to simulator states, and clear errors on bad input."""

import shutil

import numpy as np
import pytest

from ase_jax.errors import MotionFileError
from ase_jax.motions.convert import convert_clip, fk_error
from ase_jax.motions.dataset import load_dataset, read_dataset_entries
from ase_jax.motions.npy_format import load_clip, save_clip
from conftest import BUNDLED_YAML, REALLUSION_YAML, require_reference_data

CLIP = "RL_Avatar_Atk_2xCombo01_Motion.npy"


@pytest.fixture
def ref_clip_path():
    return require_reference_data() / "motions" / "reallusion_sword_shield" / CLIP


def test_reference_clip_loads(ref_clip_path):
    clip = load_clip(ref_clip_path)
    assert clip.num_frames == 96 and clip.skeleton.num_bodies == 17
    assert 29.8 < clip.fps <= 30.0
    assert abs(clip.length - 3.18) < 0.01


def test_reallusion_dataset_totals(reallusion_dataset):
    assert len(reallusion_dataset.clips) == 87
    assert abs(reallusion_dataset.total_seconds - 380.3) < 0.5
    assert abs(reallusion_dataset.weights.sum() - 1) < 1e-9


def test_fk_round_trip_below_2cm_on_every_reference_clip(reallusion_dataset, sword_shield):
    worst = max(fk_error(c, sword_shield).max() for c in reallusion_dataset.clips)
    assert worst < 0.02, f"worst FK round-trip error {worst * 100:.3f} cm"


def test_amp_humanoid_clip_on_its_character(amp_humanoid):
    path = require_reference_data() / "motions" / "amp_humanoid_walk.npy"
    states = convert_clip(load_clip(path), amp_humanoid)
    assert states.qpos.shape == (40, amp_humanoid.nq) and states.qvel.shape == (40, 34)
    assert fk_error(states, amp_humanoid).max() < 0.02


def test_bundled_dataset_loads(sword_shield):
    ds = load_dataset(BUNDLED_YAML, sword_shield)
    assert len(ds.clips) >= 5
    for clip in ds.clips:
        assert fk_error(clip, sword_shield).max() < 0.02


def test_converted_velocities_are_consistent(reallusion_dataset, sword_shield):
    """Root velocity in qvel integrates to the root displacement, joint velocities to the rotations."""
    from ase_jax import quat

    clip = reallusion_dataset.clips[0]
    dt = clip.dt
    # Root: stored (smoothed) world velocity vs finite differences, averaged over the clip.
    disp = clip.qpos[-1, :3] - clip.qpos[0, :3]
    integ = clip.qvel[:-1, :3].sum(0) * dt
    assert np.linalg.norm(disp - integ) < 0.1 * max(np.linalg.norm(disp), 0.1)
    # Ball joints: q_{f+1} = q_f * exp(omega dt) with omega the child-frame velocity (docs/reference.md §2.5).
    joint = next(j for j in sword_shield.joints if j.kind == "ball")
    q = clip.qpos[:, joint.qpos_adr: joint.qpos_adr + 4]
    w = clip.qvel[:, joint.dof_adr: joint.dof_adr + 3]
    pred = quat.mul(q[:-1], quat.from_exp_map(w[:-1] * dt))
    assert np.abs(np.abs((pred * q[1:]).sum(-1)) - 1).max() < 1e-6


def test_root_angular_velocity_is_body_frame(reallusion_dataset):
    """MuJoCo's free joint wants the root angular velocity in the body frame."""
    from ase_jax import quat

    clip = reallusion_dataset.clips[3]
    raw = load_clip(clip.path)
    world = quat.rotate(clip.qpos[:, 3:7], clip.qvel[:, 3:6])
    np.testing.assert_allclose(world, raw.global_angular_velocity[:, 0], atol=1e-9)


def test_save_load_round_trip(ref_clip_path, tmp_path):
    clip = load_clip(ref_clip_path)
    save_clip(tmp_path / "copy.npy", clip)
    again = load_clip(tmp_path / "copy.npy")
    np.testing.assert_allclose(again.local_rotation, clip.local_rotation)
    assert again.skeleton.node_names == clip.skeleton.node_names and again.fps == clip.fps


# --- bad input: each case must raise MotionFileError naming the file and the problem ---------------

def test_missing_file(tmp_path):
    with pytest.raises(MotionFileError, match=r"missing\.npy: file not found"):
        load_clip(tmp_path / "missing.npy")


def test_corrupt_file(tmp_path):
    bad = tmp_path / "corrupt.npy"
    bad.write_bytes(b"this is not a numpy file at all" * 10)
    with pytest.raises(MotionFileError, match=r"corrupt\.npy: not a readable \.npy motion clip"):
        load_clip(bad)


def test_truncated_file(ref_clip_path, tmp_path):
    bad = tmp_path / "truncated.npy"
    data = ref_clip_path.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(MotionFileError, match=r"truncated\.npy: not a readable"):
        load_clip(bad)


def test_plain_array_is_not_a_clip(tmp_path):
    bad = tmp_path / "array.npy"
    np.save(bad, np.zeros((10, 3)))
    with pytest.raises(MotionFileError, match="expected a pickled SkeletonMotion dict"):
        load_clip(bad)


def test_wrong_skeleton_for_character(sword_shield):
    path = require_reference_data() / "motions" / "amp_humanoid_walk.npy"
    with pytest.raises(MotionFileError, match=r"amp_humanoid_walk\.npy: skeleton does not match the character: 15 bodies"):
        convert_clip(load_clip(path), sword_shield)


def _doctored(ref_clip_path, tmp_path, name, **changes):
    obj = np.load(ref_clip_path, allow_pickle=True).item()
    for key, value in changes.items():
        if value is None:
            del obj[key]
        else:
            obj[key] = value
    path = tmp_path / name
    np.save(path, obj, allow_pickle=True)
    return path


def test_missing_fps(ref_clip_path, tmp_path):
    with pytest.raises(MotionFileError, match=r"nofps\.npy: missing keys \['fps'\]"):
        load_clip(_doctored(ref_clip_path, tmp_path, "nofps.npy", fps=None))


def test_bad_fps(ref_clip_path, tmp_path):
    with pytest.raises(MotionFileError, match="fps must be a positive number"):
        load_clip(_doctored(ref_clip_path, tmp_path, "zerofps.npy", fps=0.0))


def test_nan_rotation(ref_clip_path, tmp_path):
    obj = np.load(ref_clip_path, allow_pickle=True).item()
    rot = obj["rotation"]["arr"].copy()
    rot[3, 2, 0] = np.nan
    with pytest.raises(MotionFileError, match="rotation contains NaN"):
        load_clip(_doctored(ref_clip_path, tmp_path, "nan.npy", rotation={"arr": rot}))


def test_wrong_shape(ref_clip_path, tmp_path):
    obj = np.load(ref_clip_path, allow_pickle=True).item()
    root = obj["root_translation"]["arr"][:-5]
    with pytest.raises(MotionFileError, match=r"root_translation has shape \(91, 3\), expected \(96, 3\)"):
        load_clip(_doctored(ref_clip_path, tmp_path, "short.npy", root_translation={"arr": root}))


def _yaml(tmp_path, text, clips=()):
    for c in clips:
        shutil.copy(c, tmp_path / c.name)
    path = tmp_path / "dataset.yaml"
    path.write_text(text)
    return path


def test_dataset_errors(ref_clip_path, tmp_path):
    cases = [
        ("motions: []\n", "the dataset is empty"),
        ("clips: []\n", "top-level 'motions:' list"),
        (f"motions:\n  - file: {CLIP}\n    weight: -1\n", "weight must be >= 0"),
        (f"motions:\n  - file: {CLIP}\n    weight: heavy\n", "weight must be a number"),
        ("motions:\n  - file: nowhere.npy\n    weight: 1\n", "nowhere.npy not found"),
        (f"motions:\n  - file: {CLIP}\n    weight: 0\n", "all weights are 0"),
        ("motions: [\n", "not valid YAML"),
    ]
    for text, message in cases:
        path = _yaml(tmp_path, text, [ref_clip_path])
        with pytest.raises(MotionFileError, match="dataset.yaml: .*" + message):
            read_dataset_entries(path)


def test_reallusion_yaml_weights_are_normalised(reallusion_dataset):
    entries = read_dataset_entries(REALLUSION_YAML)
    raw = np.array([e.weight for e in entries])
    np.testing.assert_allclose(reallusion_dataset.weights, raw / raw.sum())
