#!/usr/bin/env bash
# Where the reference config's training iteration spends its time on a GPU (issue 32, item 1), in one
# device call of about 4 minutes for the default stages:
#
#   tools/gpu/time_split.sh OUT [--stages=split,bf16,precision,warp] [--dry-run]
#
# Stages, each one process writing JSON into OUT (the call's $OUT), in this order:
#   split      `bench all` at 4096 envs: bare jit(vmap(mjx.step)) and the env step (impl=jax), C MuJoCo
#              at 64 characters (serial per core: 4096 took over 300 s), the full iteration and the
#              env-only rollout (so the update's share), compile times, peak memory, and a profiler
#              trace of the iterations with its top operations (split.json, profile/)
#   bf16       one iteration with compute_dtype=bfloat16 (bf16.json)
#   precision  one iteration with float32 matmuls at full precision (JAX_DEFAULT_MATMUL_PRECISION=
#              highest; XLA's default may use TF32 on the GPU) (precision_highest.json)
#   warp       bare step, env step and one iteration with mjx_impl=warp, where warp-lang is
#              installed (tools/gpu/on_device.sh installs it once its carried parts are complete)
# Default stages: split,bf16 (each compile of the reference step is about 95 s on an H200).
# On the device: carry ["wheels", ".gl"] (and a warp part, see tools/gpu/prepare.sh --warp); the
# script sources tools/gpu/on_device.sh itself. --dry-run runs every stage at the tiny config on
# this CPU (4 envs): CI runs the split and bf16 stages (tests/test_time_split.py), a heavy test all.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?usage: tools/gpu/time_split.sh OUT [--stages=...] [--dry-run]}
shift
STAGES=split,bf16
DRY=0
for arg in "$@"; do
  case "$arg" in
    --stages=*) STAGES=${arg#--stages=} ;;
    --dry-run) DRY=1 ;;
    *) echo "time_split.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
if [ "$DRY" = 1 ]; then
  PY=${PYTHON:-python}
  SIZE=(--config=tiny --num_envs=4 --minibatch_size=16)
  ALL=(--sizes=4 --steps=2 --iterations=1 --tiny_compile=false --mujoco_c_envs=2 --cached_compile=false)
  TRAIN=(--iterations=1)
else
  # shellcheck source=/dev/null
  source tools/gpu/on_device.sh || exit 1
  PY=python3
  SIZE=(--config=default)
  ALL=(--sizes=4096 --steps=100 --iterations=3 --tiny_compile=false --mujoco_c_envs=64)
  TRAIN=(--iterations=3)
fi
status=0
stage() {  # stage NAME COMMAND...: runs it, its output into OUT/NAME.log, a line with its time
  local name=$1; shift
  local t0=$SECONDS
  "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "time_split: $name exit $rc after $((SECONDS - t0)) s ($OUT/$name.log)"
  [ $rc = 0 ] || { status=1; tail -n 5 "$OUT/$name.log"; }
}
has() { [[ ",$STAGES," == *",$1,"* ]]; }
has split && stage split $PY -m ase_jax.bench all "${SIZE[@]}" "${ALL[@]}" --profile="$OUT/profile" \
  --out="$OUT/split.json"
has bf16 && stage bf16 sh -c "$PY -m ase_jax.bench train ${SIZE[*]} ${TRAIN[*]} --compute_dtype=bfloat16 \
  > '$OUT/bf16.json'"
has precision && stage precision_highest sh -c "JAX_DEFAULT_MATMUL_PRECISION=highest $PY -m ase_jax.bench train \
  ${SIZE[*]} ${TRAIN[*]} > '$OUT/precision_highest.json'"
if has warp; then
  if $PY -c "import warp" 2>/dev/null; then
    stage warp_env sh -c "$PY -m ase_jax.bench env ${SIZE[*]} --mjx_impl=warp > '$OUT/warp_env.json'"
    stage warp_train sh -c "$PY -m ase_jax.bench train ${SIZE[*]} ${TRAIN[*]} --mjx_impl=warp > '$OUT/warp_train.json'"
  else
    echo "time_split: warp skipped: warp-lang is not installed here (tools/gpu/prepare.sh --warp)"
  fi
fi
exit $status
