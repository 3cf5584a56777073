"""Benchmarks; each prints one JSON line.

    python -m ase_jax.bench env   [--steps=K] [--config=NAME] [--key=value ...]
    python -m ase_jax.bench train [--iterations=K] [--config=NAME] [--key=value ...]

`env` prints: the device, compile times, env steps per second of our environment (physics
+ PD + observations + termination + auto-reset), and the same for a bare `mjx.step` loop doing the
same physics on the same model in the same process; `overhead` is how many times slower the
environment is than bare physics. Compile times are cold unless JAX's persistent cache is enabled
in the environment (JAX_COMPILATION_CACHE_DIR).

`train` prints the compile time of one full pre-training iteration (rollout + encoder,
discriminator and PPO updates), its env steps per second, and the share of the iteration spent in
the rollout (timed separately with the same state) versus the updates.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
from ase_jax.mjx_import import mjx

from ase_jax.character import load_character
from ase_jax.config import config_from_args
from ase_jax.env import HumanoidEnv
from ase_jax.errors import AseInputError
from ase_jax.motions.dataset import load_dataset
from ase_jax.motions.library import build_motion_lib


def _timed_compile(fn, *args):
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def _timed_run(compiled, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    return out, time.perf_counter() - start


def make_env(config) -> HumanoidEnv:
    character = load_character(config.character)
    lib = None
    if config.state_init != "default":
        lib = build_motion_lib(load_dataset(config.resolve_path(config.motions), character), character)
    return HumanoidEnv(config, character, lib)


def bench_env(config, steps: int) -> dict:
    env = make_env(config)
    n = config.num_envs
    keys = jax.random.split(jax.random.PRNGKey(config.seed), n)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (steps, n, env.action_size), minval=-0.5, maxval=0.5)

    reset, reset_compile_s = _timed_compile(jax.vmap(env.reset), keys)
    state, _ = _timed_run(reset, keys)

    def env_rollout(state, actions):
        state, done = jax.lax.scan(lambda s, a: (jax.vmap(env.step)(s, a), s.done), state, actions)
        return state, done.sum()

    def bare_rollout(data, actions):
        def control_step(d, a):
            d = d.replace(ctrl=env._pd_offset + env._pd_scale * a)
            step = jax.vmap(mjx.step, in_axes=(None, 0))
            return jax.lax.fori_loop(0, config.physics_steps_per_control_step,
                                     lambda _, x: step(env.mjx_model, x), d), None
        return jax.lax.scan(control_step, data, actions)[0]

    result = {"device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform,
              "jax": jax.__version__, "num_envs": n, "steps": steps,
              "physics_steps_per_control_step": config.physics_steps_per_control_step,
              "mjx_impl": config.mjx_impl, "reset_compile_s": round(reset_compile_s, 2)}
    for name, fn, start in (("env", env_rollout, state), ("bare_mjx_step", bare_rollout, state.data)):
        compiled, compile_s = _timed_compile(fn, start, actions)
        _timed_run(compiled, start, actions)  # warm-up
        out, run_s = _timed_run(compiled, start, actions)
        result[name] = {"compile_s": round(compile_s, 2), "run_s": round(run_s, 4),
                        "env_steps_per_s": round(n * steps / run_s, 1),
                        "physics_steps_per_s": round(n * steps * config.physics_steps_per_control_step / run_s, 1)}
        if name == "env":
            result[name]["episode_ends"] = int(out[1])
    result["overhead"] = round(result["bare_mjx_step"]["env_steps_per_s"] / result["env"]["env_steps_per_s"], 3)
    return result


def bench_train(config, iterations: int) -> dict:
    from ase_jax.agents.ase.train import make_train_fns

    env = make_env(config)
    fns = make_train_fns(config, env)
    state = fns.init(jax.random.PRNGKey(config.seed))
    jax.block_until_ready(state)
    start = time.perf_counter()
    state, _ = jax.block_until_ready(fns.step(state))
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(iterations):
        state, _ = fns.step(state)
    jax.block_until_ready(state)
    iteration_s = (time.perf_counter() - start) / iterations

    jax.block_until_ready(fns.rollout(state))  # compile
    start = time.perf_counter()
    for _ in range(iterations):
        jax.block_until_ready(fns.rollout(state))
    rollout_s = (time.perf_counter() - start) / iterations
    steps = config.num_envs * config.horizon
    return {"device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform,
            "num_devices": fns.num_devices, "jax": jax.__version__, "num_envs": config.num_envs,
            "horizon": config.horizon, "minibatch_size": config.minibatch_size, "mini_epochs": config.mini_epochs,
            "compile_s": round(first_s - iteration_s, 2), "iteration_s": round(iteration_s, 4),
            "env_steps_per_s": round(steps / iteration_s, 1),
            "rollout_share": round(rollout_s / iteration_s, 3), "update_share": round(1 - rollout_s / iteration_s, 3)}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("env", "train"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    steps, iterations = 100, 3
    flags = []
    for arg in rest:
        if arg.startswith("--steps="):
            steps = int(arg.split("=", 1)[1])
        elif arg.startswith("--iterations="):
            iterations = int(arg.split("=", 1)[1])
        else:
            flags.append(arg)
    try:
        config = config_from_args(flags)
        result = bench_env(config, steps) if command == "env" else bench_train(config, iterations)
    except AseInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
