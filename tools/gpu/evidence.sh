#!/usr/bin/env bash
# The GPU evidence in two calls: a pre-training of the reference config (4096 characters, the
# reference's networks and hyperparameters, the Reallusion clips) to the reference's first skill
# signal (2.6e7 samples: enc reward 0.218, episode length 51; docs/reference.md), which one call of
# at most 10 minutes cannot reach. The first call trains until its time box; the second resumes
# from the checkpoint on the still-warm machine, ends at 2.6e7 samples and adds the e0/e3 video.
#
#   tools/gpu/evidence.sh OUTDIR                  call 1 on the GPU machine: train until the box
#   tools/gpu/evidence.sh OUTDIR --continue       call 2: resume, finish, videos
#   tools/gpu/evidence.sh OUTDIR --all            one call: bench all, a shorter run, videos and
#                                                 diversity (a lease spent on figures)
#   tools/gpu/evidence.sh OUTDIR --dry-run [--continue]   the same calls at tiny sizes on a CPU (CI)
#
# Throughput needed: 2.6e7 samples in the ~9 minutes of training that the two calls leave after
# setup, building and compiling is about 48,000 samples/s for the whole iteration, evaluations
# included; one H200 did 65,000 (BENCHMARKS.md; the reference's Isaac Gym run did 32,000). Slower,
# the second call stops at its time box and the curve ends earlier; every figure is indexed by
# samples.
#
# The run folder ($EVIDENCE_RUN, default runs/evidence) is ignored by git, so it stays on the
# machine between calls while the machine is warm, as does on_device.sh's compilation cache (the
# second call's compile is a cache read). The second call must follow the first within the
# machine's warm time (30 s on the H200); on a fresh machine it finds no run, says so and stops at
# once. On the `device` tool's machine: run tools/gpu/prepare.sh here first, then
#   run(command="tools/gpu/evidence.sh $OUT", carry=["wheels", "ref_data", ".gl"], timeout_s=475)
#   run(command="tools/gpu/evidence.sh $OUT --continue", carry=[the same], timeout_s=365)
# and hand the machine back. Each stage has its own time limit; what a stage printed is in
# evidence.log, and a stage that failed or ran out of time says so there and in the summary.
#
# OUTDIR receives, after each call:
#   evidence.log   every stage's output, the stage times and the summary
#   learn.json     bench learn's rows (an evaluation every 20 iterations) and summary, compile
#                  time, samples/s, peak device memory, one segment per call
#   metrics.jsonl  the training metrics of every iteration (the columns of the reference's log)
#   curves.png     the curves (disc reward and accuracy, diversity loss, encoder similarity,
#                  survival, pose error)
#   grid.mp4       after --continue and with --all: four random latents, 2 x 2, at the end (.gif
#                  where no ffmpeg is found)
#   e0_e3.mp4      after --continue and with --all: the latents e0 and e3, side by side
#   with --all, and in the dry run of call 1, also:
#   bench_all.json `python -m ase_jax.bench all`: env step, training iteration, compile, memory
#   diversity.png  the nearest-clip histogram of random latents
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?usage: tools/gpu/evidence.sh OUTDIR [--dry-run] [--continue|--all]}
shift
DRY=0 CONTINUE=0 ALL=0
for option in "$@"; do
  case $option in
    --dry-run) DRY=1 ;;
    --continue) CONTINUE=1 ;;
    --all) ALL=1 ;;
    *) echo "unknown option '$option' (expected --dry-run, --continue or --all)" >&2; exit 1 ;;
  esac
done
if [ "$CONTINUE" = 1 ] && [ "$ALL" = 1 ]; then echo "--continue and --all do not go together" >&2; exit 1; fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/evidence.log"
RUN=${EVIDENCE_RUN:-runs/evidence}
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }

if [ "$DRY" = 1 ]; then
  # Tiny sizes on whatever Python runs here (the project installed); the motions bundled with the
  # repository stand in for the Reallusion clips. Call 1 trains 2 iterations, call 2 goes on to 4.
  PY=${PYTHON:-python}
  MOTIONS=motions/bundled/dataset.yaml
  BENCH=(--sizes=4 --steps=5 --iterations=1 --tiny_compile=false --config=tiny)
  LEARN=(--config=tiny --eval_every=1 --eval_envs=4 --eval_seconds=0.5 --minutes=3)
  if [ "$CONTINUE" = 1 ]; then LEARN+=(--samples=128); else LEARN+=(--samples=64); fi
  PLAY=(--seconds=0.5 --width=64 --height=48)
  DIVERSITY=(--num_latents=2 --seconds=0.5)
  LIMITS=(600 600 300 300)
  [ "$CONTINUE" = 0 ] && ALL=1
else
  # shellcheck source=/dev/null
  source tools/gpu/on_device.sh >> "$LOG" 2>&1 || { say "tools/gpu/on_device.sh failed (carry wheels, ref_data, .gl)"; exit 1; }
  PY=python3
  MOTIONS=$REALLUSION
  [ -f "$MOTIONS" ] || { say "no Reallusion dataset at $MOTIONS (run tools/gpu/prepare.sh here and carry ref_data)"; exit 1; }
  BENCH=(--sizes=4096 --steps=100 --iterations=2)
  # 4096 envs with the reference's networks to 2.6e7 samples (200 iterations), an evaluation every
  # 20; each call's time box (building and compiles included) stops it first if it must.
  LEARN=(--config=reallusion --samples=26214400 --eval_every=20 --eval_envs=64 --eval_seconds=5)
  PLAY=(--seconds=6 --width=256 --height=192)
  DIVERSITY=(--num_latents=64 --seconds=5)
  if [ "$ALL" = 1 ]; then
    LEARN+=(--minutes=3); LIMITS=(195 240 45 30)
  elif [ "$CONTINUE" = 1 ]; then
    LEARN+=(--minutes=4.0); LIMITS=(0 275 75 0)
  else
    # no grid video in call 1: rendering it after the box ran past the stage's limit on the H200
    LEARN+=(--minutes=7.0 --video=false); LIMITS=(0 450 0 0)
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

if [ "$CONTINUE" = 1 ] && [ ! -d "$RUN/checkpoints" ]; then
  say "--continue: no run to continue in $RUN (a fresh machine, or call 1 failed); nothing done"
  exit 1
elif [ "$CONTINUE" = 0 ] && [ -e "$RUN" ]; then
  say "$RUN exists (an earlier run of this script): move it away, or continue it with --continue"
  exit 1
fi

if [ "$ALL" = 1 ]; then
  stage "bench all" "${LIMITS[0]}" "$PY" -m ase_jax.bench all "${BENCH[@]}" --out="$OUT/bench_all.json"
fi
PART=$([ "$CONTINUE" = 1 ] && echo "resumed" || echo "from the start")
stage "pre-training (bench learn, $PART)" "${LIMITS[1]}" "$PY" -m ase_jax.bench learn "${LEARN[@]}" \
  --motions="$MOTIONS" --out="$RUN"
for f in learn.json metrics.jsonl curves.png grid.mp4 grid.gif; do
  [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"
done

if [ "$ALL" = 1 ] || [ "$CONTINUE" = 1 ]; then
  if [ -d "$RUN/checkpoints" ]; then
    stage "videos e0, e3" "${LIMITS[2]}" "$PY" - "$RUN" "$OUT/e0_e3" "${PLAY[@]}" <<'EOF'
import sys
import numpy as np
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
  else
    STATUS+=("videos: skipped (no checkpoint from the pre-training stage)")
  fi
fi

if [ "$ALL" = 1 ] && [ -d "$RUN/checkpoints" ]; then
  DIVERSITY_OUT=$(mktemp -d "${TMPDIR:-/tmp}/ase_jax_diversity.XXXXXX")
  stage "diversity" "${LIMITS[3]}" "$PY" -m ase_jax.evaluate diversity --checkpoint="$RUN" \
    --motions="$MOTIONS" "${DIVERSITY[@]}" --out="$DIVERSITY_OUT"
  [ -f "$DIVERSITY_OUT/diversity.png" ] && cp "$DIVERSITY_OUT/diversity.png" "$OUT/"
  if [ -f "$DIVERSITY_OUT/diversity.json" ] && [ -f "$OUT/learn.json" ]; then
    "$PY" - "$OUT/learn.json" "$DIVERSITY_OUT/diversity.json" <<'EOF'
import json, sys
learn = json.load(open(sys.argv[1]))
learn["diversity"] = json.load(open(sys.argv[2]))
json.dump(learn, open(sys.argv[1], "w"), indent=2)
EOF
  fi
  rm -rf "$DIVERSITY_OUT"
fi

say "=== summary"
for line in "${STATUS[@]}"; do say "$line"; done
# The device tool brings back files of at most 16 MiB: a larger one would be lost, so say so here.
find "$OUT" -type f -size +16M -exec sh -c 'echo "too large to come back: $1" | tee -a "$2"' _ {} "$LOG" \;
say "files: $(ls "$OUT" | tr '\n' ' ')"
FAILED=0
for line in "${STATUS[@]}"; do case $line in *ok\ in*) ;; *) FAILED=1 ;; esac; done
exit $FAILED
