"""Authoring motion clips from keyframes: the toolkit `motions/make_bundled.py` is built from.

This is a script-side package, not part of `ase_jax`: only the generator uses it, and it needs
scipy (interpolation, smoothing, rotation matrices), which the runtime does not
(`pip install -e .[authoring]`). `make_bundled.py` puts the `motions/` folder on sys.path and
imports it as `authoring`.

A clip is authored as per-frame *local* joint rotations (wxyz) plus a root translation, then
`skeleton_clip.make_clip` adds the stored body velocities the way poselib computed them for the
ASE data (docs/reference.md §1.1) and returns a `RawClip` that `save_clip` writes in the ASE
`.npy` layout.

The modules, in the order a clip is made:

* `rotations`: quaternion helpers for writing poses by hand (`exp_map` of elementary rotations,
  `yaw_quat`, `euler_quat`) and for keeping them tidy (`quat_pos`, `continuous_sign`,
  `matrix_to_quat`).
* `skeleton_clip`: `skeleton_from_mjcf` gives the clip's skeleton tree (body names, parents, bone
  offsets); `make_clip` the stored clip with its poselib velocities (`compute_velocities`).
* `keyframes`: upper-body joints from keyframes: `interpolate_keys` (monotone cubic, optionally
  looping) of exp-map vectors / hinge angles, then `pose_to_local_rotation` (joint name -> exp map
  or angle).
* `foot_tracks`: legs come from foot placements: `foot_track` turns a list of `FootPlant`s (where
  and when a foot is planted) into world foot poses (flat stance, toe-off and heel-strike rolls,
  lifted swing).
* `two_bone_ik`: `leg_ik` solves hip / knee / ankle for a given pelvis pose onto those foot poses,
  so a planted foot does not move at all and its sole touches the floor exactly. This replaces a "ground and fix
  feet" post-pass. `limb_ik` is the same solver for arms (e.g. a sword hand following a path in
  the torso frame).
* `clip_measures`: `measure_clip` gives the plausibility numbers (lowest geom, foot heights, foot
  slide while in contact, self-penetration, joint-limit use) computed with MuJoCo kinematics on
  the MJCF, from the qpos that `ase_jax.motions.convert` makes of the clip (the same conversion
  training uses).

All functions are numpy (float64), deterministic, and take the MuJoCo model of the character
(`measure_clip` the loaded `Character`).
Quaternions are wxyz except inside `RawClip`, which stores xyzw like the ASE files.
"""
