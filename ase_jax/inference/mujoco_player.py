"""`python -m ase_jax.play --engine=mujoco --checkpoint=RUN_OR_EXPORT`: a trained policy in plain C MuJoCo.

No MJX and no XLA compilation of the physics: the character's scene is compiled by C MuJoCo from the
run's settings, stepped with `mujoco.mj_step` and the env's PD drive (`ase_jax.drive.mujoco_step`),
and observed with the env's own observation functions (`ase_jax.env.observations`,
`ase_jax.env.humanoid.body_velocities`, the task's `observe`) applied to `MjData`'s arrays (jitted
once on the CPU: a few small array programs, no physics). The policy is either

  * an export folder of `python -m ase_jax.export` (llc.onnx, hlc.onnx, policy.json), run with
    onnxruntime: no checkpoint, no JAX networks; or
  * a run folder / checkpoint, whose policy runs in JAX (as `play` does).

With `--video=PATH` the rollout is rendered headless (ase_jax.render); without it MuJoCo's
interactive viewer opens (needs a display) and runs in real time. Keys in the viewer: R a new random
latent, 0 latent e0, 3 latent e3 (pre-training runs); T moves the task target (task runs).
As in `play`, the character starts from its default pose (get-up: a fallen pose) and starts again
after a fall or the task's termination (strike: the target hit by a body other than the striking arm
and the feet), tested by the env's own functions (`ase_jax.env.termination`, the task's `terminated`).
"""

from __future__ import annotations

import time

from ase_jax import render  # first: picks the headless GL backend before mujoco is imported

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from flax import struct  # noqa: E402
from rich.console import Console  # noqa: E402

from ase_jax.errors import AseInputError  # noqa: E402
from ase_jax.env import termination  # noqa: E402
from ase_jax.env.humanoid import scene_model  # noqa: E402
from ase_jax.inference.policy import Policy  # noqa: E402
from ase_jax.inference.policy_loading import load_policy  # noqa: E402

KEY_RANDOM, KEY_E0, KEY_E3, KEY_TARGET = ord("R"), ord("0"), ord("3"), ord("T")


@struct.dataclass
class _Data:
    """The parts of MJX data the observation and task functions read, filled from MjData's arrays."""

    qpos: jax.Array
    qvel: jax.Array
    xpos: jax.Array
    xquat: jax.Array
    cvel: jax.Array
    subtree_com: jax.Array


class Simulation:
    """The character (and the task) in C MuJoCo, stepped at the control rate with a policy."""

    def __init__(self, policy: Policy, seed: int = 0):
        from ase_jax.drive import make_drive
        from ase_jax.env import observations as obs_lib
        from ase_jax.env.humanoid import body_velocities

        self.policy = policy.on_host()
        env, character, task = policy.env_config, policy.character, policy.task
        self.character, self.task = character, task
        self.model = scene_model(env, character, task)
        self.data = mujoco.MjData(self.model)
        self.drive = make_drive(character, env.pd_torque_limit)
        self.nsub = env.physics_steps_per_control_step
        self.pd_offset = np.asarray(character.pd_offset, np.float64)
        self.pd_scale = np.asarray(character.pd_scale, np.float64)
        self.key = jax.random.PRNGKey(seed)
        self.seed = seed
        nb = character.num_bodies
        rootid = np.asarray(self.model.body_rootid)
        model_view = type("ModelView", (), {"body_rootid": rootid})

        def observe(data: _Data, task_state):
            vel, ang_vel = body_velocities(model_view, data)
            b = slice(1, 1 + nb)
            obs = obs_lib.policy_obs(data.xpos[b], data.xquat[b], vel[:nb], ang_vel[:nb])
            if task is None:
                return obs
            return jnp.concatenate([obs, task.observe(task_state, data, character)])

        self._observe = jax.jit(observe)
        if task is not None:
            self._task_reset = jax.jit(lambda key, data: task.reset(key, data, character))
            self._task_update = jax.jit(lambda key, state, data: task.update(key, state, data, character))
            self._task_targets = jax.jit(lambda key, data: task.sample_targets(key, data, character))
            self._marker = jax.jit(task.marker)
        self._fall_qpos = None
        if env.fall_init_prob >= 1.0:  # get-up: every episode starts fallen
            from ase_jax.env.fall_states import make_fall_states

            self._fall_qpos = make_fall_states(character, 8, seed, env.self_collision, env.pd_torque_limit)
        # The env's fall test and task termination, on C MuJoCo's contact list (ase_jax.env.termination).
        self.scene = termination.Scene.of(self.model, character)
        self.ended = False  # the last step ended the episode (a fall or the task's termination)
        self.task_state = {}
        self.resets = 0
        self.reset()

    def _next_key(self):
        self.key, key = jax.random.split(self.key)
        return key

    # --- state ---------------------------------------------------------------------------------

    def _view(self) -> _Data:
        d = self.data
        return _Data(qpos=d.qpos.copy(), qvel=d.qvel.copy(), xpos=d.xpos.copy(), xquat=d.xquat.copy(),
                     cvel=d.cvel.copy(), subtree_com=d.subtree_com.copy())

    def refresh(self) -> None:
        """Body poses and velocities of the current qpos and qvel (as the env's _refresh_kinematics)."""
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_comVel(self.model, self.data)

    def reset(self, qpos=None, qvel=None) -> None:
        """A new episode: the default pose at rest (get-up: a fallen pose), or the given character
        state; the task's targets (and props) are placed as the env does. A `qpos` (and `qvel`) of the
        whole scene (the model's nq) also sets the props where it says."""
        c = self.character
        mujoco.mj_resetData(self.model, self.data)
        if qpos is None:
            qpos = np.asarray(self.model.qpos0[: c.nq])
            if self._fall_qpos is not None:
                qpos = self._fall_qpos[self.resets % len(self._fall_qpos)]
        scene_state = qpos is not None and len(qpos) == self.model.nq
        self.data.qpos[: len(qpos) if scene_state else c.nq] = qpos
        if qvel is not None:
            self.data.qvel[: len(qvel)] = qvel
        self.refresh()
        self.grace = self.policy.env_config.recovery_steps if self._fall_qpos is not None else 0
        self.step_count = 0
        self.resets += 1
        if self.task is not None:
            self.task_state, data = self._task_reset(self._next_key(), self._view())
            if not scene_state:
                self.data.qpos[:] = np.asarray(data.qpos)
                self.data.qvel[:] = np.asarray(data.qvel)
                self.refresh()
        self._held = None

    def observation(self) -> np.ndarray:
        return np.asarray(self._observe(self._view(), self.task_state))

    def marker(self) -> np.ndarray:
        if self.task is None:
            return np.full(3, np.nan)
        return np.asarray(self._marker(self.task_state, self._view()))

    def move_target(self) -> None:
        """New task targets now (the T key)."""
        if self.task is None:
            return
        if self.task.change_steps is None:  # targets placed once per episode (strike): place them again
            self.task_state, data = self._task_reset(self._next_key(), self._view())
            self.data.qpos[:] = np.asarray(data.qpos)
            self.data.qvel[:] = np.asarray(data.qvel)
            self.refresh()
        else:
            fresh = self._task_targets(self._next_key(), self._view())
            self.task_state = dict(self.task_state, **fresh)
        self._held = None

    def fallen(self, contacts: termination.Contacts | None = None) -> bool:
        """The env's fall test (docs/reference.md §4.3, `termination.has_fallen`): a non-foot body
        touches something and a non-foot body is below its termination height (contacts of the last
        physics step, as in the env; read from the data unless given)."""
        nb = self.character.num_bodies
        contacts = termination.mujoco_contacts(self.data) if contacts is None else contacts
        return bool(termination.has_fallen(contacts, self.data.xpos[1: 1 + nb, 2], self.scene))

    def terminated(self) -> bool:
        """The env's termination test before its step and recovery conditions: a fall, or the task's
        termination (e.g. strike: the target hit while a body other than the feet and the striking arm
        touches something)."""
        contacts = termination.mujoco_contacts(self.data)
        if self.fallen(contacts):
            return True
        if self.task is None:
            return False
        return bool(self.task.terminated(self.task_state, self._view(), contacts, self.scene))

    # --- control -------------------------------------------------------------------------------

    def action(self, obs: np.ndarray, z=None) -> np.ndarray:
        """The policy's action for this control step (`Policy.act`): the LLC's under latent `z`
        (pre-training runs), or the task policy's (the HLC's pick held for llc_steps steps)."""
        held = self._held if self.policy.is_task else z
        self._held, action = self.policy.act(held, obs, self.step_count)
        return action

    def step(self, z=None, auto_reset: bool = True) -> None:
        """One control step: the policy's action, `physics_steps_per_control_step` drive-and-step
        substeps, the task's countdown, and a new episode after a fall or the task's termination
        (`ended` says whether the step ended the episode, also without `auto_reset`)."""
        from ase_jax.drive import mujoco_step

        action = np.clip(np.asarray(self.action(self.observation(), z), np.float64), -1.0, 1.0)
        mujoco_step(self.model, self.data, self.drive, self.pd_offset + self.pd_scale * action, self.nsub)
        self.refresh()
        self.step_count += 1
        self.grace = max(self.grace - 1, 0)
        # As the env's step: termination reads the task state from before the task's update.
        ended = self.policy.env_config.early_termination and bool(
            termination.ends_episode(self.terminated(), self.step_count, self.grace))
        if self.task is not None:
            self.task_state, _ = self._task_update(self._next_key(), self.task_state, self._view())
        self.ended = ended
        if auto_reset and ended:
            self.reset()

    def rollout(self, steps: int, z=None, auto_reset: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(qpos (steps, nq) of the whole scene, task marker (steps, 3)); the first row is the current state."""
        qpos, marker = [self.data.qpos.copy()], [self.marker()]
        for _ in range(steps - 1):
            self.step(z, auto_reset)
            qpos.append(self.data.qpos.copy())
            marker.append(self.marker())
        return np.stack(qpos), np.stack(marker)


# --- the command ---------------------------------------------------------------------------------


def _latent(spec: str, dim: int, seed: int) -> np.ndarray:
    from ase_jax.inference.latents import parse_latent

    return parse_latent(spec, dim, jax.random.PRNGKey(seed + 1))


def view(sim: Simulation, z, console: Console) -> None:
    """Real-time playback in MuJoCo's viewer with the key bindings of the module docstring."""
    import threading

    import mujoco.viewer

    if not render.has_display():
        raise render.RenderError("MuJoCo's viewer needs a display and none is set (DISPLAY); write a video with "
                                 "--video=out.mp4 instead")
    pressed, lock = [], threading.Lock()

    def on_key(keycode: int) -> None:
        with lock:
            pressed.append(keycode)

    dim = sim.policy.latent_dim
    tasky = sim.task is not None
    console.print("keys: " + ("T new target" if tasky else "R random latent, 0 latent e0, 3 latent e3"),
                  highlight=False)
    dt = sim.nsub * sim.model.opt.timestep
    presses = 0
    with mujoco.viewer.launch_passive(sim.model, sim.data, key_callback=on_key) as viewer:
        viewer.cam.type, viewer.cam.trackbodyid = mujoco.mjtCamera.mjCAMERA_TRACKING, 1
        while viewer.is_running():
            tick = time.perf_counter()
            with lock:
                keys, pressed[:] = list(pressed), []
            for key in keys:
                if tasky and key == KEY_TARGET:
                    sim.move_target()
                elif not tasky and dim and key in (KEY_RANDOM, KEY_E0, KEY_E3):  # plain AMP (dim 0): no latent
                    presses += 1
                    spec = {KEY_RANDOM: "random", KEY_E0: "e0", KEY_E3: "e3"}[key]
                    z = _latent(spec, dim, sim.seed + 1000 * presses)
                    console.print(f"latent {spec}", highlight=False)
            with viewer.lock():
                sim.step(z)
                viewer.user_scn.ngeom = 0
                render._add_marker(viewer.user_scn, sim.marker())
            viewer.sync()
            time.sleep(max(0.0, dt - (time.perf_counter() - tick)))


def play_in_mujoco(checkpoint, latent: str | None = None, seconds: float = 10.0, video=None, seed: int = 0,
         grid: int | None = None, interpolate: str | None = None, task: str | None = None,
         width: int = 640, height: int = 480, console: Console | None = None):
    """`play --engine=mujoco`: the policy of a run or an export folder in C MuJoCo; returns the video
    path, or None after the viewer."""
    from ase_jax.inference.latents import check_latent_spec

    console = console or Console()
    if grid is not None or interpolate is not None:
        raise AseInputError("--grid and --interpolate are not available with --engine=mujoco (one character, "
                            "one latent at a time); use --engine=jax")
    if not seconds > 0:
        raise AseInputError(f"--seconds must be positive, got {seconds}")
    if width < 16 or height < 16:
        raise AseInputError(f"--width and --height must be at least 16, got {width}x{height}")
    if latent is not None:
        check_latent_spec(latent)
    policy = load_policy(checkpoint, purpose=None)
    run_task = policy.task_name
    if run_task is not None and latent is not None:
        raise AseInputError(f"{checkpoint} is a task run: its high-level controller chooses the latents, so "
                            "--latent does not apply")
    if task is not None and task != run_task:
        raise AseInputError(f"--task={task}: {checkpoint} is " + (f"a run of task '{run_task}'" if run_task else
                                                                  "a pre-training run"))
    sim = Simulation(policy, seed)
    z = None if run_task is not None else _latent(latent or "random", policy.latent_dim, seed)
    rate = policy.meta["control"]["rate_hz"]
    steps = max(1, round(seconds * rate))
    console.print(f"{checkpoint} (checkpoint {policy.meta['source']['step']}): C MuJoCo "
                  f"{mujoco.__version__}, {'task ' + run_task if run_task else 'low-level policy'}, "
                  f"{steps} steps at {rate:g} Hz", highlight=False, soft_wrap=True)
    if video is None:
        view(sim, z, console)
        return None
    qpos, marker = sim.rollout(steps, z)
    frames = render.render_frames(sim.model, qpos, width=width, height=height,
                                  target=marker if run_task is not None else None)
    path = render.write_video(video, frames, rate)  # one frame per control step
    console.print(f"wrote {path} ({len(frames)} frames, {frames.shape[2]}x{frames.shape[1]}, {rate:g} fps)",
                  highlight=False, soft_wrap=True)
    return path
