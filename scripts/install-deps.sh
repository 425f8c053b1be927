#!/usr/bin/env bash
# Installs atomforge's build and test dependencies from Debian 12's archive.
set -euo pipefail
packages=(
  cmake ninja-build g++ ccache   # build
  libtorch-dev                   # tensors, autograd (forces, double backward), c10d collectives
  libopenblas0-openmp            # fast BLAS for libtorch (only recommended by it; the reference BLAS is 4x slower),
                                 # on libtorch's OpenMP threads (the pthread build fights them: 2x slower steps)
  libblas-dev                    # link-time name of that BLAS, for direct calls from src/model/block_gemm.cpp
  libxsmm-dev                    # generated kernels for the small matrix products (block_gemm.cpp, dense_mm.cpp)
  libgloo-dev                    # headers c10d's ProcessGroupGloo includes (symbols are in libtorch)
  nlohmann-json3-dev             # input.json, model file headers
  libyaml-cpp-dev                # DeePMD-kit's backend-neutral model files (atomforge convert)
  libcli11-dev                   # command line
  libfmt-dev libspdlog-dev       # formatting, logging
  libgtest-dev                   # tests
  libbenchmark-dev               # bench/
  liblammps-dev lammps openmpi-bin  # LAMMPS pair style plugin (plugins/lammps): headers + liblammps, lmp, mpirun for its tests
)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
