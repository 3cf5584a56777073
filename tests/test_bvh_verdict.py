"""`motions import`'s verdict (docs/motions_import.md, "The verdict") and where it puts the feet.
Every BVH here is a bundled clip written by the test with one thing changed (an arm turned into the
body, legs shaken faster than the drives allow, a foot pitched, a leg held up)."""

import json

import numpy as np
import pytest

pytest.importorskip("pybvh")
pytest.importorskip("mink")

from ase_jax import quat  # noqa: E402
from ase_jax.motions.__main__ import main as motions_main  # noqa: E402
from ase_jax.motions.bvh import write_bvh  # noqa: E402
from ase_jax.motions.convert import convert_clip  # noqa: E402
from ase_jax.motions.geom_heights import lowest_points  # noqa: E402
from ase_jax.motions.npy_format import load_clip  # noqa: E402
from conftest import BUNDLED_YAML  # noqa: E402

IDLE = BUNDLED_YAML.parent / "idle.npy"
WALK = BUNDLED_YAML.parent / "walk_forward.npy"
Y, Z = np.array([0, 1.0, 0]), np.array([0, 0, 1.0])


def _edited_bvh(path, clip_path, frames, turns):
    """A bundled clip as BVH (our own joint names, map `ase`) with extra local rotations: `turns` is
    [(body, axis, degrees per frame (frames,) or a number)]."""
    clip = load_clip(clip_path)
    sk = clip.skeleton
    rot = quat.from_xyzw(clip.local_rotation)[:frames].copy()
    for body, axis, degrees in turns:
        k = sk.node_names.index(body)
        angle = np.radians(np.broadcast_to(np.asarray(degrees, np.float64), (frames,)))
        rot[:, k] = quat.mul(rot[:, k], quat.from_axis_angle(np.tile(axis, (frames, 1)), angle))
    write_bvh(path, sk.node_names, sk.parent_indices, sk.local_translation, clip.root_translation[:frames],
              quat.normalize(rot), clip.fps)


def _import(tmp_path, name, *args):
    out = tmp_path / "out"
    return motions_main(["import", str(tmp_path / f"{name}.bvh"), f"--out={out}", *args]), out


@pytest.mark.timeout(180)
def test_a_shield_in_the_torso_is_flagged_with_its_cause_and_the_flag_to_try(tmp_path, capsys):
    """The walk with the shield arm turned in (70 deg about its long axis): the shield cuts into the
    torso on every frame. Flagged, with the cause and the flags to try; --avoid_self_collision keeps
    it out."""
    _edited_bvh(tmp_path / "shield_in.bvh", WALK, 20, [("left_upper_arm", Z, -70.0)])
    rc, out = _import(tmp_path, "shield_in", "--no_track")
    printed = capsys.readouterr().out
    assert rc == 1
    assert "FLAGGED, not written: shield and torso are in each other on 20 of 20 frames (> 60%)" in printed
    assert "left forearm comes closer to the body than the character's shield allows" in printed
    assert "--avoid_self_collision" in printed and "--character=amp_humanoid" in printed
    assert sorted(p.name for p in out.iterdir()) == ["shield_in.report.json"]
    report = json.loads((out / "shield_in.report.json").read_text())
    assert report["flagged"] and report["self_penetration_pairs"]["shield/torso"] == 20 and report["advice"]

    rc, out = _import(tmp_path, "shield_in", "--no_track", "--avoid_self_collision")
    assert rc == 0, capsys.readouterr()
    report = json.loads((out / "shield_in.report.json").read_text())
    assert not report["flagged"] and report["self_penetration_pairs"].get("shield/torso", 0) == 0
    assert report["self_penetration_max_cm"] < 0.5


@pytest.mark.timeout(180)
def test_a_clip_the_drives_cannot_follow_is_flagged_by_tracking(tmp_path, capsys):
    """Idle with the torso, thighs and shins shaken at 8 Hz (60 deg): nothing collides, but the
    simulated character cannot follow it; the verdict says the drives are the cause. Without
    tracking the same clip passes."""
    shake = 60.0 * 0.5 * (1 - np.cos(2 * np.pi * 8.0 * np.arange(30) / 30.0))
    _edited_bvh(tmp_path / "shaken.bvh", IDLE, 30, [("right_thigh", Y, -shake), ("left_thigh", Y, -shake),
                                                    ("torso", Y, shake), ("right_shin", Y, shake),
                                                    ("left_shin", Y, shake)])
    rc, out = _import(tmp_path, "shaken")
    printed = capsys.readouterr().out
    assert rc == 1 and "FLAGGED, not written: the simulated character cannot follow it" in printed
    assert "faster or needs more torque than the character's drives" in printed and "--pd_torque_limit" in printed
    assert "in each other" not in printed  # the parts touch now and then, not most of the time
    report = json.loads((out / "shaken.report.json").read_text())
    assert report["track"]["saturated_share"] > 0.9
    assert report["track"]["without_self_collision"]["saturated_share"] > 0.9  # not the collisions

    rc, _ = _import(tmp_path, "shaken", "--no_track")
    assert rc == 0


@pytest.mark.timeout(180)
def test_bundled_clips_pass_the_verdict():
    """The thresholds against the bundled clips, as they are: none is flagged, with room to spare."""
    from ase_jax.character import load_character
    from ase_jax.motions.dataset import read_dataset_entries
    from ase_jax.motions.retarget_report import (MAX_PAIR_PENETRATION_SHARE, MAX_TRACK_KEY_BODY_CM,
                                                 MAX_TRACK_SATURATED_SHARE, judge, measure)
    from ase_jax.motions.track import track_dataset

    char = load_character("sword_shield")
    _, tracks, _ = track_dataset(BUNDLED_YAML, char)
    for entry, track in zip(read_dataset_entries(BUNDLED_YAML), tracks):
        states = convert_clip(load_clip(entry.path), char)
        report = measure(char, states.qpos, states.fps, ("pelvis",), np.zeros((states.num_frames, 1)),
                         source=str(entry.path), clip=None, map="ase", up="+z", unit_scale=1.0, source_height_m=1.0,
                         proportion_scale=1.0, source_fps=states.fps, import_seconds=0.0)
        report.track = {"key_body_error_cm": track.key_body_error_cm, "saturated_share": track.saturated_share}
        judge(report, 5.0)
        assert not report.flagged, (entry.path.name, report.flag_reasons)
        assert max(report.self_penetration_pairs.values(), default=0) < 0.1 * MAX_PAIR_PENETRATION_SHARE * states.num_frames
        assert track.key_body_error_cm < 0.1 * MAX_TRACK_KEY_BODY_CM, entry.path.name
        assert track.saturated_share < 0.2 * MAX_TRACK_SATURATED_SHARE, entry.path.name


@pytest.mark.timeout(120)
def test_feet_on_the_floor_where_the_source_stands_not_one_offset_per_clip(tmp_path, sword_shield, capsys):
    """Idle, then the right foot pitched 45 deg toe down (its ankle where it was): the pitched foot's
    toe reaches 8 cm lower than a flat foot. One offset per clip (set by that toe) would float the
    standing half 8 cm; per rest frame both feet stand on the floor there."""
    pitch = np.where(np.arange(40) >= 20, 45.0, 0.0)
    _edited_bvh(tmp_path / "tiptoe.bvh", IDLE, 40, [("right_foot", Y, pitch)])
    rc, out = _import(tmp_path, "tiptoe", "--no_track")
    assert rc == 0, capsys.readouterr()
    qpos = convert_clip(load_clip(out / "tiptoe.npy"), sword_shield).qpos
    feet, lowest = lowest_points(sword_shield, np.asarray(qpos, np.float64))
    assert np.abs(feet[:15]).max() < 0.005, feet[:15]  # both feet, standing
    assert feet[25:, 0].max() < 0.005  # the pitched foot's toe on the floor
    assert lowest.min() > -0.002  # nothing below it


@pytest.mark.timeout(120)
def test_contact_figures_say_never_on_the_floor(tmp_path, capsys):
    """Idle on one leg (the right knee up the whole clip): the right foot's figures say it never
    touches the floor, instead of a skating speed of 0."""
    _edited_bvh(tmp_path / "one_leg.bvh", IDLE, 20, [("right_thigh", Y, -60.0), ("right_shin", Y, 90.0)])
    rc, out = _import(tmp_path, "one_leg", "--no_track")
    printed = capsys.readouterr().out
    assert rc == 0 and "right_foot never on the floor" in printed
    report = json.loads((out / "one_leg.report.json").read_text())
    assert report["foot_skating_cm_s"]["right_foot"] == {"mean": None, "max": None}
    assert report["foot_contact_share"]["right_foot"] == 0.0 and report["foot_contact_share"]["left_foot"] > 0.9
    assert report["foot_skating_cm_s"]["left_foot"]["mean"] < 2.0
