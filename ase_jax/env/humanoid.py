"""The ASE humanoid environment: jittable reset and step over one MJX character.

Functions act on one environment; vmap them over many (`env.interface.vmap_envs(env.step)`), as in MuJoCo
Playground. One policy step holds the PD targets for `physics_steps_per_control_step` MuJoCo steps
(4 x 1/120 s = 1/30 s), then computes observations, termination and, for ended episodes, a fresh
initial state, all inside the same jitted function (docs/reference.md §3-4).

We do not use brax's AutoResetWrapper: it resets to the episode's first state, whereas ASE draws a
new initial state (reference, default, fallen or a get-up continuation) at every reset and needs
the observations from before the reset for bootstrapping and discriminator rewards.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from ase_jax.errors import AseInputError
from ase_jax.mjx_import import mjx, warp_available

from ase_jax.character import Character, character_spec
from ase_jax.config.sections import EnvConfig
from ase_jax.drive import make_drive
from ase_jax.env import observations as obs_lib
from ase_jax.env import termination
from ase_jax.env.interface import ENV_AXIS
from ase_jax.env.fall_states import make_fall_states
from ase_jax.motions import library as ml


@struct.dataclass
class EnvState:
    data: mjx.Data
    obs: jax.Array  # (253,) policy observation for the next action (after any reset)
    amp_obs: jax.Array  # (H, 140) discriminator history for the next step, newest first
    next_obs: jax.Array  # policy observation right after the last step, before any reset
    next_amp_obs: jax.Array  # (H, 140) history right after the last step, before any reset
    done: jax.Array  # the last step ended the episode (terminated or timed out)
    terminated: jax.Array  # ended by a fall or a non-finite state: do not bootstrap
    step_count: jax.Array  # control steps into the current episode
    recovery_count: jax.Array  # control steps left in which the episode cannot end (get-up)
    key: jax.Array
    metrics: dict
    reward: jax.Array  # task reward of the last step (0 without a task)
    task: dict  # the task's state (targets, timers); empty without a task


def body_velocities(model: mjx.Model, data: mjx.Data):
    """World linear velocity of each body's origin and its angular velocity, (nbody-1, 3) each.

    MuJoCo's cvel is a spatial velocity about the subtree centre of mass of the body's root;
    v(p) = v(c) + w x (p - c) moves it to the body origin (as mj_objectVelocity does).
    """
    ang = data.cvel[1:, :3]
    offset = data.xpos[1:] - data.subtree_com[jnp.asarray(model.body_rootid)[1:]]
    return data.cvel[1:, 3:] + jnp.cross(ang, offset), ang


def scene_model(config: EnvConfig, character: Character, task=None):
    """The C MuJoCo model of an env: the character with its self-collision setting, the task's props
    (e.g. the strike target: bodies after the character's) and the solver iterations. MJX steps it
    (`HumanoidEnv`); `ase_jax.inference.mujoco_player` steps it in plain C MuJoCo."""
    spec = character_spec(character, config.self_collision)
    if task is not None:
        task.add_props(spec)
    model = spec.compile()
    model.opt.iterations = config.solver_iterations
    model.opt.ls_iterations = config.solver_ls_iterations
    return model


def quiet_solver_iterations(mjx_model):
    """The Warp model without MuJoCo Warp's print at every step whose solver stops at its iteration
    limit: the reference's few solver iterations (`solver_iterations`) reach it by design. Its other
    overflow prints (contacts, constraints) stay, beside `HumanoidEnv.contact_overflow`."""
    from mujoco.mjx.third_party.mujoco_warp._src.types import OverflowType

    opt = mjx_model.opt
    quiet = int(opt._impl.warn_overflow) & ~int(OverflowType.ITERATIONS)
    return mjx_model.replace(opt=opt.replace(_impl=opt._impl.replace(warn_overflow=quiet)))


class HumanoidEnv:
    """ASE's humanoid with reference-state, default, hybrid and fall initialisation
    (an `ase_jax.env.interface.Env`). `seed` picks the fallen poses generated at start-up: `num_fall_states`
    of them, or `num_envs` (the number of envs that will run it) where that is 0, as the reference."""

    def __init__(self, config: EnvConfig, character: Character, motion_lib: ml.MotionLib | None = None, task=None,
                 seed: int = 0, num_envs: int | None = None):
        if config.state_init != "default" and motion_lib is None:
            raise AseInputError(f"state_init='{config.state_init}' starts episodes from motion data, and this env "
                                f"has none; use state_init=default")
        self.config = config
        self.character = character
        self.motion_lib = motion_lib
        self.task = task
        model = scene_model(config, character, task)
        self.mj_model = model
        if config.mjx_impl == "warp" and not warp_available():
            raise AseInputError("mjx_impl='warp' needs the packages mujoco-warp and warp-lang (NVIDIA GPU only)")
        # mjx's default device is jax.devices()[0]: process 0's in a multi-process run (ase_jax.distributed).
        self._device = jax.local_devices()[0] if jax.process_count() > 1 else None
        self.mjx_model = mjx.put_model(model, impl=config.mjx_impl, device=self._device)
        if config.mjx_impl == "warp":
            self.mjx_model = quiet_solver_iterations(self.mjx_model)
        self.control_dt = config.physics_steps_per_control_step * model.opt.timestep
        self.history = config.demo_history
        self.character_obs_size = obs_lib.policy_obs_size(character)
        self.obs_size = self.character_obs_size + (task.obs_size if task is not None else 0)
        self._nq, self._nv, self._nb = character.nq, character.nv, character.num_bodies
        self.amp_obs_size = obs_lib.amp_obs_size(character)
        self.action_size = character.num_actions

        # The reference's PD drive (P and D clamped together) and per-axis limits, on every physics step.
        self.drive = make_drive(character, config.pd_torque_limit)
        self._pd_offset = jnp.asarray(character.pd_offset, jnp.float32)
        self._pd_scale = jnp.asarray(character.pd_scale, jnp.float32)
        # The geom-to-body map, feet and termination heights of the fall test and task termination
        # (ase_jax.env.termination, shared with the C MuJoCo player).
        self.scene = termination.Scene.of(model, character)
        self._default_qpos = jnp.asarray(model.qpos0, jnp.float32)
        # Fallen poses (docs/reference.md §4.5), none where no episode starts fallen (playback, evaluation).
        self._fall_qpos = self._default_qpos[None, : self._nq]
        if config.fall_init_prob > 0:
            count = config.num_fall_states or num_envs
            if not count:
                raise AseInputError("num_fall_states=0 makes one fallen pose per env, and this env was built "
                                    "without its number of envs; give num_fall_states=N")
            self._fall_qpos = jnp.asarray(make_fall_states(
                character, count, seed, config.self_collision, config.pd_torque_limit), jnp.float32)
        # MJX's Warp back end builds its data from the MjModel, and each back end only steps its own data
        if config.mjx_impl == "warp":
            self._blank_data = self._warp_data(model, num_envs)
        else:
            self._blank_data = mjx.make_data(self.mjx_model, device=self._device, impl="jax")

    def _warp_data(self, model, num_envs: int | None) -> mjx.Data:
        """One env's blank Warp data, sized for a batch of `num_envs`: MuJoCo Warp keeps one contact
        list for all the envs of a vmapped call (`naconmax` slots; its per-world guess times the env
        count, or `warp_contacts_per_env` times it) and `njmax` constraint rows per env."""
        if not num_envs:
            raise AseInputError("mjx_impl='warp' sizes its contact list for the batch: build the env with its "
                                "number of envs (num_envs)")
        # MuJoCo Warp's guess for one world is what make_data allocates for a batch of one
        per_env = self.config.warp_contacts_per_env or mjx.make_data(model, impl="warp")._impl.naconmax
        return mjx.make_data(model, device=self._device, impl="warp", naconmax=per_env * num_envs,
                             njmax=self.config.warp_constraints_per_env or None)

    @staticmethod
    def world_index():
        """This env's index in its batch (`env.interface.vmap_envs`), or None outside one (a single
        env): the Warp back end's shared contact list tags each contact with it."""
        try:
            return jax.lax.axis_index(ENV_AXIS)
        except NameError:  # not inside vmap_envs: one env, every contact is its own
            return None

    def contacts(self, data: mjx.Data) -> termination.Contacts:
        """This env's contact list (`termination.mjx_contacts`)."""
        return termination.mjx_contacts(data, self.world_index())

    def contact_overflow(self, data: mjx.Data) -> jax.Array:
        """1.0 when the Warp back end found more contacts in the batch than it has slots, or more
        constraint rows in this env than `njmax` (the rest were dropped), else 0.0; always 0.0 with
        the JAX back end, whose contact list holds every candidate pair."""
        impl = data._impl
        if not hasattr(impl, "nacon"):
            return jnp.zeros((), jnp.float32)
        return jnp.any((impl.nacon > impl.naconmax) | (impl.nefc > impl.njmax)).astype(jnp.float32)

    def physics_step(self, data: mjx.Data, target: jax.Array) -> mjx.Data:
        """One MuJoCo step with the PD drive towards `target` (nu,) (ase_jax.drive)."""
        nu = self.action_size
        ctrl, applied, _ = self.drive.controls(data.qpos, data.qvel, target)
        data = data.replace(ctrl=ctrl, qfrc_applied=data.qfrc_applied.at[6: 6 + nu].set(applied))
        return mjx.step(self.mjx_model, data)

    def physics(self, data: mjx.Data, target: jax.Array) -> mjx.Data:
        """One control step of physics: `physics_steps_per_control_step` drive-and-step substeps."""
        return jax.lax.fori_loop(0, self.config.physics_steps_per_control_step,
                                 lambda _, d: self.physics_step(d, target), data)

    # --- observations and termination ---------------------------------------------------------

    def _observe(self, data: mjx.Data):
        """(humanoid policy observation, discriminator frame) of the character's part of the scene."""
        vel, ang_vel = body_velocities(self.mjx_model, data)
        b = slice(1, 1 + self._nb)
        policy = obs_lib.policy_obs(data.xpos[b], data.xquat[b], vel[: self._nb], ang_vel[: self._nb])
        frame = obs_lib.amp_obs_frame(data.qpos[: self._nq], data.qvel[: self._nv], data.xpos[b], self.character)
        return policy, frame

    def _full_obs(self, policy, task_state, data):
        if self.task is None:
            return policy
        return jnp.concatenate([policy, self.task.observe(task_state, data, self.character)])

    def body_contacts(self, data: mjx.Data) -> jax.Array:
        """(B,) whether each character body touches something (`termination.body_contacts` of MJX's
        contact list: penetration depth > 0 on any of its geoms)."""
        return termination.body_contacts(self.contacts(data), self.scene)

    def fall_contact(self, data: mjx.Data) -> jax.Array:
        """Whether a body other than the feet touches anything: the floor, a prop or, with
        self_collision, another part of the character (as the reference's contact forces)."""
        return termination.fall_contact(self.body_contacts(data), self.scene)

    def _has_fallen(self, data: mjx.Data) -> jax.Array:
        """docs/reference.md §4.3: a non-foot body touches something AND a non-foot body is below its height."""
        return termination.has_fallen(self.contacts(data), data.xpos[1: 1 + self._nb, 2], self.scene)

    # --- initial states -----------------------------------------------------------------------

    def _with_state(self, data: mjx.Data, qpos, qvel) -> mjx.Data:
        data = data.replace(qpos=qpos, qvel=qvel, qacc_warmstart=jnp.zeros_like(data.qacc_warmstart))
        return self._refresh_kinematics(data)

    def _refresh_kinematics(self, data: mjx.Data) -> mjx.Data:
        """Body poses (xpos, xquat) and velocities (cvel) of data's current qpos and qvel."""
        if self.config.mjx_impl == "warp":  # MJX's kinematics, com_pos and com_vel are JAX-only
            return mjx.forward(self.mjx_model, data)
        data = mjx.kinematics(self.mjx_model, data)
        data = mjx.com_pos(self.mjx_model, data)
        return mjx.com_vel(self.mjx_model, data)

    def _initial_state(self, key, data: mjx.Data, terminated, bad, history=None):
        """A fresh start for one env: (data, humanoid obs, amp history, recovery count), docs/reference.md §4.4-4.5.

        Only the character's coordinates are set here; props keep theirs until the task places them.
        A recovery episode continues from `data` and keeps its real discriminator `history` (the
        reference initialises the history only for default, fall and reference starts).
        """
        k_mode, k_fall, k_ref = jax.random.split(key, 3)
        u = jax.random.uniform(k_mode, (3,))
        recovery = terminated & ~bad & (u[0] < self.config.recovery_episode_prob)
        fall = ~recovery & (u[1] < self.config.fall_init_prob)
        nq, nv = self._nq, self._nv
        qpos = jnp.where(fall, self._fall_qpos[jax.random.randint(k_fall, (), 0, self._fall_qpos.shape[0])],
                         self._default_qpos[:nq])
        qvel = jnp.zeros(nv)
        use_ref = jnp.asarray(False)
        if self.motion_lib is not None and self.config.state_init != "default":
            ref_prob = self.config.hybrid_init_prob if self.config.state_init == "hybrid" else 1.0
            use_ref = ~recovery & ~fall & (u[2] < ref_prob)
            k_clip, k_time = jax.random.split(k_ref)
            clip = ml.sample_clips(self.motion_lib, k_clip)
            # start: the clip's first frame, as the reference's StateInit.Start (the history before it
            # holds the first frame, as the motion library clamps times to the clip)
            start = (jnp.zeros(()) if self.config.state_init == "start"
                     else ml.sample_times(self.motion_lib, k_time, clip))
            times = ml.history_times(start, self.history, self.control_dt)
            ref = ml.state_at(self.motion_lib, jnp.full(times.shape, clip), times)
            qpos = jnp.where(use_ref, ref.qpos[0], qpos)
            qvel = jnp.where(use_ref, ref.qvel[0], qvel)
        qpos = jnp.where(recovery, data.qpos[:nq], qpos)
        qvel = jnp.where(recovery, data.qvel[:nv], qvel)
        new = self._with_state(data, data.qpos.at[:nq].set(qpos), data.qvel.at[:nv].set(qvel))
        policy, frame = self._observe(new)
        init_history = jnp.broadcast_to(frame, (self.history, frame.shape[0]))
        if self.motion_lib is not None and self.config.state_init != "default":
            ref_history = jax.vmap(obs_lib.amp_obs_frame, in_axes=(0, 0, 0, None))(
                ref.qpos, ref.qvel, ref.body_pos, self.character)
            init_history = jnp.where(use_ref, ref_history, init_history)
        if history is not None:
            init_history = jnp.where(recovery, history, init_history)
        recovery_count = jnp.where(recovery | fall, self.config.recovery_steps, 0)
        return new, policy, init_history, recovery_count

    def _start_task(self, key, data: mjx.Data):
        """(task state, data with props placed) for a new episode."""
        if self.task is None:
            return {}, data
        task_state, data = self.task.reset(key, data, self.character)
        return task_state, self._with_state(data, data.qpos, data.qvel)

    # --- the API -------------------------------------------------------------------------------

    def reset(self, key: jax.Array) -> EnvState:
        key, k_init, k_task = jax.random.split(key, 3)
        blank = self._blank_data.replace(qpos=self._default_qpos)
        data, policy, history, recovery_count = self._initial_state(
            k_init, blank, jnp.asarray(False), jnp.asarray(False))
        task_state, data = self._start_task(k_task, data)
        obs = self._full_obs(policy, task_state, data)
        zero = jnp.zeros((), jnp.float32)
        return EnvState(data=data, obs=obs, amp_obs=history, next_obs=obs, next_amp_obs=history,
                        done=zero, terminated=zero, step_count=jnp.zeros((), jnp.int32),
                        recovery_count=jnp.asarray(recovery_count, jnp.int32), key=key,
                        metrics={"episode_length": zero, "nonfinite": zero,
                                 "contact_overflow": self.contact_overflow(data)},
                        reward=zero, task=task_state)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        bad_action = ~jnp.all(jnp.isfinite(action))
        action = jnp.where(bad_action, 0.0, jnp.clip(action, -1.0, 1.0))
        prev_root_pos = state.data.qpos[0:3]
        data = self.physics(state.data, self._pd_offset + self._pd_scale * action)
        # mjx.step computes body poses and velocities before it integrates, so they lag qpos/qvel by
        # one physics step; observations, termination and tasks read the state after the step, as
        # the reference does (and as the demo frames, computed from qpos, are). Contacts keep the
        # lag: termination and task contact checks see the state one physics step (8 ms) earlier.
        data = self._refresh_kinematics(data)
        policy, frame = self._observe(data)
        bad = bad_action | ~jnp.all(jnp.isfinite(data.qpos)) | ~jnp.all(jnp.isfinite(data.qvel)) \
            | ~jnp.all(jnp.isfinite(policy))
        history = jnp.where(bad, 0.0, jnp.concatenate([frame[None], state.amp_obs[:-1]], axis=0))

        key, k_init, k_task = jax.random.split(state.key, 3)
        step_count = state.step_count + 1
        # The reference counts a recovery step down before it checks for resets (docs/reference.md §4.5), so a
        # counter of recovery_steps protects recovery_steps - 1 steps.
        recovery_count = jnp.maximum(state.recovery_count - 1, 0)
        recovering = recovery_count > 0
        fallen = self._has_fallen(data) if self.config.early_termination else jnp.asarray(False)
        task_state, reward = state.task, jnp.zeros(())
        if self.task is not None:
            reward = self.task.reward(task_state, data, prev_root_pos, self.control_dt, self.character)
            if self.config.early_termination:
                fallen = fallen | self.task.terminated(task_state, data, self.contacts(data), self.scene)
            task_state, data = self.task.update(jax.random.fold_in(k_task, 1), task_state, data, self.character)
        terminated = termination.ends_episode(fallen, step_count, recovery_count) | bad
        timed_out = (step_count >= self.config.episode_length - 1) & ~recovering
        done = terminated | timed_out
        obs = jnp.where(bad, 0.0, self._full_obs(policy, task_state, data))
        reward = jnp.where(bad, 0.0, reward)

        init_data, init_policy, init_history, init_recovery = self._initial_state(k_init, data, terminated, bad, history)
        init_task, init_data = self._start_task(k_task, init_data)
        init_obs = self._full_obs(init_policy, init_task, init_data)
        pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(done, x, y), a, b)
        f32 = lambda x: jnp.asarray(x, jnp.float32)
        return EnvState(
            # Data.where: the Warp back end's data holds fields shared by the batch (its contact list)
            data=data.where(done, init_data),
            obs=pick(init_obs, obs),
            amp_obs=pick(init_history, history),
            next_obs=obs,
            next_amp_obs=history,
            done=f32(done),
            terminated=f32(terminated),
            step_count=jnp.where(done, 0, step_count).astype(jnp.int32),
            recovery_count=jnp.where(done, init_recovery, recovery_count).astype(jnp.int32),
            key=key,
            metrics={"episode_length": f32(jnp.where(done, step_count, 0)), "nonfinite": f32(bad),
                     "contact_overflow": self.contact_overflow(data)},
            reward=f32(reward),
            task=pick(init_task, task_state),
        )

    def demo_amp_obs(self, key: jax.Array, num: int) -> jax.Array:
        """(num, H, F) discriminator histories of demo motion, from the same function as the agent's."""
        states = ml.sample_demo_history(self.motion_lib, key, num, self.history, self.control_dt)
        frame = jax.vmap(jax.vmap(obs_lib.amp_obs_frame, in_axes=(0, 0, 0, None)), in_axes=(0, 0, 0, None))
        return frame(states.qpos, states.qvel, states.body_pos, self.character)
