#!/usr/bin/env bash
# Run HERE (the CPU machine), in the repository root, before a session's first call of the `device`
# tool. It gathers what the GPU machine lacks into two git-ignored folders that a `run` carries:
#   wheels/    cp312 wheels of mujoco, mujoco-mjx, brax, mediapy and their missing needs (~25 MB)
#   ref_data/  the ASE Reallusion clips and yaml from ../shared (16 MB; licence: never commit them)
#   .gl/       Debian packages of the EGL/OpenGL loaders, for headless rendering there (~1 MB)
# The GPU image already has jax (CUDA), flax, optax, orbax, chex, numpy, scipy, yaml, rich, matplotlib.
# Then, in every device run: carry ["wheels", "ref_data", ".gl"] and begin the command with
# `source tools/gpu/on_device.sh &&` (see BENCHMARKS.md, "Taking the GPU figures").
# imageio-ffmpeg (the ffmpeg that writes videos where the system has none) is left out: its wheel
# (29 MB) would take the carried folders over the 64 MiB a run carries; without a system ffmpeg
# there, tools/gpu/evidence.sh writes its videos as GIFs.
# warp-lang (MJX impl='warp') does not fit one run: its wheel is 149 MB, over the 64 MiB a run carries.
# `prepare.sh --warp` splits it into parts of 48 MiB, one folder each (warp_parts/1, /2, /3), that
# consecutive calls carry one at a time while the machine stays warm: what a call leaves under /tmp
# there is kept until the machine is given back (30 s idle), and tools/gpu/on_device.sh collects
# the parts there and installs warp-lang once all have arrived (checked against the wheel's sha256).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--warp" ]; then
  rm -rf warp_parts && mkdir -p warp_parts/whole
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 -d warp_parts/whole warp-lang==1.19.0
  wheel=$(ls warp_parts/whole/*.whl)
  (cd warp_parts/whole && split -b 48M -d -a 1 "$(basename "$wheel")" part_)
  n=$(ls warp_parts/whole/part_* | wc -l)
  sum=$(sha256sum "$wheel" | cut -d' ' -f1)
  i=1
  for part in warp_parts/whole/part_*; do
    mkdir -p "warp_parts/$i"
    mv "$part" "warp_parts/$i/"
    printf '%s %s %s\n' "$(basename "$wheel")" "$n" "$sum" > "warp_parts/$i/manifest"
    i=$((i + 1))
  done
  rm -rf warp_parts/whole
  du -sh warp_parts/*
  exit 0
fi
SHARED=${ASE_JAX_SHARED:-../shared}
PKGS=(
  mujoco==4.0.1 mujoco-core==4.0.1 mujoco-studio==4.0.1 websockets glfw PyOpenGL
  mujoco-mjx==3.17.0 trimesh
  brax==0.14.2 jaxopt ml_collections tensorboardX
  mediapy ipython ipython-pygments-lexers decorator jedi parso matplotlib-inline pexpect ptyprocess
  prompt_toolkit wcwidth stack_data executing asttokens pure_eval traitlets
)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 manylinux_2_35_x86_64; do
  PLATFORMS+=(--platform "$p")
done
mkdir -p wheels
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d wheels "${PKGS[@]}"
mkdir -p ref_data
cp -r "$SHARED/reference/ase_data/motions/reallusion_sword_shield" ref_data/
mkdir -p .gl /tmp/amd64/partial
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
apt-get "${o[@]}" update -qq
(cd .gl && apt-get "${o[@]}" download libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
du -sh wheels ref_data .gl
