"""How XLA's GPU flags change the compile time and the iteration time of the reference training step.

Run THERE (the `device` tool's GPU machine), after `source tools/gpu/on_device.sh`:
    python3 tools/gpu/compile_flags.py OUT.json [SECONDS_PER_VARIANT] [SECONDS_IN_ALL]
Each variant runs in its own process (XLA reads its flags once), without the persistent cache:
build the reference config (4096 envs, Reallusion clips), compile the training step (lower +
compile, timed), then three iterations (timed). Written to OUT.json after each variant.
"""
import json
import os
import subprocess
import sys
import time

# In order of interest: on_device.sh's flags were timed already (BENCHMARKS.md: 125 s compile).
VARIANTS = {
    "triton_gemm_any, autotune 0": "--xla_gpu_triton_gemm_any=true --xla_gpu_autotune_level=0",
    "XLA's defaults": "",
    "triton_gemm_any (on_device.sh's)": "--xla_gpu_triton_gemm_any=true",
}

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import jax
from ase_jax.config import load_config
from ase_jax.training_setup import compiled_train_fns
config = load_config("reallusion", {"motions": sys.argv[1]})
_, _, fns = compiled_train_fns(config)
state = fns.init(jax.random.PRNGKey(0))
jax.block_until_ready(state)
built = time.perf_counter() - t0
t = time.perf_counter()
compiled = fns.step.lower(state).compile()
compile_s = time.perf_counter() - t
times = []
for _ in range(3):
    t = time.perf_counter()
    state, metrics = compiled(state)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t)
samples = config.ppo.num_envs * config.ppo.horizon
print(json.dumps({"build_s": built, "compile_s": compile_s, "iteration_s": times,
                  "samples_per_s": samples / min(times[1:])}))
"""


def main():
    out, limit = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 240
    deadline = time.perf_counter() + (float(sys.argv[3]) if len(sys.argv) > 3 else 3 * limit)
    results = {}
    base = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", "XLA_FLAGS")}
    for name, flags in VARIANTS.items():
        t = time.perf_counter()
        if deadline - t < 60:
            break
        try:
            proc = subprocess.run([sys.executable, "-c", CHILD, os.environ["REALLUSION"]], env=dict(base, XLA_FLAGS=flags),
                                  capture_output=True, text=True, timeout=min(limit, deadline - t))
            line = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else None
            results[name] = {"xla_flags": flags, **(json.loads(line) if line else {"error": proc.stderr[-1500:]})}
        except subprocess.TimeoutExpired:
            results[name] = {"xla_flags": flags, "error": f"over {min(limit, deadline - t):.0f} s"}
        results[name]["wall_s"] = time.perf_counter() - t
        print(name, results[name], flush=True)
        with open(out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
