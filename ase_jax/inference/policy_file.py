"""policy.json: what an exported policy expects (observation layout, action to PD target, control
rate, character, env settings), written by `python -m ase_jax.export` and read by the C-MuJoCo
player (`inference.export_folder`; `inference.policy_loading` decides what a folder holds)."""

from __future__ import annotations

import numpy as np



FORMAT = 1  # of policy.json


LLC_FILE, HLC_FILE, JSON_FILE = "llc.onnx", "hlc.onnx", "policy.json"


def character_obs_layout(character) -> list[dict]:
    """The blocks of the character's policy observation (ase_jax.env.observations.policy_obs), in order."""
    b = character.num_bodies
    blocks = [
        ("root_height", [1], "root height above the floor (m)"),
        ("body_positions", [b - 1, 3], "p_b - p_root of bodies 1.. in the heading frame (m)"),
        ("body_rotations", [b, 6], "tan_norm (rotated x axis, rotated z axis) of each body's rotation in the "
                                   "heading frame"),
        ("body_velocities", [b, 3], "linear velocity of each body's origin, heading frame (m/s)"),
        ("body_angular_velocities", [b, 3], "angular velocity of each body, heading frame (rad/s)"),
    ]
    return _with_offsets([{"name": n, "shape": s, "size": int(np.prod(s)), "doc": d} for n, s, d in blocks])


def _with_offsets(blocks: list[dict], start: int = 0) -> list[dict]:
    for block in blocks:
        block["start"] = start
        start += block["size"]
    return blocks


def task_obs_layout(character, task) -> list[dict]:
    """The character's blocks, then the task's (`Task.obs_layout`, which the tests hold to `observe`)."""
    blocks = character_obs_layout(character)
    start = blocks[-1]["start"] + blocks[-1]["size"]
    return blocks + _with_offsets([{"name": n, "shape": [s], "size": s, "doc": d} for n, s, d in task.obs_layout],
                                  start)


def describe(config, character, step: int, source: str, task_policy=None) -> dict:
    """policy.json's content for a run (`config`: the LLC's or the task run's; `task_policy` for task runs)."""
    import mujoco

    from importlib.metadata import PackageNotFoundError, version

    from ase_jax.config.schema import to_dict
    from ase_jax.env import observations as obs_lib

    try:
        ase_version = version("ase_jax")
    except PackageNotFoundError:
        ase_version = None
    model = character.model
    physics_dt = float(model.opt.timestep)
    steps = config.env.physics_steps_per_control_step
    obs_size = obs_lib.policy_obs_size(character)
    actuators = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) for i in range(model.nu)]
    out = {
        "format": FORMAT,
        "ase_jax_version": ase_version,
        "source": {"checkpoint": source, "step": int(step), "command": config.command},
        "character": {"name": character.name, "mjcf": character.xml_path.name, "nq": character.nq,
                      "nv": character.nv, "num_bodies": character.num_bodies, "bodies": list(character.body_names)},
        "control": {"rate_hz": round(1.0 / (steps * physics_dt), 6), "physics_dt": physics_dt,
                    "physics_steps_per_control_step": steps,
                    "drive": "ase_jax.drive.PDDrive (the reference's clamped PD), pd_torque_limit="
                             f"{config.env.pd_torque_limit}"},
        "action": {"size": character.num_actions, "clip": [-1.0, 1.0], "actuators": actuators,
                   "pd_target": "pd_offset + pd_scale * action (radians: hinge angles, ball-joint exp-map components)",
                   "pd_offset": [float(x) for x in character.pd_offset],
                   "pd_scale": [float(x) for x in character.pd_scale]},
        "observation": {"size": obs_size, "normalized_inside": True, "layout": character_obs_layout(character)},
        "env": to_dict(config)["env"],
    }
    if task_policy is None:
        out["llc"] = _llc_entry(config, obs_size)
        return out
    task = task_policy.env.task
    task_obs = task_policy.env.obs_size
    out["task"] = {"name": config.task.name, "scratch": task_policy.llc is None, "obs_size": task_obs,
                   "obs_layout": task_obs_layout(character, task),
                   "llc_steps": task_policy.steps_per_action,
                   "marker": (task.marker.__doc__ or "").strip().splitlines()[0] if task.marker.__doc__ else None}
    if task_policy.llc is None:
        out["hlc"] = {"file": HLC_FILE, "inputs": {"obs": task_obs},
                      "outputs": {"action": character.num_actions, "pd_target": character.num_actions}}
    else:
        out["llc"] = _llc_entry(task_policy.llc.config, obs_size)
        out["hlc"] = {"file": HLC_FILE, "inputs": {"obs": task_obs}, "outputs": {"latent": out["llc"]["latent_dim"]},
                      "latent": "unit vector; hold it for llc_steps control steps, feeding llc.onnx the first "
                                f"{obs_size} entries of the task observation"}
    return out


def _llc_entry(config, obs_size: int) -> dict:
    latent_dim = config.ase.latent_dim
    if latent_dim == 0:  # plain AMP: the policy takes the observation alone
        return {"file": LLC_FILE, "inputs": {"obs": obs_size}, "outputs": {"action": None, "pd_target": None},
                "latent_dim": 0, "normalizer_clip": config.ppo.normalize_obs_clip}
    return {"file": LLC_FILE, "inputs": {"obs": obs_size, "z": latent_dim},
            "outputs": {"action": None, "pd_target": None}, "latent_dim": latent_dim,
            "z": "normalised to unit length inside the graph (e_k, or normalised N(0, I) draws)",
            "normalizer_clip": config.ppo.normalize_obs_clip}
