"""The clip rate and frame times of the bundled clips, and the `Builder` that assembles a clip:
the upper body from a pose, the legs by IK onto two foot tracks, stored velocities as poselib's."""

from __future__ import annotations

import mujoco
import numpy as np

from ase_jax import quat
from authoring.foot_tracks import foot_track
from authoring.keyframes import pose_to_local_rotation
from authoring.rotations import continuous_sign
from authoring.skeleton_clip import make_clip, skeleton_from_mjcf
from authoring.two_bone_ik import leg_ik

FPS = 30
MAX_LEG_EXTENSION = 0.995  # hip-ankle distance / straight-leg length while a foot is planted


def deg(x):
    return np.deg2rad(x)


def frames(seconds: float) -> np.ndarray:
    """Frame times 0, 1/FPS, ..., seconds (seconds * FPS + 1 frames)."""
    n = int(round(seconds * FPS)) + 1
    return np.arange(n) / FPS


class Builder:
    def __init__(self, model: mujoco.MjModel):
        self.model = model
        self.skeleton = skeleton_from_mjcf(model)
        self.body = {n: i for i, n in enumerate(self.skeleton.node_names)}

    def feet(self, times, plants_right, plants_left, **track):
        return {"right": foot_track(self.model, "right_foot", plants_right, times, **track),
                "left": foot_track(self.model, "left_foot", plants_left, times, **track)}

    def assemble(self, name, times, pelvis_pos, pelvis_quat, upper, feet):
        """Local rotations and root translation of a clip; legs by IK onto the feet tracks."""
        pelvis_pos = np.asarray(pelvis_pos, np.float64)
        pelvis_quat = continuous_sign(quat.normalize(np.asarray(pelvis_quat, np.float64)))
        rot = pose_to_local_rotation(self.model, upper, root_rotation=pelvis_quat)
        rot = np.array(np.broadcast_to(rot, (len(times),) + rot.shape[-2:]))
        for side in ("right", "left"):
            foot_pos, foot_q, contact = feet[side]
            hip, knee, ankle, ext = leg_ik(self.model, f"{side}_thigh", pelvis_pos, pelvis_quat, foot_pos, foot_q)
            worst = float(ext[contact].max()) if contact.any() else 0.0
            if worst > MAX_LEG_EXTENSION or ext.max() > 0.999:
                raise RuntimeError(f"{name}: {side} leg cannot reach its foot (extension {ext.max():.4f} "
                                   f"at t = {times[int(ext.argmax())]:.2f} s)")
            rot[:, self.body[f"{side}_thigh"]] = hip
            rot[:, self.body[f"{side}_shin"]] = quat.from_axis_angle(np.broadcast_to([0.0, 1.0, 0.0], knee.shape + (3,)), knee)
            rot[:, self.body[f"{side}_foot"]] = ankle
        return make_clip(rot, pelvis_pos, FPS, self.skeleton, path=f"{name}.npy")

