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
  `mj_forward`, with the MJCF's self-collision), deeper than `SELF_PENETRATION_TOLERANCE_M`.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from ase_jax import quat
from ase_jax.character import Character
from ase_jax.motions.retarget import foot_geoms, geom_lowest_z

LIMIT_TOLERANCE_DEG = 1.0
CONTACT_HEIGHT_M = 0.02
SELF_PENETRATION_TOLERANCE_M = 0.005
FLOOR_TOLERANCE_M = 0.005


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
    foot_skating_cm_s: dict  # foot -> {"mean": .., "max": ..} while in contact
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

    def summary(self) -> str:
        worst = max(self.point_error_cm, key=lambda p: self.point_error_cm[p]["mean"])
        skating = ", ".join(f"{f} {v['mean']:.1f}" for f, v in self.foot_skating_cm_s.items())
        return (f"{self.frames} frames at {self.fps:g} fps ({self.seconds:.2f} s; source {self.source_fps:g} fps, "
                f"up {self.up}, {self.unit_scale:g} m/unit, {self.source_height_m:.2f} m tall, map {self.map}); "
                f"key-body error mean {self.mean_error_cm:.2f} cm, max {self.max_error_cm:.2f} cm (worst "
                f"{worst} {self.point_error_cm[worst]['mean']:.2f} cm); joint limits broken on "
                f"{self.joint_limit_frames} frames; foot skating {skating} cm/s; floor penetration "
                f"{self.floor_penetration_cm:.2f} cm; self-penetration on {self.self_penetration_frames} frames "
                f"(max {self.self_penetration_max_cm:.2f} cm); {self.import_seconds:.1f} s")


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


def contact_measures(character: Character, qpos: np.ndarray, fps: float):
    """Foot skating {foot: (mean, max) cm/s}, floor penetration (depth m (T,)), self-penetration
    (depth m (T,), worst pair per frame)."""
    model = character.model
    data = mujoco.MjData(model)
    char_geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] > 0 and model.geom_contype[g] | model.geom_conaffinity[g]]
    feet = foot_geoms(character)
    num_frames = qpos.shape[0]
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    boxes = {f: [g for g in geoms if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX] for f, geoms in feet.items()}
    corners = {f: np.zeros((num_frames, 8 * len(b), 3)) for f, b in boxes.items()}
    floor_depth = np.zeros(num_frames)
    self_depth = np.zeros(num_frames)
    self_pair = [""] * num_frames
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
        for c in data.contact[:data.ncon]:
            if model.geom_bodyid[c.geom1] > 0 and model.geom_bodyid[c.geom2] > 0 and -c.dist > self_depth[t]:
                self_depth[t] = -c.dist
                self_pair[t] = f"{model.geom(c.geom1).name}/{model.geom(c.geom2).name}"
    skating = {}
    for foot, c in corners.items():
        touching = c[..., 2] < CONTACT_HEIGHT_M  # (T, K)
        both = touching[1:] & touching[:-1]
        speed = np.linalg.norm(np.diff(c[..., :2], axis=0), axis=-1) * fps  # (T-1, K)
        pairs = both.any(axis=1)
        s = np.where(both, speed, np.inf).min(axis=1)[pairs]
        skating[foot] = (float(s.mean() * 100) if s.size else 0.0, float(s.max() * 100) if s.size else 0.0)
    return skating, floor_depth, self_depth, self_pair


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
    skating, floor_depth, self_depth, self_pair = contact_measures(character, qpos, fps)
    t_self = int(self_depth.argmax())
    err_cm = point_error * 100
    return ClipReport(
        character=character.name, fps=float(fps), frames=int(qpos.shape[0]), seconds=(qpos.shape[0] - 1) / fps,
        point_error_cm={p: {"mean": round(float(err_cm[:, i].mean()), 3), "max": round(float(err_cm[:, i].max()), 3)}
                        for i, p in enumerate(point_names)},
        mean_error_cm=float(err_cm.mean()), max_error_cm=float(err_cm.max()),
        joint_limit_frames=int(broken.sum()), joint_limit_worst_deg=worst,
        foot_skating_cm_s={f: {"mean": round(m, 3), "max": round(x, 3)} for f, (m, x) in skating.items()},
        floor_penetration_cm=float(floor_depth.max() * 100),
        floor_penetration_frames=int((floor_depth > FLOOR_TOLERANCE_M).sum()),
        self_penetration_frames=int((self_depth > SELF_PENETRATION_TOLERANCE_M).sum()),
        self_penetration_max_cm=float(self_depth.max() * 100),
        self_penetration_worst=f"{self_pair[t_self]} @ frame {t_self}" if self_depth.max() > 0 else "",
        **info)
