"""Benchmarks; `env` and `train` print one JSON line, `all` a table (and JSON with --out).

    python -m ase_jax.bench env   [--steps=K] [--config=NAME] [--key=value ...]
    python -m ase_jax.bench train [--iterations=K] [--profile=DIR] [--config=NAME] [--key=value ...]
    python -m ase_jax.bench all   [--sizes=16,64] [--steps=K] [--out=FILE.json] [--compare=OLD.json] [--key=value ...]
    python -m ase_jax.bench plan  [--sizes=1024,2048,4096] [--direct] [--out=FILE.json] [--config=NAME] [--key=value ...]
    python -m ase_jax.bench learn [--out=DIR] [--ablation=no_sd] [...]   (see ase_jax/bench_learn.py)

`python -m ase_jax.bench SUBCOMMAND --help` lists a subcommand's options; `--key=value` are keys of
the pre-training config (`python -m ase_jax.pretrain --help`).

`all` measures, in one process and on the same model, for each env count: C MuJoCo on the CPU
(`mujoco.rollout`, all cores) doing the same physics, bare `mjx.step`, our env step, and one full
pre-training iteration (rollout vs update share); compile times cold and from JAX's persistent
cache (and the same for the tiny config's training iteration, the one tests compile); and peak
memory. Default sizes: 16, 64 on a CPU; 1024, 4096, 16384 on a GPU.

`env` prints: the device, compile times, env steps per second of our environment (physics
+ PD + observations + termination + auto-reset), and the same for a bare `mjx.step` loop doing the
same physics on the same model in the same process; `overhead` is how many times slower the
environment is than bare physics. Compile times are cold unless JAX's persistent cache is enabled
in the environment (JAX_COMPILATION_CACHE_DIR).

`plan` prints, per env count, the device memory the training step needs (per device) and the FLOPs
and bytes it moves per iteration, from XLA's analysis of the step compiled for abstract inputs
(nothing is allocated or run; ase_jax/plan.py): two small probe counts are compiled and the others
extrapolated linearly, or, with `--direct`, compiled each. Where the device reports its free memory
(a GPU) it adds the largest num_envs that fits, the check `pretrain` makes before compiling.

`train` prints the compile time of one full pre-training iteration (rollout + encoder,
discriminator and PPO updates), its env steps per second, and the share of the iteration spent in
the rollout (timed separately with the same state) versus the updates. With `--profile=DIR` it
also records a jax profiler trace of `--iterations` steady iterations into DIR (open it in Perfetto
or TensorBoard) and lists the operations that took the most time (`top_ops`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# jaxlib 0.9 logs two ERROR lines ("machine feature +prefer-no-gather ... could lead to SIGILL") for
# each CPU program it loads from the persistent cache that `bench all` fills: harmless (the flags
# are tuning hints written by this same machine) but over a hundred alarming lines. Quiet XLA's C++
# logging for the benchmark unless the user chose a level.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax
import numpy as np
from ase_jax.mjx_import import mjx

from ase_jax import cli
from ase_jax.config import load_config
from ase_jax.config.flags import config_from_args
from ase_jax.env.interface import vmap_envs
from ase_jax.env_factory import make_env
from ase_jax.errors import AseInputError
from ase_jax.profiling import peak_memory


def _timed_compile(fn, *args):
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def _timed_run(compiled, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    return out, time.perf_counter() - start


def bench_env(config, steps: int, cached_compile: bool = False) -> dict:
    """Env vs bare physics; with `cached_compile`, the env program is compiled a second time after
    dropping jax's in-memory caches, i.e. from the persistent cache when one is enabled."""
    env = make_env(config, "benchmark")
    n = config.ppo.num_envs
    keys = jax.random.split(jax.random.PRNGKey(config.run.seed), n)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (steps, n, env.action_size), minval=-0.5, maxval=0.5)

    reset, reset_compile_s = _timed_compile(vmap_envs(env.reset), keys)
    state, _ = _timed_run(reset, keys)

    def env_rollout(state, actions):
        state, done = jax.lax.scan(lambda s, a: (vmap_envs(env.step)(s, a), s.done), state, actions)
        return state, done.sum()

    def bare_rollout(data, actions):  # the physics alone: fixed servo targets, no PD drive
        def control_step(d, a):
            d = d.replace(ctrl=env._pd_offset + env._pd_scale * a)
            step = jax.vmap(mjx.step, in_axes=(None, 0))
            return jax.lax.fori_loop(0, config.env.physics_steps_per_control_step,
                                     lambda _, x: step(env.mjx_model, x), d), None
        return jax.lax.scan(control_step, data, actions)[0]

    result = {"device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform,
              "jax": jax.__version__, "num_envs": n, "steps": steps,
              "physics_steps_per_control_step": config.env.physics_steps_per_control_step,
              "mjx_impl": config.env.mjx_impl, "reset_compile_s": round(reset_compile_s, 2)}
    for name, fn, start in (("env", env_rollout, state), ("bare_mjx_step", bare_rollout, state.data)):
        compiled, compile_s = _timed_compile(fn, start, actions)
        _timed_run(compiled, start, actions)  # warm-up
        out, run_s = _timed_run(compiled, start, actions)
        result[name] = {"compile_s": round(compile_s, 2), "run_s": round(run_s, 4),
                        "env_steps_per_s": round(n * steps / run_s, 1),
                        "physics_steps_per_s": round(n * steps * config.env.physics_steps_per_control_step / run_s, 1)}
        if name == "env":
            result[name]["episode_ends"] = int(out[1])
            if cached_compile:
                jax.clear_caches()
                result[name]["cached_compile_s"] = round(_timed_compile(fn, start, actions)[1], 2)
    result["overhead"] = round(result["bare_mjx_step"]["env_steps_per_s"] / result["env"]["env_steps_per_s"], 3)
    return result


def bench_train(config, iterations: int, profile_dir: str | None = None, rollout_share: bool = True) -> dict:
    from ase_jax.agents.ase.train import make_train_fns

    env = make_env(config, "benchmark")
    fns = make_train_fns(config, env)
    state = fns.init(jax.random.PRNGKey(config.run.seed))
    jax.block_until_ready(state)
    start = time.perf_counter()
    state, _ = jax.block_until_ready(fns.step(state))
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(iterations):
        state, _ = fns.step(state)
    jax.block_until_ready(state)
    iteration_s = (time.perf_counter() - start) / iterations
    steps = config.ppo.num_envs * config.ppo.horizon
    result = {"device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform,
              "num_devices": fns.num_devices, "jax": jax.__version__, "num_envs": config.ppo.num_envs,
              "horizon": config.ppo.horizon, "minibatch_size": config.ppo.minibatch_size, "mini_epochs": config.ppo.mini_epochs,
              "mjx_impl": config.env.mjx_impl, "compute_dtype": config.ppo.compute_dtype,
              "matmul_precision": jax.config.jax_default_matmul_precision or "default",
              "compile_s": round(first_s - iteration_s, 2), "iteration_s": round(iteration_s, 4),
              "env_steps_per_s": round(steps / iteration_s, 1)}
    if profile_dir:
        from ase_jax import profiling
        with jax.profiler.trace(profile_dir, create_perfetto_trace=True):
            for _ in range(iterations):
                state, _ = fns.step(state)
            jax.block_until_ready(state)
        result["profile_dir"] = str(profile_dir)
        times = profiling.op_times(profile_dir)
        result["top_op_kinds"] = profiling.top_ops(times, by_kind=True)
        result["top_ops"] = profiling.top_ops(times)
    if not rollout_share:
        return result

    jax.block_until_ready(fns.rollout(state))  # compile
    start = time.perf_counter()
    for _ in range(iterations):
        jax.block_until_ready(fns.rollout(state))
    rollout_s = (time.perf_counter() - start) / iterations
    result.update(rollout_share=round(rollout_s / iteration_s, 3), update_share=round(1 - rollout_s / iteration_s, 3))
    return result


def bench_mujoco_rollout(config, num_envs: int, steps: int) -> dict:
    """C MuJoCo, multi-threaded `mujoco.rollout`, same model and physics steps as the env, with fixed
    controls: the physics alone (the env's PD drive, ase_jax.drive, sets controls between physics
    steps, which an open-loop rollout cannot; `mjx.step` below is timed the same way)."""
    import mujoco
    from mujoco import rollout

    env = make_env(config, "inspect")
    env_model = env.mj_model
    threads = os.cpu_count() or 1
    datas = [mujoco.MjData(env_model) for _ in range(threads)]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state0 = np.zeros(mujoco.mj_stateSize(env_model, spec))
    mujoco.mj_getState(env_model, datas[0], state0, spec)
    physics = steps * config.env.physics_steps_per_control_step
    rng = np.random.default_rng(0)
    character = env.character
    ctrl = character.pd_offset + character.pd_scale * rng.uniform(-0.5, 0.5, (num_envs, steps, env_model.nu))
    ctrl = np.repeat(ctrl, config.env.physics_steps_per_control_step, axis=1)
    start = time.perf_counter()
    rollout.rollout(env_model, datas, np.repeat(state0[None], num_envs, 0), ctrl)
    run_s = time.perf_counter() - start
    return {"threads": threads, "run_s": round(run_s, 4), "env_steps_per_s": round(num_envs * steps / run_s, 1),
            "physics_steps_per_s": round(num_envs * physics / run_s, 1)}


def bench_tiny_compile() -> dict:
    """Compile time of the tiny config's training iteration (the one tests and CI compile): cold, then
    again from the persistent cache after dropping jax's in-memory caches."""
    tiny = load_config("tiny", {})
    cold = bench_train(tiny, 1, rollout_share=False)["compile_s"]
    jax.clear_caches()
    cached = bench_train(tiny, 1, rollout_share=False)["compile_s"]
    return {"train_step_cold_compile_s": cold, "train_step_cached_compile_s": cached}


def bench_all(config, sizes, steps: int, iterations: int, tiny_compile: bool = True,
              mujoco_c_envs: int | None = None, profile_dir: str | None = None, cached_compile: bool = True) -> dict:
    """Everything, per env count, in one process; expects JAX's persistent cache to be enabled.
    C MuJoCo steps `mujoco_c_envs` characters (at most the row's count) where given: it is serial per
    core, and its steps/s per core do not depend on the count (4096 took over 300 s on a GPU machine)."""
    results = {"device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform,
               "num_devices": jax.local_device_count(), "jax": jax.__version__, "steps": steps,
               "mjx_impl": config.env.mjx_impl, "compute_dtype": config.ppo.compute_dtype,
               "tiny": bench_tiny_compile() if tiny_compile else {}, "sizes": {}}
    for n in sizes:
        minibatch = max(1, n * config.ppo.horizon // 4)
        sized = config.replace(num_envs=n, minibatch_size=minibatch,
                               amp_minibatch_size=min(config.ase.amp_minibatch_size, minibatch))
        c_envs = min(n, mujoco_c_envs or n)
        row = {"mujoco_c": dict(bench_mujoco_rollout(sized, c_envs, steps), num_envs=c_envs)}
        row.update(bench_env(sized, steps, cached_compile=cached_compile))
        row["train"] = bench_train(sized, iterations, f"{profile_dir}/{n}" if profile_dir else None)
        row.update(peak_memory())
        results["sizes"][str(n)] = row
    return results


def _print_table(results: dict, old: dict | None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ase_jax bench all: {results['device']} ({results['platform']}), jax {results['jax']}")
    columns = [("envs", None), ("C MuJoCo steps/s", ("mujoco_c", "env_steps_per_s")),
               ("bare mjx steps/s", ("bare_mjx_step", "env_steps_per_s")), ("env steps/s", ("env", "env_steps_per_s")),
               ("env overhead", ("overhead",)), ("train steps/s", ("train", "env_steps_per_s")),
               ("rollout share", ("train", "rollout_share")), ("env compile s", ("env", "compile_s")),
               ("cached compile s", ("env", "cached_compile_s")), ("train compile s", ("train", "compile_s"))]
    for name, _ in columns:
        table.add_column(name, justify="right")

    def get(row, path):
        for key in path:
            row = row.get(key, {}) if isinstance(row, dict) else {}
        return row if isinstance(row, (int, float)) else None

    for n, row in results["sizes"].items():
        cells = [n]
        for _, path in columns[1:]:
            value = get(row, path)
            text = "-" if value is None else f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
            if old and value is not None and get(old.get("sizes", {}).get(n, {}), path):
                text += f" ({value / get(old['sizes'][n], path):.2f}x)"
            cells.append(text)
        table.add_row(*cells)
    console = Console(width=200)
    console.print(table)
    tiny = results.get("tiny", {})
    if tiny:
        console.print(f"tiny config, training iteration compile: cold {tiny['train_step_cold_compile_s']:.1f} s, "
                      f"from the persistent cache {tiny['train_step_cached_compile_s']:.1f} s")


def _print_plan(rows, line, free_bytes, unit: int, config) -> None:
    from rich.console import Console
    from rich.table import Table

    from ase_jax.plan import GIB

    device = jax.devices()[0]
    table = Table(title=f"ase_jax bench plan: {device.device_kind} ({device.platform}), jax {jax.__version__}, "
                        f"horizon {config.ppo.horizon}, minibatch {config.ppo.minibatch_size}")
    for name in ("envs", "how", "state (arguments)", "temporaries", "needed per device", "GFLOP per iteration",
                 "GB accessed per iteration"):
        table.add_column(name, justify="right")
    size = lambda b: f"{b / GIB:.3f} GiB" if b >= GIB else f"{b / 2**20:.2f} MiB"
    for row in rows:
        table.add_row(f"{row.num_envs:,}", row.method, size(row.argument_bytes), size(row.temp_bytes),
                      size(row.needed_bytes),
                      f"{row.flops / 1e9:,.1f}", f"{row.bytes_accessed / 1e9:,.1f}")
    console = Console(width=200)
    console.print(table)
    console.print(f"line through the probes ({line.low.num_envs}, {line.high.num_envs} envs, compiled): "
                  f"{line.fixed_bytes / GIB:.3f} GiB + {line.bytes_per_env / 2**20:.3f} MiB per env; "
                  "FLOPs and bytes are XLA's static count, each loop body (rollout step, minibatch) counted once",
                  highlight=False)
    if free_bytes is None:
        console.print(f"{device.platform}: no device memory statistics (nothing to check the plan against)",
                      highlight=False)
    else:
        console.print(f"free device memory: {free_bytes / GIB:.2f} GiB; the largest num_envs that fits: "
                      f"{line.largest_fitting(free_bytes, unit):,}", highlight=False)


CONFIG_NOTE = ("Any key of the pre-training config is accepted too: --config=NAME and --key=VALUE (see python -m "
               "ase_jax.pretrain --help).")


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="python -m ase_jax.bench", description=__doc__)
    sub = cli.subcommands(parser)
    env = cli.add_subcommand(sub, "env", "env steps/s of our environment vs a bare mjx.step loop (one JSON line)",
                             epilog=CONFIG_NOTE)
    env.add_argument("--steps", type=cli.positive_int, default=100, help="env steps timed (default 100)")
    train = cli.add_subcommand(sub, "train", "one full pre-training iteration: compile time, steps/s, rollout "
                               "share (one JSON line)", epilog=CONFIG_NOTE)
    train.add_argument("--iterations", type=cli.positive_int, default=3, help="iterations timed (default 3)")
    train.add_argument("--profile", default=None, metavar="DIR",
                       help="also record a jax profiler trace into DIR and list the top operations")
    every = cli.add_subcommand(sub, "all", "C MuJoCo, bare mjx, env and training for each env count: a table "
                               "(and JSON with --out)", epilog=CONFIG_NOTE)
    every.add_argument("--sizes", type=cli.int_list, default=None,
                       help="env counts, e.g. 16,64 (default: 16,64 on a CPU; 1024,4096,16384 on a GPU)")
    every.add_argument("--steps", type=cli.positive_int, default=100, help="env steps timed (default 100)")
    every.add_argument("--iterations", type=cli.positive_int, default=2,
                       help="training iterations timed (default 2)")
    every.add_argument("--mujoco_c_envs", type=cli.positive_int, default=None,
                       help="characters C MuJoCo steps in each row (default: the row's count, 64 on a GPU: "
                            "C MuJoCo is serial per core and its steps/s do not grow with the count)")
    every.add_argument("--cached_compile", type=cli.boolean, default=True,
                       help="also time the env step's compile from the persistent cache (default true; one more "
                            "compile per row)")
    every.add_argument("--profile", default=None, metavar="DIR",
                       help="also record a jax profiler trace of the training iterations into DIR/<envs> and "
                            "list each row's top operations")
    every.add_argument("--out", default=None, metavar="FILE.json", help="write the results as JSON here")
    every.add_argument("--compare", default=None, metavar="OLD.json", help="show the ratios to an earlier --out")
    every.add_argument("--tiny_compile", type=cli.boolean, default=True,
                       help="also time the tiny config's training-step compile, cold and cached (default true; "
                            "four more compiles)")
    plan = cli.add_subcommand(sub, "plan", "device memory, FLOPs and bytes of the training step per env count, "
                              "from XLA's analysis of the compiled step (a table)", epilog=CONFIG_NOTE)
    plan.add_argument("--sizes", type=cli.int_list, default=None,
                      help="env counts, e.g. 1024,2048,4096 (default: the config's num_envs)")
    plan.add_argument("--direct", type=cli.boolean, nargs="?", const=True, default=False,
                      help="compile each count instead of extrapolating from the two probes (one compile each)")
    plan.add_argument("--out", default=None, metavar="FILE.json", help="write the rows as JSON here")
    cli.add_subcommand(sub, "learn", "the learning protocol (ase_jax/bench_learn.py; python -m ase_jax.bench "
                       "learn --help lists its options)")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "learn":  # the learning protocol has a module (and flags) of its own
        from ase_jax import bench_learn

        return bench_learn.main(argv[1:])
    parsed = cli.parse(build_parser(), argv, known=True)  # the flags left over are config keys
    if isinstance(parsed, int):
        return parsed
    args, flags = parsed
    try:
        config = config_from_args(flags)
        if args.command == "all":
            sizes = args.sizes
            if sizes is None:
                sizes = [16, 64] if jax.devices()[0].platform == "cpu" else [1024, 4096, 16384]
            try:
                old = json.loads(Path(args.compare).read_text()) if args.compare else None
            except (OSError, json.JSONDecodeError) as e:
                raise AseInputError(f"--compare={args.compare}: {e}") from None
            cache_dir = tempfile.mkdtemp(prefix="ase_jax_bench_cache_")
            jax.config.update("jax_compilation_cache_dir", cache_dir)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            mujoco_c_envs = args.mujoco_c_envs or (None if jax.devices()[0].platform == "cpu" else 64)
            result = bench_all(config, list(sizes), args.steps, args.iterations, args.tiny_compile, mujoco_c_envs,
                               args.profile, args.cached_compile)
            _print_table(result, old)
            if args.out:
                Path(args.out).write_text(json.dumps(result, indent=2))
            return 0
        if args.command == "plan":
            from ase_jax import plan
            from ase_jax.training_setup import compiled_train_fns

            env = compiled_train_fns(config)[0]  # the env pretrain would build (cached per config)
            rows, line = plan.plan(config, env, list(args.sizes or [config.ppo.num_envs]), direct=args.direct)
            free = plan.free_device_memory()
            _print_plan(rows, line, free, plan.env_count_unit(config), config)
            if args.out:
                Path(args.out).write_text(json.dumps({
                    "device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform,
                    "jax": jax.__version__, "free_device_bytes": free,
                    "rows": [{**dataclasses.asdict(r), "needed_bytes": r.needed_bytes} for r in rows],
                    "fixed_bytes": line.fixed_bytes, "bytes_per_env": line.bytes_per_env}, indent=2))
            return 0
        if args.command == "env":
            result = bench_env(config, args.steps)
        else:
            result = bench_train(config, args.iterations, profile_dir=args.profile)
    except AseInputError as e:
        return cli.error(e)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
