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
# warp-lang (MJX impl='warp') is left out: its wheel (~150 MB) is over the 64 MiB a run carries.
set -euo pipefail
cd "$(dirname "$0")/../.."
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
