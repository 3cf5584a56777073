#!/usr/bin/env bash
# The GPU evidence in one run: everything BENCHMARKS.md reports from a GPU, taken in a single call
# of at most 9 minutes on an offline machine, leaving at most 8 small files in OUTDIR.
#
#   tools/gpu/evidence.sh OUTDIR            on the GPU machine (see below)
#   tools/gpu/evidence.sh OUTDIR --dry-run  the same stages at tiny sizes on a CPU (tested in CI)
#
# On the `device` tool's machine: run tools/gpu/prepare.sh here first, then one call of
#   run(command="tools/gpu/evidence.sh $OUT", carry=["wheels", "ref_data", ".gl"], timeout_s=600)
# and hand the machine back. Each stage has its own time limit, so a slow stage costs its share
# and the rest still runs; what a stage printed is in evidence.log, and a stage that failed or ran
# out of time says so there and in the summary at its end.
#
# OUTDIR receives (8 files):
#   evidence.log   every stage's output, the stage times and the summary
#   bench_all.json `python -m ase_jax.bench all`: C MuJoCo, bare mjx.step, env step, full training
#                  iteration, compile times (cold and cached), peak memory, at 4096 envs
#   learn.json     a time-boxed pre-training on the Reallusion clips (bench learn's rows and summary,
#                  with the nearest-clip diversity of the final policy added under "diversity")
#   metrics.jsonl  its metrics, a line per evaluation
#   curves.png     its curves (disc reward and accuracy, diversity loss, encoder similarity,
#                  survival, pose error)
#   grid.mp4       four random latents, 2 x 2, at the end
#   e0_e3.mp4      the latents e0 and e3, side by side
#                  (both .gif where no ffmpeg is found: its wheel does not fit what a run carries)
#   diversity.png  the nearest-clip histogram of 64 random latents
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?usage: tools/gpu/evidence.sh OUTDIR [--dry-run]}
DRY=${2:-}
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
elif [ -n "$DRY" ]; then
  echo "unknown option '$DRY' (expected --dry-run)" >&2
  exit 1
else
  # shellcheck source=/dev/null
  source tools/gpu/on_device.sh >> "$LOG" 2>&1 || { say "tools/gpu/on_device.sh failed (carry wheels, ref_data, .gl)"; exit 1; }
  PY=python3
  MOTIONS=$REALLUSION
  [ -f "$MOTIONS" ] || { say "no Reallusion dataset at $MOTIONS (run tools/gpu/prepare.sh here and carry ref_data)"; exit 1; }
  BENCH=(--sizes=4096 --steps=100 --iterations=2)
  # 4096 envs with the reference's networks; 3 min of wall time (compiles included), the rest of the stage saves.
  LEARN=(--config=reallusion --eval_every=5 --eval_envs=64 --eval_seconds=5 --minutes=3)
  PLAY=(--seconds=6 --width=256 --height=192)
  DIVERSITY=(--num_latents=64 --seconds=5)
  # Seconds per stage: bench all, pre-training, the two videos, diversity (8.5 min in all).
  LIMITS=(195 240 45 30)
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

stage "bench all" "${LIMITS[0]}" "$PY" -m ase_jax.bench all "${BENCH[@]}" --out="$OUT/bench_all.json"
stage "pre-training (bench learn)" "${LIMITS[1]}" "$PY" -m ase_jax.bench learn "${LEARN[@]}" \
  --motions="$MOTIONS" --checkpoint=true --out="$WORK/learn"
for f in learn.json metrics.jsonl curves.png grid.mp4 grid.gif; do
  [ -f "$WORK/learn/$f" ] && cp "$WORK/learn/$f" "$OUT/"
done
if [ -d "$WORK/learn/checkpoints" ]; then
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
else
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
