"""`python -m ase_jax.motions import`: BVH reading, retargeting onto our characters, the report and
bad input. Every BVH here is made by the test from the bundled clips (the project's own motions)."""

import json

import mujoco
import numpy as np
import pytest
import yaml

pytest.importorskip("pybvh")
pytest.importorskip("mink")

from ase_jax import quat  # noqa: E402
from ase_jax.motions.__main__ import main as motions_main  # noqa: E402
from ase_jax.motions.bvh import euler_to_quat, quat_to_euler, read_bvh, write_bvh  # noqa: E402
from ase_jax.motions.convert import convert_clip  # noqa: E402
from ase_jax.motions.dataset import load_dataset  # noqa: E402
from ase_jax.motions.kinematics import forward_kinematics  # noqa: E402
from ase_jax.motions.npy_format import load_clip  # noqa: E402
from ase_jax.motions.retarget_source import up_rotation  # noqa: E402
from conftest import REPO_ROOT  # noqa: E402

WALK = REPO_ROOT / "motions" / "bundled" / "walk_forward.npy"
KEY_BODIES = ("right_hand", "left_hand", "right_foot", "left_foot", "sword", "shield")


def _clip_as_bvh(path, frames=None, **kwargs):
    clip = load_clip(WALK)
    rot = quat.from_xyzw(clip.local_rotation)[:frames]
    sk = clip.skeleton
    write_bvh(path, sk.node_names, sk.parent_indices, sk.local_translation, clip.root_translation[:frames], rot,
              clip.fps, **kwargs)
    return clip


def _body_positions(character, qpos):
    data = mujoco.MjData(character.model)
    out = np.zeros((qpos.shape[0], character.model.nbody - 1, 3))
    for t in range(qpos.shape[0]):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(character.model, data)
        out[t] = data.xpos[1:]
    return out


def _key_body_error_cm(character, qpos_a, qpos_b):
    ids = [character.body_names.index(b) for b in KEY_BODIES]
    a, b = _body_positions(character, qpos_a)[:, ids], _body_positions(character, qpos_b)[:, ids]
    return np.linalg.norm(a - b, axis=-1).max() * 100


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_euler_angles_round_trip_in_every_order(order):
    q = quat.normalize(np.random.default_rng(0).normal(size=(200, 4)))
    back = euler_to_quat(quat_to_euler(q, order), order)
    assert np.abs(np.abs(np.sum(q * back, axis=-1)) - 1).max() < 1e-9


@pytest.mark.timeout(120)
def test_round_trip_of_a_bundled_clip(tmp_path, sword_shield, capsys):
    """A bundled clip written as BVH (other rotation order, root rotations before translations)
    imports back to the same joint angles (2 deg) and key bodies (1 cm)."""
    clip = _clip_as_bvh(tmp_path / "walk.bvh", order="YXZ", root_channels_first="rotation")
    assert motions_main(["import", str(tmp_path / "walk.bvh"), f"--out={tmp_path / 'out'}"]) == 0
    out = capsys.readouterr().out
    assert "map ase" in out and "dataset.yaml" in out
    original = convert_clip(clip, sword_shield)
    dataset = load_dataset(tmp_path / "out" / "dataset.yaml", sword_shield)
    (imported,) = dataset.clips
    assert imported.num_frames == original.num_frames and imported.fps == 30.0
    for joint in sword_shield.joints:
        if joint.kind == "ball":
            a, b = (s.qpos[:, joint.qpos_adr:joint.qpos_adr + 4] for s in (original, imported))
            diff = np.degrees(2 * np.arccos(np.clip(np.abs(np.sum(a * b, axis=-1)), 0, 1)))
        else:
            diff = np.degrees(np.abs(original.qpos[:, joint.qpos_adr] - imported.qpos[:, joint.qpos_adr]))
        assert diff.max() < 2.0, f"{joint.name}: {diff.max():.2f} deg"
    assert _key_body_error_cm(sword_shield, original.qpos, imported.qpos) < 1.0
    report = json.loads((tmp_path / "out" / "walk.report.json").read_text())
    assert report["mean_error_cm"] < 0.5 and not report["flagged"] and report["joint_limit_frames"] == 0
    assert report["floor_penetration_cm"] < 0.5 and report["self_penetration_frames"] == 0
    assert set(report["foot_skating_cm_s"]) == {"right_foot", "left_foot"}
    assert motions_main(["inspect", str(tmp_path / "out" / "dataset.yaml")]) == 0


def _other_skeleton_bvh(path, sword_shield, frames=40):
    """The walk on a skeleton of our own making: other joint names, longer legs, shorter arms, toe
    and crown joints, centimetres, Y up, 60 fps. Returns the original clip."""
    clip = load_clip(WALK)
    names = {"pelvis": "Root", "torso": "Belly", "head": "NeckBase", "right_upper_arm": "R_Shoulder",
             "right_lower_arm": "R_Elbow", "right_hand": "R_Wrist", "left_upper_arm": "L_Shoulder",
             "left_lower_arm": "L_Elbow", "left_hand": "L_Wrist", "right_thigh": "R_Hip", "right_shin": "R_Knee",
             "right_foot": "R_Ankle", "left_thigh": "L_Hip", "left_shin": "L_Knee", "left_foot": "L_Ankle"}
    scale = {"torso": 1.05, "head": 1.05, "right_upper_arm": 1.0, "right_lower_arm": 0.9, "right_hand": 0.9,
             "left_upper_arm": 1.0, "left_lower_arm": 0.9, "left_hand": 0.9}
    leg = 1.15
    bodies = [b for b in sword_shield.body_names if b in names]
    joint_names = [names[b] for b in bodies] + ["Crown", "R_Toes", "L_Toes"]
    parents = [bodies.index(sword_shield.body_names[sword_shield.parent_indices[sword_shield.body_names.index(b)]])
               if b != "pelvis" else -1 for b in bodies]
    parents += [bodies.index("head"), bodies.index("right_foot"), bodies.index("left_foot")]
    offsets = [np.array(sword_shield.model.body(b).pos) * scale.get(b, leg) for b in bodies]
    offsets += [np.array([0, 0, 0.175]) * 1.05, np.array([0.12, 0, -0.045]) * leg, np.array([0.12, 0, -0.045]) * leg]
    rot_up = up_rotation("+y")  # ours from the file's
    q_up = np.zeros(4)
    mujoco.mju_mat2Quat(q_up, rot_up.reshape(-1))
    local = quat.from_xyzw(clip.local_rotation)[:frames]
    ids = [sword_shield.body_names.index(b) for b in bodies]
    local = np.concatenate([local[:, ids], np.tile([1.0, 0, 0, 0], (local.shape[0], 3, 1))], axis=1)
    local = quat.mul(quat.mul(quat.conj(q_up), local), q_up)  # the same rotations seen in Y-up axes
    root = clip.root_translation[:frames] * leg @ rot_up  # rot_up.T applied to row vectors
    # 60 fps: every other frame is halfway between two of the clip's
    mid_rot = quat.slerp(local[:-1], local[1:], np.full(local.shape[:2][:1] + (local.shape[1],), 0.5)[1:])
    mid_rot = quat.normalize(mid_rot)
    rot60 = np.empty((2 * frames - 1,) + local.shape[1:])
    rot60[0::2], rot60[1::2] = local, mid_rot
    root60 = np.empty((2 * frames - 1, 3))
    root60[0::2], root60[1::2] = root, 0.5 * (root[:-1] + root[1:])
    offsets_cm = np.array(offsets) @ rot_up * 100.0
    write_bvh(path, joint_names, parents, offsets_cm, root60 * 100.0, rot60, 60.0, order="ZYX")
    points = {"pelvis": "Root", "torso": "Belly", "head": "NeckBase", "head_top": "Crown"}
    for side, s in (("right", "R"), ("left", "L")):
        points.update({f"{side}_upper_arm": f"{s}_Shoulder", f"{side}_lower_arm": f"{s}_Elbow",
                       f"{side}_hand": f"{s}_Wrist", f"{side}_thigh": f"{s}_Hip", f"{side}_shin": f"{s}_Knee",
                       f"{side}_foot": f"{s}_Ankle", f"{side}_toe": f"{s}_Toes"})
    return clip, points


@pytest.mark.timeout(120)
def test_another_skeleton_through_a_map(tmp_path, sword_shield, capsys):
    clip, points = _other_skeleton_bvh(tmp_path / "other.bvh", sword_shield)
    map_file = tmp_path / "other_map.yaml"
    map_file.write_text(yaml.safe_dump({"name": "other", "points": points}))
    # no built-in map knows these names: one line listing what is missing
    assert motions_main(["import", str(tmp_path / "other.bvh"), f"--out={tmp_path / 'none'}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown skeleton" in err[0] and "lacks the required joints" in err[0]
    assert "pelvis (" in err[0] and "--map" in err[0]
    assert not (tmp_path / "none").exists()

    assert motions_main(["import", str(tmp_path / "other.bvh"), f"--out={tmp_path / 'out'}",
                         f"--map={map_file}"]) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "out" / "other.report.json").read_text())
    assert report["up"] == "+y" and report["unit_scale"] == 0.01 and report["source_fps"] == 60.0
    assert report["map"] == "other" and abs(report["proportion_scale"] - 1 / 1.15) < 1e-3
    assert report["mean_error_cm"] < 3.0 and report["max_error_cm"] < 3.0
    imported = load_clip(tmp_path / "out" / "other.npy")
    assert imported.fps == 30.0 and imported.num_frames == 40
    original = convert_clip(clip, sword_shield).qpos[:40]
    assert _key_body_error_cm(sword_shield, original, convert_clip(imported, sword_shield).qpos) < 3.0


def _lines(path):
    return path.read_text().splitlines(keepends=True)


def _bad_files(tmp_path):
    """{name: path} of broken variants of a short good file."""
    _clip_as_bvh(tmp_path / "good.bvh", frames=8)
    good = _lines(tmp_path / "good.bvh")
    motion = good.index("MOTION\n")
    bad = {}

    def put(name, lines):
        bad[name] = tmp_path / f"{name}.bvh"
        bad[name].write_text("".join(lines))

    text = "".join(good)
    put("truncated", [text[: int(len(text) * 0.8)]])
    put("malformed", [ln.replace("OFFSET", "OFFSTE", 1) if "JOINT torso" in good[i - 2] else ln
                      for i, ln in enumerate(good)])
    no_root = []
    for i, ln in enumerate(good):
        if "CHANNELS 6" in ln:
            ln = ln.replace("CHANNELS 6 Xposition Yposition Zposition", "CHANNELS 3")
        elif i > motion + 2:
            ln = " ".join(ln.split()[3:]) + "\n"
        no_root.append(ln)
    put("no_root_translation", no_root)
    put("unknown_skeleton", [ln.replace("pelvis", "Bassin").replace("thigh", "cuisse") for ln in good])
    put("frame_time_zero", [("Frame Time: 0\n" if ln.startswith("Frame Time") else ln) for ln in good])
    nan = list(good)
    nan[motion + 5] = " ".join(["nan"] + nan[motion + 5].split()[1:]) + "\n"
    put("nan", nan)
    return bad


@pytest.mark.timeout(120)
def test_bad_files_are_one_line_each_and_nothing_written_for_them(tmp_path, capsys):
    bad = _bad_files(tmp_path)
    out = tmp_path / "out"
    assert motions_main(["import", str(tmp_path / "good.bvh"), *map(str, bad.values()), f"--out={out}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    expected = {"truncated": "", "malformed": "", "no_root_translation": "position",
                "unknown_skeleton": "unknown skeleton", "frame_time_zero": "time", "nan": "NaN"}
    for name, path in bad.items():
        lines = [ln for ln in err if str(path) in ln]
        assert len(lines) == 1, (name, err)
        assert lines[0].startswith("error: ") and expected[name] in lines[0], lines[0]
    assert err[-1] == f"{len(bad)} of {len(bad) + 1} files not imported (see above)"
    assert len(err) == len(bad) + 1
    assert sorted(p.name for p in out.iterdir()) == ["dataset.yaml", "good.npy", "good.report.json"]
    assert yaml.safe_load((out / "dataset.yaml").read_text()) == {"motions": [{"file": "good.npy", "weight": 1.0}]}


@pytest.mark.timeout(120)
def test_flagged_clip_is_not_written_without_force(tmp_path, capsys):
    _clip_as_bvh(tmp_path / "walk.bvh", frames=6)
    args = ["import", str(tmp_path / "walk.bvh"), f"--out={tmp_path / 'out'}", "--max_error_cm=1e-9"]
    assert motions_main(args) == 1
    assert "FLAGGED" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["walk.report.json"]
    assert json.loads((tmp_path / "out" / "walk.report.json").read_text())["flagged"]
    assert motions_main([*args, "--force", "--character=amp_humanoid"]) == 0
    capsys.readouterr()
    assert (tmp_path / "out" / "walk.npy").is_file() and (tmp_path / "out" / "dataset.yaml").is_file()
    assert load_clip(tmp_path / "out" / "walk.npy").skeleton.num_bodies == 15


def test_builtin_maps_are_detected_by_joint_names(tmp_path):
    from ase_jax.errors import MotionFileError
    from ase_jax.motions.bvh_maps import detect_map, load_map

    side = ["{}Shoulder", "{}Elbow", "{}Wrist", "{}Hip", "{}Knee", "{}Ankle", "{}Toe"]
    cmu = ["Hips", "Chest", "Chest2", "Neck", "Head"] + [n.format(s) for s in ("Left", "Right") for n in side]
    lafan = ["Hips", "Spine", "Spine1", "Spine2", "Neck", "Head"] + [
        n.format(s) for s in ("Left", "Right")
        for n in ["{}Shoulder", "{}Arm", "{}ForeArm", "{}Hand", "{}UpLeg", "{}Leg", "{}Foot", "{}Toe"]]
    mixamo = ["mixamorig:" + n.replace("Toe", "ToeBase") for n in lafan]
    assert detect_map(cmu, "c.bvh").name == "cmu"
    found = detect_map(lafan, "l.bvh")
    assert found.name == "lafan1" and found.points["right_toe"] == "RightToe"
    assert detect_map(mixamo, "m.bvh").points["left_thigh"] == "mixamorig:LeftUpLeg"
    assert "head_top" not in detect_map(lafan[:5] + lafan[6:], "l.bvh").points  # optional, dropped
    with pytest.raises(MotionFileError, match="lacks the required joints"):
        detect_map(lafan[1:], "x.bvh")
    (tmp_path / "m.yaml").write_text("points: {pelvis: Hips}\n")
    with pytest.raises(MotionFileError, match="lacks required points"):
        load_map(tmp_path / "m.yaml")
    (tmp_path / "m.yaml").write_text("points: {pelvis: Hips, elbow: X}\n")
    with pytest.raises(MotionFileError, match="unknown character points"):
        load_map(tmp_path / "m.yaml")


def test_reader_gives_file_units_and_rotation_orders(tmp_path):
    _clip_as_bvh(tmp_path / "a.bvh", frames=3, order="XZY")
    motion = read_bvh(tmp_path / "a.bvh")
    assert motion.joint_names[0] == "pelvis" and motion.num_frames == 3 and motion.fps == 30.0
    clip = load_clip(WALK)
    from ase_jax.motions.kinematics import forward_kinematics

    _, expected = forward_kinematics(quat.from_xyzw(clip.local_rotation[:3]), clip.root_translation[:3],
                                     clip.skeleton.parent_indices, clip.skeleton.local_translation)
    assert np.abs(motion.positions() - expected).max() < 1e-5


@pytest.mark.timeout(120)
def test_import_with_track_and_motions_track_on_the_output(tmp_path, capsys):
    """`import --track` adds `motions track`'s figures to the report; `motions track` reads the
    import's dataset.yaml and clip and gives the same figures."""
    _clip_as_bvh(tmp_path / "walk.bvh", frames=31)
    assert motions_main(["import", str(tmp_path / "walk.bvh"), f"--out={tmp_path / 'out'}", "--track"]) == 0
    out = capsys.readouterr().out
    assert "tracked by the simulated character" in out
    track = json.loads((tmp_path / "out" / "walk.report.json").read_text())["track"]
    assert set(track) == {"joint_error_deg", "joint_error_p95_deg", "key_body_error_cm", "key_body_error_p95_cm",
                          "saturated_share"}
    # the bundled walk is tracked within a few degrees (BENCHMARKS.md: 0.8 deg mean, 1.9 cm)
    assert 0 < track["joint_error_deg"] < 3.0 and 0 < track["key_body_error_cm"] < 6.0
    for path in (tmp_path / "out" / "dataset.yaml", tmp_path / "out" / "walk.npy"):
        assert motions_main(["track", str(path), "--json"]) == 0
        total = json.loads(capsys.readouterr().out)["total"]
        assert total["control_steps"] == 30
        assert abs(total["joint_error_deg"] - track["joint_error_deg"]) < 1e-3


@pytest.mark.timeout(120)
def test_play_an_imported_clip_beside_its_source_skeleton(tmp_path, sword_shield, capsys):
    """`motions play CLIP --source=FILE.bvh --video`: the source skeleton (left) beside the character
    (right), one frame per clip frame, twice as wide; the BVH's up axis and unit from the report."""
    from ase_jax import render

    problem = render.gl_problem()
    if problem is not None:
        pytest.skip(problem)
    import mediapy

    _, points = _other_skeleton_bvh(tmp_path / "other.bvh", sword_shield, frames=10)  # cm, Y up, 60 fps
    (tmp_path / "map.yaml").write_text(yaml.safe_dump({"name": "other", "points": points}))
    assert motions_main(["import", str(tmp_path / "other.bvh"), f"--out={tmp_path / 'out'}",
                         f"--map={tmp_path / 'map.yaml'}"]) == 0
    video = tmp_path / "side.mp4"
    args = ["play", str(tmp_path / "out" / "other.npy"), f"--source={tmp_path / 'other.bvh'}", "--width=64",
            "--height=48"]
    assert motions_main([*args, f"--video={video}"]) == 0
    assert "(10 frames, 128x48" in capsys.readouterr().out
    render.use_ffmpeg()
    frames = mediapy.read_video(video)
    assert frames.shape == (10, 48, 128, 3)
    assert frames[:, :, :64].std() > 1 and frames[:, :, 64:].std() > 1  # both sides drawn
    # the source skeleton's joints are Z-up metres at the clip's rate, feet on the floor
    from ase_jax.motions.source_view import source_skeleton

    pos, parents, mapped = source_skeleton(tmp_path / "other.bvh", 30.0, tmp_path / "out" / "other.report.json")
    assert pos.shape == (10, 18, 3) and parents[0] == -1 and mapped.sum() == 0  # custom map file: not highlighted
    assert 1.2 < pos[0, :, 2].max() - pos[0, :, 2].min() < 2.0
    assert motions_main([*args]) == 1  # --source without --video
    assert "--source needs --video" in capsys.readouterr().err


def _tpose_bvh(path, frames, prefix="", tips=False):
    """The walk from a source whose rest pose is a T-pose (arms horizontal; the character's hang
    down): every arm joint's frame is turned 90 deg about x from the character's, the offsets and
    local rotations changed so that the joint positions are the walk's. prefix: renames the joints
    (then a map is needed); tips: adds crown and toe joints."""
    clip = load_clip(WALK)
    sk = clip.skeleton
    names, parents = list(sk.node_names), list(sk.parent_indices)
    offsets = np.asarray(sk.local_translation, np.float64)
    glob, _ = forward_kinematics(quat.from_xyzw(clip.local_rotation)[:frames], clip.root_translation[:frames],
                                 sk.parent_indices, offsets)
    rest = np.tile([1.0, 0, 0, 0], (len(names), 1))  # source joint frame in the character's body frame
    for side, sign in (("right", 1.0), ("left", -1.0)):
        for b in (f"{side}_upper_arm", f"{side}_lower_arm", f"{side}_hand"):
            rest[names.index(b)] = quat.from_axis_angle(np.array([1.0, 0, 0]), np.array(sign * np.pi / 2))
    src_offsets = np.array([quat.rotate(quat.conj(rest[p]), o) if p >= 0 else o for o, p in zip(offsets, parents)])
    glob = quat.mul(glob, rest)
    local = np.array(glob)
    for j, p in enumerate(parents):
        if p >= 0:
            local[:, j] = quat.mul(quat.conj(glob[:, p]), glob[:, j])
    if tips:
        for name, parent, offset in (("crown", "head", (0, 0, 0.175)), ("right_toe", "right_foot", (0.12, 0, -0.045)),
                                     ("left_toe", "left_foot", (0.12, 0, -0.045))):
            names.append(name)
            parents.append(names.index(parent))
            src_offsets = np.vstack([src_offsets, offset])
            local = np.concatenate([local, np.tile([1.0, 0, 0, 0], (local.shape[0], 1, 1))], axis=1)
    write_bvh(path, [prefix + n for n in names], parents, src_offsets, clip.root_translation[:frames],
              quat.normalize(local), clip.fps)
    assert np.abs(src_offsets[names.index("right_lower_arm")] - [0, -0.275, 0]).max() < 1e-3  # horizontal
    return clip


@pytest.mark.timeout(120)
def test_a_t_pose_source(tmp_path, sword_shield, capsys):
    """A source whose rest pose is not the character's (T-pose arms vs arms down) retargets by joint
    positions alone, so its rest pose does not matter; a same-frames map (our own names) with such a
    rest pose does not match rotations (they would be 90 deg off) and the report says why."""
    from ase_jax.motions.bvh_maps import character_points

    clip = _tpose_bvh(tmp_path / "tpose.bvh", 40, prefix="Src_", tips=True)
    points = {p.name: "Src_" + p.body for p in character_points() if not p.name.endswith(("_top", "_toe"))}
    points.update(head_top="Src_crown", right_toe="Src_right_toe", left_toe="Src_left_toe")
    (tmp_path / "map.yaml").write_text(yaml.safe_dump({"name": "tpose", "points": points}))
    assert motions_main(["import", str(tmp_path / "tpose.bvh"), f"--out={tmp_path / 'out'}",
                         f"--map={tmp_path / 'map.yaml'}"]) == 0
    report = json.loads((tmp_path / "out" / "tpose.report.json").read_text())
    assert report["rest_pose_difference_deg"] > 80 and not report["rotations_matched"]
    assert report["mean_error_cm"] < 1.0 and not report["flagged"]
    original = convert_clip(clip, sword_shield).qpos[:40]
    imported = convert_clip(load_clip(tmp_path / "out" / "tpose.npy"), sword_shield).qpos
    ids = [sword_shield.body_names.index(b) for b in KEY_BODIES[:4]]  # hands and feet
    err = np.linalg.norm(_body_positions(sword_shield, original)[:, ids] - _body_positions(sword_shield, imported)[:, ids],
                         axis=-1)
    assert err.max() < 0.03, err.max()

    # our own joint names (map `ase`, same frames) but a T-pose rest: rotations are not matched
    _tpose_bvh(tmp_path / "tpose_ase.bvh", 20)
    assert motions_main(["import", str(tmp_path / "tpose_ase.bvh"), f"--out={tmp_path / 'out2'}"]) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "out2" / "tpose_ase.report.json").read_text())
    assert report["map"] == "ase" and report["rest_pose_difference_deg"] > 80 and not report["rotations_matched"]
    assert report["mean_error_cm"] < 1.0  # with the rotations 90 deg off matched too: 6.3 cm, flagged
    # the round trip of our own skeleton (same rest pose) still matches rotations
    _clip_as_bvh(tmp_path / "walk.bvh", frames=5)
    assert motions_main(["import", str(tmp_path / "walk.bvh"), f"--out={tmp_path / 'out3'}"]) == 0
    report = json.loads((tmp_path / "out3" / "walk.report.json").read_text())
    assert report["rest_pose_difference_deg"] < 1e-3 and report["rotations_matched"]


def _cmu_bvh(path, prefix="", frames=5):
    """A skeleton with CMU / mocapbank names and about the character's proportions, standing still
    (all rotations zero: arms down), in cm, Y up, with end sites at the head top (15 cm above the Head
    joint) and the toe tips. Standing height: head top 69 cm above the hips, toes 89.5 cm below,
    1.585 m; its neck is 131 cm above its ankles."""
    joints = [("Hips", -1, (0, 0, 0)), ("Chest", 0, (0, 24, 0)), ("Neck", 1, (0, 22, 0)), ("Head", 2, (0, 8, 0))]
    for side, x in (("Left", 1), ("Right", -1)):
        chest, hips = 1, 0
        joints += [(f"{side}Shoulder", chest, (18 * x, 24, -2)), (f"{side}Elbow", len(joints), (0, -27, 0)),
                   (f"{side}Wrist", len(joints) + 1, (0, -26, 0))]
        joints += [(f"{side}Hip", hips, (8.5 * x, -2, 0)), (f"{side}Knee", len(joints), (0, -42, 0)),
                   (f"{side}Ankle", len(joints) + 1, (0, -41, 0)), (f"{side}Toe", len(joints) + 2, (0, -4.5, 12))]
    names = [prefix + n for n, _, _ in joints]
    parents = [p for _, p, _ in joints]
    ends = {names.index(prefix + "Head"): (0, 15, 0)}
    ends.update({names.index(prefix + f"{s}Toe"): (0, 0, 5) for s in ("Left", "Right")})
    rot = np.tile([1.0, 0, 0, 0], (frames, len(joints), 1))
    write_bvh(path, names, parents, [o for _, _, o in joints], np.tile([0, 89.5, 0], (frames, 1)), rot, 30.0,
              end_sites=ends)


@pytest.mark.timeout(120)
def test_standing_height_is_head_top_to_toes(tmp_path, capsys):
    _cmu_bvh(tmp_path / "stand.bvh")
    assert motions_main(["import", str(tmp_path / "stand.bvh"), f"--out={tmp_path / 'out'}", "--no_track"]) == 0
    assert "1.58 m standing height" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "stand.report.json").read_text())
    assert report["map"] == "cmu" and report["unit_scale"] == 0.01
    assert abs(report["source_height_m"] - 1.585) < 1e-6  # neck to ankle would be 1.31


@pytest.mark.timeout(120)
def test_a_name_prefix_is_found_or_given_and_errors_stay_short(tmp_path, capsys):
    """CMU names with Mixamo's `mixamorig:` prefix: `--map=cmu` reads them (the prefix found before
    the root's name), so do detection and `--prefix`; a map the file does not fit is one short line."""
    _cmu_bvh(tmp_path / "rig.bvh", prefix="mixamorig:")
    for extra in (["--map=cmu"], [], ["--prefix=mixamorig:"]):
        out = tmp_path / f"out{len(extra)}{extra[0][2:5] if extra else ''}"
        assert motions_main(["import", str(tmp_path / "rig.bvh"), f"--out={out}", "--no_track", *extra]) == 0, extra
        report = json.loads((out / "rig.report.json").read_text())
        assert report["map"] == "cmu" and report["joint_prefix"] == "mixamorig:"
        assert "with prefix 'mixamorig:'" in capsys.readouterr().out
    for extra, expected in ((["--map=lafan1"], "the map 'lafan1' names joints this file lacks: "),
                            (["--map=cmu", "--prefix=rig:"], "the map 'cmu' with the prefix 'rig:' names joints"),
                            (["--prefix=rig:"], "no built-in map fits with the prefix 'rig:'")):
        assert motions_main(["import", str(tmp_path / "rig.bvh"), f"--out={tmp_path / 'none'}", "--no_track",
                             *extra]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2 and expected in err[0], err
        assert "and 15 more" in err[0] and "18 joints: " in err[0], err[0]  # a few names, a count
        assert len(err[0].replace(str(tmp_path), "")) < 350, err[0]  # (1,158 characters before)
    assert not (tmp_path / "none").exists()


@pytest.mark.timeout(120)
def test_an_existing_out_is_added_to_and_its_clips_kept(tmp_path, capsys):
    """A second import into --out adds to its dataset.yaml; a clip of the same name is refused
    without --force; a folder of another character's clips is refused even with --force."""
    for name in ("a", "b", "c"):
        _clip_as_bvh(tmp_path / f"{name}.bvh", frames=6)
    out = tmp_path / "out"
    run = lambda name, *extra: motions_main(["import", str(tmp_path / f"{name}.bvh"), f"--out={out}", "--no_track",
                                             *extra])
    assert run("a") == 0 and run("b") == 0
    capsys.readouterr()
    both = {"motions": [{"file": "a.npy", "weight": 0.5}, {"file": "b.npy", "weight": 0.5}]}
    assert yaml.safe_load((out / "dataset.yaml").read_text()) == both
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    assert run("a") == 1  # same name: refused, nothing touched
    err = capsys.readouterr().err
    assert "a.npy is there already" in err and "--force replaces it" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    assert run("c", "--character=amp_humanoid", "--force") == 1  # another character: refused
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds clips for sword_shield" in err[0] and "another --out" in err[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    assert run("a", "--force") == 0 and run("c", "--weights=2") == 0  # replaced; added at twice the mean
    assert "1 clip added, 2 kept" in capsys.readouterr().out
    doc = yaml.safe_load((out / "dataset.yaml").read_text())
    assert doc == {"motions": [{"file": "a.npy", "weight": 0.25}, {"file": "b.npy", "weight": 0.25},
                               {"file": "c.npy", "weight": 0.5}]}
