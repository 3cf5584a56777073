"""The bundled default clips (`motions/bundled/`), each written here as a function of
`assembly.Builder` that returns the clip (`make_bundled.py` runs them, checks and writes them).

* `assembly`: the clip rate, frame times, and the `Builder` that turns a pelvis path, an upper-body
  pose and two foot tracks into a clip (legs by IK onto the feet).
* `upper_body`: the vocabulary of spine and arm angles, the ready guard (`READY`), keyed upper-body
  poses, and the sword arm placed by IK from hand positions.
* `locomotion`: the gaits and steps: `walk_forward`, `walk_backward`, `turn_left`, `sidestep_left`.
* `stance_clips`: the clips in the ready stance, feet planted: `idle`, `sword_swing`,
  `shield_block`.

Conventions: x forward, y left, z up; angles in degrees in the keyframes.
"""
