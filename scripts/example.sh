#!/usr/bin/env bash
# Installs dependencies, builds, trains se_e2_a on the bundled water example (DeePMD-kit's
# DFT water, 400 steps, a few minutes on 2 cores) and tests the result on held-out frames.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
out="${1:-$root/runs/water}"
mkdir -p "$out"
"$root/build/src/cli/atomforge" train "$root/examples/water/input.json" -o "$out"
"$root/build/src/cli/atomforge" test -m "$out/model.ckpt.pt" -s "$root/examples/data/water/data_3" -d "$out/test"
echo "learning curve: $out/lcurve.out; predictions vs labels: $out/test.e.out, $out/test.f.out"
