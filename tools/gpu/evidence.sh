#!/usr/bin/env bash
# The GPU evidence in one run: a pre-training of the reference config (4096 characters, the
# reference's networks and hyperparameters, the Reallusion clips) as far towards the reference's
# first skill signal (2.6e7 samples: enc reward 0.218, episode length 51; docs/reference.md) as one
# call of at most 10 minutes reaches, on an offline machine, leaving at most 8 small files in OUTDIR.
#
#   tools/gpu/evidence.sh OUTDIR            on the GPU machine (see below)
#   tools/gpu/evidence.sh OUTDIR --dry-run  every stage at tiny sizes on a CPU (tested in CI)
#
# Throughput needed: 2.6e7 samples in the ~7 minutes of training left after setup and compiles is
# about 62,000 samples/s (the reference's Isaac Gym run did 32,000/s). Slower, the run stops at its
# time box and its curve ends earlier; every figure is indexed by samples.
#
# On the `device` tool's machine: run tools/gpu/prepare.sh here first, then one call of
#   run(command="tools/gpu/evidence.sh $OUT", carry=["wheels", "ref_data", ".gl"], timeout_s=595)
# and hand the machine back. Each stage has its own time limit; what a stage printed is in
# evidence.log, and a stage that failed or ran out of time says so there and in the summary.
# On the GPU the pre-training writes straight into OUTDIR, so its rows come back even if the call
# is cut short. The throughput/compile/memory benchmark (`bench all`), the e0/e3 video and the
# diversity histogram run only in the dry run and with --all: on a first lease every second goes
# to samples.
#
# OUTDIR receives:
#   evidence.log   every stage's output, the stage times and the summary
#   learn.json     the pre-training (bench learn's rows and summary, compile time, samples/s,
#                  peak device memory)
#   metrics.jsonl  its rows, a line per evaluation (written as it goes)
#   curves.png     its curves (disc reward and accuracy, diversity loss, encoder similarity,
#                  survival, pose error)
#   grid.mp4       four random latents, 2 x 2, at the end (.gif where no ffmpeg is found)
#   with --all or --dry-run also:
#   bench_all.json `python -m ase_jax.bench all`: env step, training iteration, compile, memory
#   e0_e3.mp4      the latents e0 and e3, side by side
#   diversity.png  the nearest-clip histogram of random latents
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?usage: tools/gpu/evidence.sh OUTDIR [--dry-run]}
DRY=${2:-}
ALL=0
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/evidence.log"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ase_jax_evidence.XXXXXX")
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }

if [ "$DRY" = "--dry-run" ]; then
  # Tiny sizes on whatever Python runs here (the project installed); the motions bundled with the
  # repository stand in for the Reallusion clips.
  PY=${PYTHON:-python}
  MOTIONS=motions/bundled/dataset.yaml
  BENCH=(--sizes=4 --steps=5 --iterations=1 --tiny_compile=false --config=tiny)
  LEARN=(--config=tiny --samples=64 --eval_every=1 --eval_envs=4 --eval_seconds=0.5 --minutes=3)
  PLAY=(--seconds=0.5 --width=64 --height=48)
  DIVERSITY=(--num_latents=2 --seconds=0.5)
  LIMITS=(600 600 300 300)
  ALL=1
elif [ -n "$DRY" ] && [ "$DRY" != "--all" ]; then
  echo "unknown option '$DRY' (expected --dry-run or --all)" >&2
  exit 1
else
  # shellcheck source=/dev/null
  source tools/gpu/on_device.sh >> "$LOG" 2>&1 || { say "tools/gpu/on_device.sh failed (carry wheels, ref_data, .gl)"; exit 1; }
  PY=python3
  MOTIONS=$REALLUSION
  [ -f "$MOTIONS" ] || { say "no Reallusion dataset at $MOTIONS (run tools/gpu/prepare.sh here and carry ref_data)"; exit 1; }
  [ "$DRY" = "--all" ] && ALL=1
  BENCH=(--sizes=4096 --steps=100 --iterations=2)
  # 4096 envs with the reference's networks, 400 iterations at most; the time box (compiles
  # included) stops it first unless the GPU does over ~100,000 samples/s.
  LEARN=(--config=reallusion --samples=52428800 --eval_every=20 --eval_envs=64 --eval_seconds=5)
  PLAY=(--seconds=6 --width=256 --height=192)
  DIVERSITY=(--num_latents=64 --seconds=5)
  if [ "$ALL" = 1 ]; then
    LEARN+=(--minutes=3); LIMITS=(195 240 45 30)
  else
    LEARN+=(--minutes=7.6); LIMITS=(0 520 0 0)
  fi
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}

STATUS=()
stage() {  # stage NAME LIMIT_S COMMAND...: runs it with a time limit, output into the log
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  say "=== $name (limit ${limit} s): $*"
  timeout --kill-after=10 "$limit" "$@" >> "$LOG" 2>&1
  local rc=$?
  local took=$((SECONDS - start))
  case $rc in
    0) STATUS+=("$name: ok in ${took} s") ;;
    124|137) STATUS+=("$name: ran out of its ${limit} s") ;;
    *) STATUS+=("$name: failed (exit $rc) after ${took} s") ;;
  esac
  say "=== $name: exit $rc after ${took} s"
}

if [ "$ALL" = 1 ]; then
  stage "bench all" "${LIMITS[0]}" "$PY" -m ase_jax.bench all "${BENCH[@]}" --out="$OUT/bench_all.json"
  LEARN_OUT="$WORK/learn"; LEARN+=(--checkpoint=true)
else
  LEARN_OUT="$OUT"  # rows land here as they are written, even if the call is cut short
fi
stage "pre-training (bench learn)" "${LIMITS[1]}" "$PY" -m ase_jax.bench learn "${LEARN[@]}" \
  --motions="$MOTIONS" --out="$LEARN_OUT"
if [ "$LEARN_OUT" != "$OUT" ]; then
  for f in learn.json metrics.jsonl curves.png grid.mp4 grid.gif; do
    [ -f "$LEARN_OUT/$f" ] && cp "$LEARN_OUT/$f" "$OUT/"
  done
fi
if [ "$ALL" = 1 ] && [ -d "$WORK/learn/checkpoints" ]; then
  stage "videos e0, e3" "${LIMITS[2]}" "$PY" - "$WORK/learn" "$OUT/e0_e3" "${PLAY[@]}" <<'EOF'
import sys
import numpy as np
from rich.console import Console
from ase_jax import play, render
run, out, flags = sys.argv[1], sys.argv[2], dict(a[2:].split("=", 1) for a in sys.argv[3:])
seconds, width, height = float(flags["seconds"]), int(flags["width"]), int(flags["height"])
pretrained, _, _ = play.load(run)
dim = pretrained.config.ase.latent_dim
steps = max(1, round(seconds * play.VIDEO_FPS))
latents = np.stack([np.broadcast_to(np.eye(dim)[k], (steps, dim)) for k in (0, 3)])
qpos = play.rollout(run, latents)  # both latents in one batched rollout, one compile
tiles = [render.render_frames(pretrained.env.mj_model, q, width=width, height=height) for q in qpos]
path = render.write_video(out + render.video_suffix(), render.grid(tiles, 2), play.VIDEO_FPS)
print(f"wrote {path}")
EOF
  stage "diversity" "${LIMITS[3]}" "$PY" -m ase_jax.evaluate diversity --checkpoint="$WORK/learn" \
    --motions="$MOTIONS" "${DIVERSITY[@]}" --out="$WORK/learn"
  [ -f "$WORK/learn/diversity.png" ] && cp "$WORK/learn/diversity.png" "$OUT/"
  if [ -f "$WORK/learn/diversity.json" ] && [ -f "$OUT/learn.json" ]; then
    "$PY" - "$OUT/learn.json" "$WORK/learn/diversity.json" <<'EOF'
import json, sys
learn = json.load(open(sys.argv[1]))
learn["diversity"] = json.load(open(sys.argv[2]))
json.dump(learn, open(sys.argv[1], "w"), indent=2)
EOF
  fi
elif [ "$ALL" = 1 ]; then
  STATUS+=("videos, diversity: skipped (no checkpoint from the pre-training stage)")
fi
rm -rf "$WORK"

say "=== summary"
for line in "${STATUS[@]}"; do say "$line"; done
# The device tool brings back files of at most 16 MiB: a larger one would be lost, so say so here.
find "$OUT" -type f -size +16M -exec sh -c 'echo "too large to come back: $1" | tee -a "$2"' _ {} "$LOG" \;
say "files: $(ls "$OUT" | tr '\n' ' ')"
FAILED=0
for line in "${STATUS[@]}"; do case $line in *ok\ in*) ;; *) FAILED=1 ;; esac; done
exit $FAILED
