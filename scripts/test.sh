#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test. Tests that need ../shared/data skip
# themselves when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build && ctest -j"$(nproc)" --output-on-failure
