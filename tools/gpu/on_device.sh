#!/usr/bin/env bash
# Run THERE (the GPU machine of the `device` tool), sourced at the start of each run's command:
#   source tools/gpu/on_device.sh && python3 -m ase_jax.bench all --out=$OUT/bench_gpu.json
# Installs the carried wheels once per machine, points Python at them and at this checkout, renders
# with EGL, and keeps a persistent compilation cache and run folders that live while the machine
# stays warm (ignored paths are kept between calls, a fresh machine starts bare).
if [ ! -f /tmp/site/.ase_jax_installed ]; then
  for f in .gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
  ldconfig
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site wheels/*.whl || return 1
  touch /tmp/site/.ase_jax_installed
fi
# warp-lang in parts (tools/gpu/prepare.sh --warp): each call carries one; they gather under /tmp,
# which outlives a call while the machine stays warm, and are installed once all have arrived.
for manifest in warp_parts/*/manifest; do
  [ -f "$manifest" ] || continue
  mkdir -p /tmp/warp_parts && cp "$(dirname "$manifest")"/part_* "$manifest" /tmp/warp_parts/
done
if [ -f /tmp/warp_parts/manifest ] && [ ! -f /tmp/site/.warp_installed ]; then
  read -r wheel count sum < /tmp/warp_parts/manifest
  have=$(ls /tmp/warp_parts/part_* | wc -l)
  if [ "$have" = "$count" ]; then
    cat /tmp/warp_parts/part_* > "/tmp/warp_parts/$wheel"
    if [ "$(sha256sum "/tmp/warp_parts/$wheel" | cut -d' ' -f1)" = "$sum" ]; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        "/tmp/warp_parts/$wheel" && touch /tmp/site/.warp_installed && echo "on_device: warp-lang installed"
    else
      echo "on_device: warp-lang parts do not add up to the wheel (sha256 differs); carry them again"
    fi
  else
    echo "on_device: warp-lang: $have of $count parts here; carry the next (warp_parts/N) in the next call"
  fi
fi
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 MUJOCO_GL=egl
# MuJoCo Playground's setting for MJX on NVIDIA GPUs: Triton for every matrix product.
export XLA_FLAGS="--xla_gpu_triton_gemm_any=true${XLA_FLAGS:+ $XLA_FLAGS}"
export JAX_COMPILATION_CACHE_DIR="$PWD/.jax_cache_gpu"
export REALLUSION="$PWD/ref_data/reallusion_sword_shield/dataset_reallusion_sword_shield.yaml"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, mujoco, mujoco.mjx, brax; print('jax', jax.__version__, jax.devices(), 'mujoco', mujoco.__version__)"
