#!/usr/bin/env bash
# The GPU check, for a session lent a GPU machine (docs/gpu.md). Here, first:
#     bash scripts/gpu-deps.sh
# then through the device tool, from the repository root:
#     run(command="bash scripts/gpu-check.sh", carry=[".gpu-deps"], timeout_s=540)
# It builds against the machine's CUDA LibTorch (its Python torch), runs the tests that compare
# the GPU with the CPU kernels, times training and inference on the GPU, and writes every log to
# $OUT (configure.log, build.log, tests.log, bench.jsonl, train.log). Steps run on after a
# failure, so that one call reports everything there is to fix.
set -uo pipefail
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEPS="$ROOT/.gpu-deps"
[[ -d "$DEPS/root" ]] || { echo "no .gpu-deps: run scripts/gpu-deps.sh here and carry .gpu-deps" >&2; exit 2; }
TORCH_PREFIX="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
TORCH_LIB="$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
CUDNN="$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null || true)"
export LD_LIBRARY_PATH="$DEPS/root/usr/lib/x86_64-linux-gnu:$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
JOBS="$(nproc)"
export OMP_NUM_THREADS=8 TORCH_CUDA_ARCH_LIST=9.0  # the H200 (Hopper, sm_90)

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count())'
  cmake --version | head -1
  cudnn_args=()
  [[ -n "$CUDNN" ]] && cudnn_args=(-DCUDNN_INCLUDE_PATH="$CUDNN/include" -DCUDNN_LIBRARY_PATH="$(ls "$CUDNN"/lib/libcudnn.so* | head -1)")
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$DEPS/root/usr" \
    -DCMAKE_CXX_FLAGS="-idirafter $DEPS/gloo-include" -DCMAKE_CUDA_ARCHITECTURES=90 -DTORCH_CUDA_ARCH_LIST=9.0 \
    -DATOMFORGE_BUILD_LAMMPS_PLUGIN=OFF "${cudnn_args[@]}"
} > "$OUT/configure.log" 2>&1
configured=$?
echo "configure: exit $configured"
[[ $configured -eq 0 ]] || { tail -40 "$OUT/configure.log"; exit 1; }

# -k 0: every target that can build does, and the log lists every error at once.
timeout 360 ninja -C build-gpu -k 0 -j "$JOBS" test_model_generic_kernels test_model_physics test_c_api bench_se_e2_a atomforge \
  > "$OUT/build.log" 2>&1
echo "build: exit $?"
grep -E "error:|FAILED:" "$OUT/build.log" | head -30

{
  for device in cuda cpu; do
    echo "== ATOMFORGE_TEST_DEVICE=$device"
    ATOMFORGE_TEST_DEVICE=$device timeout 120 build-gpu/tests/model/test_model_generic_kernels
  done
  echo "== C API on cuda"
  ATOMFORGE_TEST_DEVICE=cuda timeout 120 build-gpu/tests/api/test_c_api --gtest_filter='*Device*'
  echo "== physics (CPU kernels, this LibTorch)"
  timeout 120 build-gpu/tests/model/test_model_physics
} > "$OUT/tests.log" 2>&1
echo "tests: exit $?"
grep -E "^\[  (PASSED|FAILED) |FAILED  \]" "$OUT/tests.log" | head -20

BENCH=build-gpu/bench/bench_se_e2_a
python3 bench/water_box.py examples/data/water/data_0 2 /tmp/water-2 --labels > /dev/null
python3 bench/water_box.py examples/data/water/data_0 4 /tmp/water-4 --labels > /dev/null
if [[ -x "$BENCH" ]]; then
  for device in cuda cpu; do
    for mode in train infer; do
      timeout 60 "$BENCH" --device "$device" --mode "$mode" --steps 30 --warmup 5 --threads 8 >> "$OUT/bench.jsonl"
    done
    for model in painn dimenet; do
      timeout 60 "$BENCH" --device "$device" --model "bench/models/water-$model.json" --mode train --steps 10 --warmup 3 \
        --threads 8 >> "$OUT/bench.jsonl"
    done
  done
  for data in /tmp/water-2.extxyz /tmp/water-4.extxyz; do
    timeout 60 "$BENCH" --device cuda --data "$data" --mode infer --steps 5 --warmup 2 --threads 8 >> "$OUT/bench.jsonl"
  done
fi 2>> "$OUT/bench.jsonl"
echo "bench: $(grep -c '"bench"' "$OUT/bench.jsonl" 2>/dev/null || echo 0) rows"

# The trainer end to end on the GPU: the bundled water example for a few steps.
if [[ -x build-gpu/src/cli/atomforge ]]; then
  work="$(mktemp -d)"
  python3 - "$work" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1]); root = Path.cwd()
j = json.loads((root / "examples/water/input.json").read_text())
t = j["training"]
t["numb_steps"], t["disp_freq"], t["save_freq"], t["device"] = 40, 10, 40, "cuda"
for key in ("training_data", "validation_data"):
    if key in t: t[key]["systems"] = [str((root / "examples/water" / s).resolve()) for s in t[key]["systems"]]
(work / "input.json").write_text(json.dumps(j))
PY
  (cd "$work" && timeout 120 "$ROOT/build-gpu/src/cli/atomforge" train input.json && cat lcurve.out &&
   timeout 60 "$ROOT/build-gpu/src/cli/atomforge" test -m model.ckpt.pt -s "$ROOT/examples/data/water/data_3" --device cuda) \
    > "$OUT/train.log" 2>&1
  echo "train: exit $?"
  tail -5 "$OUT/train.log"
fi
