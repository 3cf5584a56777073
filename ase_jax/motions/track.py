"""`python -m ase_jax.motions track PATH`: can the character perform these clips?

Each clip is simulated in C MuJoCo with the env's physics (the same MJCF, PD drive, per-axis limits,
self-collision, 120 Hz substeps under 30 Hz targets). The root is driven along the clip's root
trajectory (its pose and velocity are set before every physics step), so only the joints have to
keep up; each joint's PD target is what a policy could send: the clip's joint coordinates at the
middle of the control step, led by kd / kp times the clip's joint velocity (so that the D term
tracks the clip's velocity instead of braking it), clipped to the action range. Reported per clip
and in total, at every control step: the joint angle error (mean and 95th percentile, degrees), the
key-body position error (cm) and the share of physics steps in which at least one drive is at its
torque limit. A character that cannot move as fast as the data shows it here first.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from rich.console import Console
from rich.table import Table

from ase_jax import quat
from ase_jax import cli
from ase_jax.character import CHARACTERS, Character, character_spec
from ase_jax.drive import PDDrive, make_drive, mujoco_step
from ase_jax.errors import AseInputError
from ase_jax.motions import library as ml
from ase_jax.motions.dataset import MotionDataset, load_dataset
from ase_jax.motions.inspect import dataset_character

PHYSICS_STEPS_PER_CONTROL_STEP = 4  # the env's default: 4 x 1/120 s per 30 Hz control step


@dataclasses.dataclass(frozen=True)
class TrackReport:
    name: str
    seconds: float
    control_steps: int
    joint_error_deg: float  # mean over joints and control steps
    joint_error_p95_deg: float
    key_body_error_cm: float  # mean over key bodies and control steps
    key_body_error_p95_cm: float
    saturated_share: float  # physics steps with at least one drive at its torque limit
    saturated_dof_share: float  # (physics step, DoF) pairs at the torque limit


@dataclasses.dataclass(frozen=True)
class _Samples:
    joint_deg: np.ndarray  # (steps, joints)
    key_cm: np.ndarray  # (steps, key bodies)
    saturated: np.ndarray  # (physics steps, nu)


def _joint_errors(character: Character, qpos_a: np.ndarray, qpos_b: np.ndarray) -> np.ndarray:
    """(joints,) angle between two poses' joint rotations in degrees (balls: angle of the relative
    rotation; hinges: angle difference)."""
    out = []
    for joint in character.joints:
        a = qpos_a[joint.qpos_adr: joint.qpos_adr + (4 if joint.kind == "ball" else 1)]
        b = qpos_b[joint.qpos_adr: joint.qpos_adr + (4 if joint.kind == "ball" else 1)]
        if joint.kind == "ball":
            rel = quat.mul(quat.conj(a / np.linalg.norm(a)), b / np.linalg.norm(b))
            out.append(2.0 * np.arctan2(np.linalg.norm(rel[1:]), abs(rel[0])))
        else:
            out.append(abs(float(a[0] - b[0])))
    return np.rad2deg(np.asarray(out))


def _simulate(character: Character, model, drive: PDDrive | None, ref_qpos, ref_qvel, ref_body, substeps: int):
    """Tracks one clip sampled at the physics steps (ref_* of (K * substeps + 1, ...))."""
    data = mujoco.MjData(model)
    nq, nv, nu = character.nq, character.nv, character.num_actions
    data.qpos[:nq], data.qvel[:nv] = ref_qpos[0], ref_qvel[0]
    lo, hi = character.pd_offset - character.pd_scale, character.pd_offset + character.pd_scale
    gains = drive if drive is not None else make_drive(character)  # kp, kd and lengths alike
    lead = gains.kd / gains.kp
    num_steps = (len(ref_qpos) - 1) // substeps
    joint_deg, key_cm = np.zeros((num_steps, len(character.joints))), np.zeros((num_steps, len(character.key_body_ids)))
    saturated = np.zeros((num_steps * substeps, nu), bool)
    key = np.asarray(character.key_body_ids)
    for k in range(num_steps):
        mid = k * substeps + substeps // 2
        target = np.clip(gains.lengths(ref_qpos[mid]) + lead * ref_qvel[mid, 6:], lo, hi)
        for j in range(substeps):
            i = k * substeps + j
            data.qpos[:7], data.qvel[:6] = ref_qpos[i, :7], ref_qvel[i, :6]
            if drive is None:  # the MJCF's actuators alone, as plain MuJoCo runs it
                data.ctrl[:nu] = target
                mujoco.mj_step(model, data)
                limit = model.actuator_forcerange[:nu, 1]
                saturated[i] = model.actuator_forcelimited[:nu].astype(bool) & (np.abs(data.actuator_force[:nu]) >= limit - 1e-9)
            else:
                saturated[i] = mujoco_step(model, data, drive, target)[0]
        end = (k + 1) * substeps
        data.qpos[:7], data.qvel[:6] = ref_qpos[end, :7], ref_qvel[end, :6]
        mujoco.mj_kinematics(model, data)
        joint_deg[k] = _joint_errors(character, data.qpos[:nq], ref_qpos[end])
        key_cm[k] = 100.0 * np.linalg.norm(data.xpos[1 + key] - ref_body[end, key], axis=-1)
    if not (np.all(np.isfinite(data.qpos)) and data.warning[mujoco.mjtWarning.mjWARN_BADQACC].number == 0):
        joint_deg[:] = np.nan  # unstable: MuJoCo reset the state
    return _Samples(joint_deg, key_cm, saturated)


def _report(name: str, seconds: float, s: _Samples) -> TrackReport:
    return TrackReport(name, seconds, s.joint_deg.shape[0], float(np.mean(s.joint_deg)),
                       float(np.percentile(s.joint_deg, 95)), float(np.mean(s.key_cm)),
                       float(np.percentile(s.key_cm, 95)), float(np.mean(np.any(s.saturated, axis=1))),
                       float(np.mean(s.saturated)))


def _padded(n: int) -> int:
    return 1 << max(4, int(np.ceil(np.log2(max(n, 1)))))


_STATE_AT = jax.jit(ml.state_at)


def _reference_states(dataset: MotionDataset, char: Character, ids: np.ndarray, times: np.ndarray):
    """(qpos, qvel, body_pos) float64 of the motion library's states at (clip, time) pairs. The
    library and the queries are padded to powers of two (a filler clip, repeated queries) so that one
    compiled `state_at` serves clips of many lengths: unpadded, every new clip length compiled
    anew (about 20 s on a busy 2-core CPU; a second clip of the same length, 1 s)."""
    total = sum(c.num_frames for c in dataset.clips)
    fill = _padded(total + 2) - total
    first = dataset.clips[0]
    take = np.arange(fill) % first.num_frames
    filler = dataclasses.replace(first, name="(padding)", local_rotation=first.local_rotation[take],
                                 qpos=first.qpos[take], qvel=first.qvel[take], body_pos=first.body_pos[take])
    padded = MotionDataset(dataset.path, (*dataset.clips, filler), np.append(dataset.weights, 0.0))
    lib = ml.build_motion_lib(padded, char)
    lib = lib.replace(clip_names=("",) * lib.num_clips)  # static: the names would make a new program each time
    n = len(ids)
    at = np.arange(_padded(n)) % n
    ref = _STATE_AT(lib, jnp.asarray(ids[at]), jnp.asarray(times[at], jnp.float32))
    return tuple(np.asarray(x, np.float64)[:n] for x in (ref.qpos, ref.qvel, ref.body_pos))


def track_dataset(path, character: str | Character | None = None, self_collision: bool = True,
                  torque_limit="gear", drive: str = "ase_jax") -> tuple[Character, list[TrackReport], TrackReport]:
    """(character, one report per clip, the total) for a clip (.npy) or dataset (.yaml).

    drive="ase_jax" uses the env's PD drive; drive="mjcf" runs the MJCF's actuators alone (ctrl =
    PD target), as plain MuJoCo would, to compare characters whose MJCF holds the whole controller.
    """
    char = dataset_character(path, character)
    reports, total = track_motions(load_dataset(path, char), char, self_collision, torque_limit, drive)
    return char, reports, total


def track_motions(dataset: MotionDataset, char: Character, self_collision: bool = True, torque_limit="gear",
                  drive: str = "ase_jax") -> tuple[list[TrackReport], TrackReport]:
    """`track_dataset` of clips already loaded (e.g. an import's clip before it is written)."""
    model = character_spec(char, self_collision).compile()
    pd = make_drive(char, torque_limit) if drive == "ase_jax" else None
    substep = float(model.opt.timestep)
    control_dt = PHYSICS_STEPS_PER_CONTROL_STEP * substep
    ids, times, spans, start = [], [], [], 0
    for c, clip in enumerate(dataset.clips):  # every clip sampled at its physics steps
        n = int(np.floor(clip.length / control_dt + 1e-6)) * PHYSICS_STEPS_PER_CONTROL_STEP + 1
        spans.append((start, n))
        start += n
        ids.append(np.full(n, c))
        times.append(np.minimum(np.arange(n) * substep, clip.length))
    qpos, qvel, body = _reference_states(dataset, char, np.concatenate(ids), np.concatenate(times))
    reports, samples = [], []
    for clip, (start, n) in zip(dataset.clips, spans):
        s = _simulate(char, model, pd, qpos[start: start + n], qvel[start: start + n], body[start: start + n],
                      PHYSICS_STEPS_PER_CONTROL_STEP)
        reports.append(_report(clip.name, clip.length, s))
        samples.append(s)
    total = _Samples(*(np.concatenate([getattr(s, f.name) for s in samples])
                       for f in dataclasses.fields(_Samples)))
    return reports, _report(f"{len(reports)} clips", sum(r.seconds for r in reports), total)


def run_track(args) -> int:
    console = Console(width=None if sys.stdout.isatty() else 140)
    try:
        char, reports, total = track_dataset(args.path, args.character, not args.no_self_collision,
                                             args.pd_torque_limit)
    except (AseInputError, ValueError) as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 1
    if args.json:
        print(json.dumps({"character": char.name, "self_collision": not args.no_self_collision,
                          "pd_torque_limit": args.pd_torque_limit, "total": dataclasses.asdict(total),
                          "clips": [dataclasses.asdict(r) for r in reports]}))
        return 0
    table = Table(title=f"{args.path}  (character: {char.name}, self-collision "
                        f"{'off' if args.no_self_collision else 'on'}, torque limit {args.pd_torque_limit})")
    table.add_column("clip", no_wrap=True)
    for col in ("seconds", "joint err (deg)", "p95", "key-body err (cm)", "p95", "at torque limit"):
        table.add_column(col, justify="right")

    def row(r: TrackReport, **kw):
        table.add_row(r.name, f"{r.seconds:.1f}", f"{r.joint_error_deg:.1f}", f"{r.joint_error_p95_deg:.1f}",
                      f"{r.key_body_error_cm:.1f}", f"{r.key_body_error_p95_cm:.1f}", f"{100 * r.saturated_share:.0f}%",
                      **kw)

    for r in reports:
        row(r, style="red" if not np.isfinite(r.joint_error_deg) else "")
    table.add_section()
    row(total, style="bold")
    console.print(table)
    return 0


def add_track_parser(subparsers) -> None:
    p = cli.add_subcommand(subparsers, "track", description=__doc__,
                           help="simulate a clip or dataset with the root driven along the data and "
                                "report how well the joints follow it")
    p.add_argument("path", help="a motion clip (.npy) or a dataset (.yaml)")
    p.add_argument("--character", default=None, choices=sorted(CHARACTERS),
                   help="character to simulate (default: the one whose skeleton matches)")
    p.add_argument("--pd_torque_limit", default="gear",
                   help="limit of the PD drive's total torque: gear (default), a factor of it such as 1.5, or none")
    p.add_argument("--no_self_collision", action="store_true", help="body parts pass through each other")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_track)
