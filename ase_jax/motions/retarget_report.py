"""How good an imported clip is: the numbers `motions import` prints and writes beside each clip.

- retargeting error per point (cm): the retargeted character's point vs its target (the source
  pose in the character's proportions), mean and max over frames;
- joint limits: frames on which a joint is more than `LIMIT_TOLERANCE_DEG` past its range (hinge
  range, or a ball joint's per-axis exp-map limits, docs/character.md);
- foot skating: horizontal speed (cm/s) of a foot while it touches the floor: per frame pair, the
  slowest of its box's corners that are under `CONTACT_HEIGHT_M` in both frames (a foot rolling
  over its heel or toe does not skate), mean and max over such frame pairs;
- floor penetration: how far any part of the character goes below the floor (cm), and on how many frames;
- self-penetration: contacts between the character's own geoms (MuJoCo's collision detection,
  `mj_forward`, with the MJCF's self-collision), deeper than `SELF_PENETRATION_TOLERANCE_M`, in all
  and per pair of bodies;
- the verdict (`judge`): flagged, with the likely cause and the flag to try, when the retargeting
  error, a pair of bodies in each other or the tracked clip (`motions track`'s figures, when the
  import tracked it) pass the thresholds below.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from ase_jax import quat
from ase_jax.character import Character
from ase_jax.motions.geom_heights import character_geoms, foot_geoms, geom_lowest_z

LIMIT_TOLERANCE_DEG = 1.0
CONTACT_HEIGHT_M = 0.02
SELF_PENETRATION_TOLERANCE_M = 0.005
FLOOR_TOLERANCE_M = 0.005

# The verdict's thresholds (docs/motions_import.md, "The verdict"). Every bundled clip passes far below
# them (one pair of bodies in each other on at most 1% of frames; tracked within 1.9 cm, a drive at its
# limit on at most 12% of steps), and so does every clip of the reference's Reallusion set, the data
# ASE is trained on (at most 47% of frames for one pair, the sword in the shield; 22.3 cm on a fall;
# 81% of steps on a jump attack): a clip past them is beyond anything the character is known to perform.
MAX_PAIR_PENETRATION_SHARE = 0.6  # one pair of bodies in each other on more than this share of frames
MAX_TRACK_KEY_BODY_CM = 25.0  # mean key-body error when tracked
MAX_TRACK_SATURATED_SHARE = 0.9  # physics steps with a drive at its torque limit
PROPS = {"shield": "left forearm", "sword": "right hand"}  # a prop body -> the limb that carries it


@dataclasses.dataclass
class ClipReport:
    source: str
    clip: str | None  # the written .npy (None: not written)
    character: str
    map: str
    up: str
    unit_scale: float
    source_height_m: float
    proportion_scale: float
    source_fps: float
    fps: float
    frames: int
    seconds: float
    point_error_cm: dict  # point -> {"mean": .., "max": ..}
    mean_error_cm: float
    max_error_cm: float
    joint_limit_frames: int
    joint_limit_worst_deg: dict  # joint -> largest excess over its range (degrees), only those past it
    foot_skating_cm_s: dict  # foot -> {"mean": .., "max": ..} while in contact; None: never in contact
    floor_penetration_cm: float
    floor_penetration_frames: int
    self_penetration_frames: int
    self_penetration_max_cm: float
    self_penetration_worst: str
    import_seconds: float
    flagged: bool = False
    flag_reasons: list = dataclasses.field(default_factory=list)
    # `import --track`: how well the physical character follows the clip (`motions track`'s figures:
    # joint_error_deg, joint_error_p95_deg, key_body_error_cm, key_body_error_p95_cm, saturated_share)
    track: dict | None = None
    # the largest angle between a source rest-pose bone and the character's (a T-pose source: ~90), and
    # whether joint rotations were matched too (a same-frames map whose rest pose is the character's)
    rest_pose_difference_deg: float = 0.0
    rotations_matched: bool = False
    foot_contact_share: dict = dataclasses.field(default_factory=dict)  # foot -> share of frames on the floor
    # "body/body" -> frames on which those two bodies are in each other deeper than the tolerance
    self_penetration_pairs: dict = dataclasses.field(default_factory=dict)
    advice: list = dataclasses.field(default_factory=list)  # per flag: the likely cause and the flag to try
    joint_prefix: str = ""  # what stood before every mapped joint name (found or --prefix)

    def feet_summary(self) -> str:
        """Per foot: the share of frames on the floor and the skating while there, or "never on the floor"."""
        parts = []
        for foot, v in self.foot_skating_cm_s.items():
            share = self.foot_contact_share.get(foot, 0.0)
            if v["mean"] is None:
                parts.append(f"{foot} never on the floor")
            else:
                parts.append(f"{foot} on the floor {100 * share:.0f}% of frames, skating {v['mean']:.1f} cm/s")
        return "; ".join(parts)

    def summary(self) -> str:
        worst = max(self.point_error_cm, key=lambda p: self.point_error_cm[p]["mean"])
        prefix = f" with prefix '{self.joint_prefix}'" if self.joint_prefix else ""
        pair = max(self.self_penetration_pairs, key=self.self_penetration_pairs.get, default=None)
        worst_pair = f", most {pair} on {self.self_penetration_pairs[pair]}" if pair else ""
        return (f"{self.frames} frames at {self.fps:g} fps ({self.seconds:.2f} s; source {self.source_fps:g} fps, "
                f"up {self.up}, {self.unit_scale:g} m/unit, {self.source_height_m:.2f} m standing height, map "
                f"{self.map}{prefix}); key-body error mean {self.mean_error_cm:.2f} cm, max {self.max_error_cm:.2f} cm "
                f"(worst {worst} {self.point_error_cm[worst]['mean']:.2f} cm); joint limits broken on "
                f"{self.joint_limit_frames} frames; {self.feet_summary()}; floor penetration "
                f"{self.floor_penetration_cm:.2f} cm; self-penetration on {self.self_penetration_frames} of "
                f"{self.frames} frames (max {self.self_penetration_max_cm:.2f} cm{worst_pair}); "
                f"{self.import_seconds:.1f} s")


def joint_limit_excess(character: Character, qpos: np.ndarray) -> dict:
    """{joint: (T,) largest excess over its range per frame, radians (<= 0 within)}."""
    out = {}
    for j in character.joints:
        if j.kind == "hinge":
            v = qpos[:, j.qpos_adr]
            out[j.name] = np.maximum(j.range[0] - v, v - j.range[1])
        else:
            e = quat.to_exp_map(qpos[:, j.qpos_adr:j.qpos_adr + 4])
            lo = np.array([r[0] for r in j.axis_ranges])
            hi = np.array([r[1] for r in j.axis_ranges])
            lo = np.where(lo <= -np.pi + 1e-3, -np.inf, lo)  # +-pi: no limit (the exp map wraps there)
            hi = np.where(hi >= np.pi - 1e-3, np.inf, hi)
            out[j.name] = np.maximum(lo - e, e - hi).max(axis=-1)
    return out


@dataclasses.dataclass(frozen=True)
class Contacts:
    skating: dict  # foot -> (mean, max) cm/s while on the floor, (None, None) if it never is
    contact_share: dict  # foot -> share of frames with a corner of its box under CONTACT_HEIGHT_M
    floor_depth: np.ndarray  # (T,) m, how far the character's lowest point is below the floor
    self_depth: np.ndarray  # (T,) m, the deepest contact between two of the character's bodies
    self_pair: list  # (T,) "geom/geom" of that contact ("" where none)
    pair_frames: dict  # "body/body" -> frames on which they are in each other deeper than the tolerance


def contact_measures(character: Character, qpos: np.ndarray, fps: float) -> Contacts:
    """Foot contact and skating, floor penetration and self-penetration of a clip (`Contacts`)."""
    model = character.model
    data = mujoco.MjData(model)
    char_geoms = character_geoms(model)
    feet = foot_geoms(character)
    num_frames = qpos.shape[0]
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    boxes = {f: [g for g in geoms if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX] for f, geoms in feet.items()}
    corners = {f: np.zeros((num_frames, 8 * len(b), 3)) for f, b in boxes.items()}
    floor_depth = np.zeros(num_frames)
    self_depth = np.zeros(num_frames)
    self_pair = [""] * num_frames
    pair_frames: dict = {}
    for t in range(num_frames):
        data.qpos[:] = qpos[t]
        data.qvel[:] = 0.0
        mujoco.mj_forward(model, data)
        low = geom_lowest_z(model, data, char_geoms)
        floor_depth[t] = max(0.0, -float(low.min()))
        for f, geoms in boxes.items():
            for i, g in enumerate(geoms):
                r = data.geom_xmat[g].reshape(3, 3)
                corners[f][t, 8 * i:8 * i + 8] = data.geom_xpos[g] + (signs * model.geom_size[g]) @ r.T
        pairs_now = set()
        for c in data.contact[:data.ncon]:
            b1, b2 = model.geom_bodyid[c.geom1], model.geom_bodyid[c.geom2]
            if b1 == 0 or b2 == 0:
                continue
            if -c.dist > SELF_PENETRATION_TOLERANCE_M:
                pairs_now.add("/".join(sorted((model.body(b1).name, model.body(b2).name))))
            if -c.dist > self_depth[t]:
                self_depth[t] = -c.dist
                self_pair[t] = f"{model.geom(c.geom1).name}/{model.geom(c.geom2).name}"
        for pair in pairs_now:
            pair_frames[pair] = pair_frames.get(pair, 0) + 1
    skating, contact_share = {}, {}
    for foot, c in corners.items():
        touching = c[..., 2] < CONTACT_HEIGHT_M  # (T, K)
        both = touching[1:] & touching[:-1]
        speed = np.linalg.norm(np.diff(c[..., :2], axis=0), axis=-1) * fps  # (T-1, K)
        pairs = both.any(axis=1)
        s = np.where(both, speed, np.inf).min(axis=1)[pairs]
        skating[foot] = (float(s.mean() * 100), float(s.max() * 100)) if s.size else (None, None)
        contact_share[foot] = float(touching.any(axis=1).mean())
    pair_frames = dict(sorted(pair_frames.items(), key=lambda kv: -kv[1]))
    return Contacts(skating, contact_share, floor_depth, self_depth, self_pair, pair_frames)


def _round(value, digits: int = 3):
    return None if value is None else round(value, digits)


def measure(character: Character, qpos: np.ndarray, fps: float, point_names, point_error: np.ndarray,
            **info) -> ClipReport:
    """The report of a retargeted clip (qpos (T, nq) at fps; point_error (T, P) metres); `info`
    fills the report's other fields (source, clip, map, up, ...)."""
    excess = joint_limit_excess(character, qpos)
    tol = np.radians(LIMIT_TOLERANCE_DEG)
    broken = np.zeros(qpos.shape[0], bool)
    worst = {}
    for name, e in excess.items():
        broken |= e > tol
        if e.max() > tol:
            worst[name] = round(float(np.degrees(e.max())), 2)
    contacts = contact_measures(character, qpos, fps)
    floor_depth, self_depth, self_pair = contacts.floor_depth, contacts.self_depth, contacts.self_pair
    t_self = int(self_depth.argmax())
    err_cm = point_error * 100
    return ClipReport(
        character=character.name, fps=float(fps), frames=int(qpos.shape[0]), seconds=(qpos.shape[0] - 1) / fps,
        point_error_cm={p: {"mean": round(float(err_cm[:, i].mean()), 3), "max": round(float(err_cm[:, i].max()), 3)}
                        for i, p in enumerate(point_names)},
        mean_error_cm=float(err_cm.mean()), max_error_cm=float(err_cm.max()),
        joint_limit_frames=int(broken.sum()), joint_limit_worst_deg=worst,
        foot_skating_cm_s={f: {"mean": _round(m), "max": _round(x)} for f, (m, x) in contacts.skating.items()},
        foot_contact_share={f: round(v, 4) for f, v in contacts.contact_share.items()},
        self_penetration_pairs=contacts.pair_frames,
        floor_penetration_cm=float(floor_depth.max() * 100),
        floor_penetration_frames=int((floor_depth > FLOOR_TOLERANCE_M).sum()),
        self_penetration_frames=int((self_depth > SELF_PENETRATION_TOLERANCE_M).sum()),
        self_penetration_max_cm=float(self_depth.max() * 100),
        self_penetration_worst=f"{self_pair[t_self]} @ frame {t_self}" if self_depth.max() > 0 else "",
        **info)


def _pair_cause(pair: str) -> tuple[str, str]:
    """(the likely cause, the flags to try) of two of the character's bodies in each other."""
    bodies = pair.split("/")
    prop = next((b for b in bodies if b in PROPS), None)
    avoid = "--avoid_self_collision (the IK keeps the character's parts apart)"
    if prop is not None:
        return (f"the source's {PROPS[prop]} comes closer to the body than the character's {prop} allows",
                f"{avoid}, or --character=amp_humanoid (no sword or shield)")
    return ("the source's limbs pass closer to the body than the character's proportions allow", avoid)


def judge(report: ClipReport, max_error_cm: float) -> None:
    """Sets the report's verdict: `flagged`, `flag_reasons` (what is past its threshold, with the
    numbers) and `advice` (the likely cause and the flag to try), from the retargeting error, the
    pairs of bodies in each other and, when the clip was tracked, `motions track`'s figures
    (`report.track`; its `without_self_collision` entry, where present, tells collisions from drives)."""
    reasons, advice = [], []
    if report.mean_error_cm > max_error_cm:
        worst = max(report.point_error_cm, key=lambda p: report.point_error_cm[p]["mean"])
        reasons.append(f"mean key-body error {report.mean_error_cm:.2f} cm > {max_error_cm:g} cm (worst {worst})")
        advice.append("the source's skeleton does not fit the map or its axes: check --map/--prefix, --up and "
                      "--scale, and look at it with --force and `motions play NAME.npy --source=FILE.bvh --video=...`")
    pair_cause = None
    for pair, frames in report.self_penetration_pairs.items():
        if frames > MAX_PAIR_PENETRATION_SHARE * report.frames:
            reasons.append(f"{pair.replace('/', ' and ')} are in each other on {frames} of {report.frames} frames "
                           f"(> {100 * MAX_PAIR_PENETRATION_SHARE:.0f}%)")
            pair_cause = pair_cause or _pair_cause(pair)
    if pair_cause is not None:
        advice.append(f"{pair_cause[0]}: try {pair_cause[1]}")
    track = report.track
    if track is not None and (track["key_body_error_cm"] > MAX_TRACK_KEY_BODY_CM
                              or track["saturated_share"] > MAX_TRACK_SATURATED_SHARE):
        key_body = f"key-body error {track['key_body_error_cm']:.1f} cm"
        saturated = f"a drive at its torque limit on {100 * track['saturated_share']:.0f}% of physics steps"
        past = [f"{key_body} (> {MAX_TRACK_KEY_BODY_CM:g} cm)" if track["key_body_error_cm"] > MAX_TRACK_KEY_BODY_CM
                else key_body,
                f"{saturated} (> {100 * MAX_TRACK_SATURATED_SHARE:.0f}%)"
                if track["saturated_share"] > MAX_TRACK_SATURATED_SHARE else saturated]
        reasons.append(f"the simulated character cannot follow it: {', '.join(past)}")
        free = track.get("without_self_collision")
        collisions = free is not None and (free["key_body_error_cm"] <= MAX_TRACK_KEY_BODY_CM
                                           and free["saturated_share"] <= MAX_TRACK_SATURATED_SHARE)
        if collisions and pair_cause is None:
            pair = max(report.self_penetration_pairs, key=report.self_penetration_pairs.get, default=None)
            cause, flags = _pair_cause(pair) if pair else ("its parts collide", "--avoid_self_collision")
            advice.append(f"its own parts hold it back (tracked without self-collision: key-body error "
                          f"{free['key_body_error_cm']:.1f} cm); {cause}: try {flags}")
        elif not collisions:
            advice.append("the motion is faster or needs more torque than the character's drives: write it with "
                          "--force and see whether stronger drives follow it, `motions track NAME.npy "
                          "--pd_torque_limit=2` (then train with --pd_torque_limit=2, docs/reference.md), or "
                          "leave the clip out")
    report.flagged = bool(reasons)
    report.flag_reasons = reasons
    report.advice = advice
