#!/usr/bin/env bash
# Run here (Debian 12, apt reachable) before a GPU check: the lent GPU machine's image has CUDA,
# CMake, ninja and a CUDA PyTorch (whose LibTorch we build against) but none of our other
# libraries, and it reaches no network. This fetches their Debian packages and unpacks them under
# .gpu-deps/ (git ignores it; a few MB), for `run`'s carry. scripts/gpu-check.sh uses them there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
packages=(nlohmann-json3-dev libyaml-cpp-dev libyaml-cpp0.7 libcli11-dev libfmt-dev libfmt9 libspdlog-dev libspdlog1.10
          libgtest-dev googletest libbenchmark-dev libbenchmark1debian libgloo-dev)
rm -rf .gpu-deps
mkdir -p .gpu-deps/debs .gpu-deps/root .gpu-deps/gloo-include
(cd .gpu-deps/debs && apt-get download -qq "${packages[@]}")
for deb in .gpu-deps/debs/*.deb; do dpkg -x "$deb" .gpu-deps/root; done
# Gloo's headers apart: they are searched after LibTorch's own (-idirafter), which pip wheels may
# ship in the version their c10d was built with.
mv .gpu-deps/root/usr/include/gloo .gpu-deps/gloo-include/
rm -rf .gpu-deps/debs .gpu-deps/root/usr/share/doc .gpu-deps/root/usr/share/man .gpu-deps/root/usr/src
du -sh .gpu-deps
