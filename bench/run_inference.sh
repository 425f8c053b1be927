#!/usr/bin/env bash
# Inference throughput, atom-steps per second, of se_e2_a, painn and dimenet water models in
# `atomforge md` (NVE) and in LAMMPS (`pair_style atomforge`, lmp_atomforge, 1 MPI rank), on 192,
# 1536 and 12288 atoms of water (frame 0 of examples/data/water/data_0 and its 2x2x2 and 4x4x4
# replicas); writes bench/results/inference.md (machine, date, commit, the table).
#
#   bash bench/run_inference.sh [BUILD_DIR]        (BUILD_DIR defaults to build/)
#   QUICK=1 bash bench/run_inference.sh build      (a check of the script: 192 and 1536 atoms, a few
#                                                   steps, no waiting; writes /tmp/inference-quick.md)
#
# Models: bench/models/water-{se_e2_a,painn,dimenet}.json (se_e2_a: DeePMD-kit's water example
# sizes, as bench_se_e2_a's seed model), trained TRAIN_STEPS steps and frozen: the cost of an
# evaluation does not depend on the weights. Each (model, driver, size) runs in its own process:
# the first force evaluation (setup) is not timed, then s/step is the time of `steps` steps
# (md: between its progress lines for step 0 and the last step; LAMMPS: its "Loop time").
# Step counts aim at TARGET_S seconds of timed run (from the previous size, scaled by the atom
# count; a PROBE_STEPS run first at the smallest size), within [MIN_STEPS, MAX_STEPS].
#
# Environment: MODELS="se_e2_a painn dimenet" DRIVERS="md lammps" SIZES="1 2 4" (replicas per axis)
#   TARGET_S=30 MIN_STEPS=5 MAX_STEPS=100 PROBE_STEPS=2 TRAIN_STEPS=50 THREADS=2
#   WAIT_IDLE=300 (seconds to wait for idle CPUs before each run), RUN_TIMEOUT_S=1200 (per run)
#   MEM_LIMIT_GIB (default 85% of MemAvailable at the start): a run is killed above it and
#   reported as out of memory; a size whose estimate (previous size x atom ratio) exceeds
#   2 x the limit is not started (the estimate is high for models that recompute their
#   layers above a size: DimeNet). NO_BUILD=1: use BUILD_DIR as it is. OUT=bench/results/inference.md
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${1:-build}"
if [[ "${QUICK:-0}" == 1 ]]; then
  : "${SIZES:=1 2}" "${TARGET_S:=2}" "${MIN_STEPS:=2}" "${MAX_STEPS:=5}" "${WAIT_IDLE:=0}" "${OUT:=/tmp/inference-quick.md}"
fi
MODELS="${MODELS:-se_e2_a painn dimenet}"
DRIVERS="${DRIVERS:-md lammps}"
SIZES="${SIZES:-1 2 4}"
TARGET_S="${TARGET_S:-30}"
MIN_STEPS="${MIN_STEPS:-5}"
MAX_STEPS="${MAX_STEPS:-100}"
PROBE_STEPS="${PROBE_STEPS:-2}"
TRAIN_STEPS="${TRAIN_STEPS:-50}"
THREADS="${THREADS:-2}"
WAIT_IDLE="${WAIT_IDLE:-300}"
RUN_TIMEOUT_S="${RUN_TIMEOUT_S:-1200}"
MEM_LIMIT_GIB="${MEM_LIMIT_GIB:-$(awk '/MemAvailable/ {printf "%.1f", 0.85 * $2 / 1048576}' /proc/meminfo)}"
OUT="${OUT:-bench/results/inference.md}"
WATER=examples/data/water/data_0

if [[ "${NO_BUILD:-0}" != 1 ]]; then
  [[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
  targets=(atomforge)
  cmake --build "$BUILD" --target help | grep -q lmp_atomforge && targets+=(lmp_atomforge atomforgeplugin)
  cmake --build "$BUILD" --target "${targets[@]}"
fi
BIN="$BUILD/src/cli/atomforge"
LMP="$(realpath -q "$BUILD/plugins/lammps/lmp_atomforge" || true)"
PLUGIN="$(realpath -q "$BUILD/plugins/lammps/atomforgeplugin.so" || true)"
source bench/lib.sh
unset OPENBLAS_NUM_THREADS  # OpenBLAS for OpenMP (scripts/install-deps.sh) follows OMP_NUM_THREADS
export OMP_NUM_THREADS="$THREADS"
echo "libtorch intra-op threads: OMP_NUM_THREADS=$OMP_NUM_THREADS (OPENBLAS_NUM_THREADS unset); LAMMPS: 1 MPI rank;" \
  "memory limit per run: $MEM_LIMIT_GIB GiB" >&2
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROWS="$WORK/rows.jsonl"
: > "$ROWS"

declare -A NATOMS
for r in $SIZES; do NATOMS[$r]=$(python3 bench/water_box.py "$WATER" "$r" "$WORK/water-$r"); done
ELEMENTS="$(tr '\n' ' ' < "$WATER/type_map.raw")"

# row MODEL DRIVER NATOMS JSON: a table row, to ROWS.
row() {
  python3 -c 'import json,sys; print(json.dumps({**json.loads(sys.argv[4]), "model": sys.argv[1], "driver": sys.argv[2], "natoms": int(sys.argv[3])}))' \
    "$@" | tee -a "$ROWS" >&2
}
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }

for model in $MODELS; do
  echo "== $model: training $TRAIN_STEPS steps and freezing" >&2
  train_and_freeze "$BIN" "bench/models/water-$model.json" "$WORK/$model" "$TRAIN_STEPS"

  for driver in $DRIVERS; do
    if [[ $driver == lammps && ( -z "$LMP" || -z "$PLUGIN" ) ]]; then
      row "$model" "$driver" 0 '{"error": "LAMMPS plugin not built"}'
      continue
    fi
    prev_n="" prev_s="" prev_mb="" failed=""
    for r in $SIZES; do
      n=${NATOMS[$r]} dir="$WORK/$model-$driver-$r"
      if [[ -n "$failed" ]]; then row "$model" "$driver" "$n" "{\"error\": \"not run: $failed\"}"; continue; fi
      if [[ -z "$prev_s" ]]; then
        echo "== $model $driver $n atoms: probe, $PROBE_STEPS steps" >&2
        probe=$(measure_steps "$driver" "$WORK/$model/model.pth" "$WORK/water-$r" "$PROBE_STEPS" "$dir-probe")
        if [[ -n "$(field "$probe" error)" ]]; then
          failed="$(field "$probe" error) at $n atoms"; row "$model" "$driver" "$n" "$probe"; continue
        fi
        est=$(field "$probe" s_per_step)
      else
        est=$(python3 -c "print($prev_s * $n / $prev_n)")
        mb=$(python3 -c "print($prev_mb * $n / $prev_n)")
        if python3 -c "import sys; sys.exit(not $mb > 2 * 1024 * $MEM_LIMIT_GIB)"; then
          failed="out of memory at $n atoms"
          row "$model" "$driver" "$n" "{\"error\": \"out of memory\", \"estimated_mb\": $mb, \"limit_gib\": $MEM_LIMIT_GIB}"
          continue
        fi
      fi
      steps=$(python3 -c "import math; print(min($MAX_STEPS, max($MIN_STEPS, math.ceil($TARGET_S / $est))))")
      busy=$(wait_idle)
      echo "== $model $driver $n atoms: $steps steps (CPUs busy beforehand: $busy%)" >&2
      result=$(measure_steps "$driver" "$WORK/$model/model.pth" "$WORK/water-$r" "$steps" "$dir")
      row "$model" "$driver" "$n" "$(python3 -c 'import json,sys; print(json.dumps({**json.loads(sys.argv[1]), "busy_before": int(sys.argv[2])}))' "$result" "$busy")"
      if [[ -n "$(field "$result" error)" ]]; then failed="$(field "$result" error) at $n atoms"; continue; fi
      prev_n=$n prev_s=$(field "$result" s_per_step) prev_mb=$(field "$result" peak_rss_mb)
    done
  done
done

export_machine_facts
export ROWS OUT THREADS TRAIN_STEPS TARGET_S MIN_STEPS MAX_STEPS MEM_LIMIT_GIB
export SCRIPT_CMD="bash bench/run_inference.sh ${1:-}" QUICK="${QUICK:-0}"
PYTHONPATH=bench python3 - <<'EOF'
from report import e, ncpu, head, rows, write
out = head("Inference throughput: `atomforge md` and LAMMPS, water", "bench/run_inference.sh", [
    "Workload: frame 0 of DeePMD-kit's water (`examples/data/water/data_0`: 192 atoms, 64 O + 128 H, "
    "periodic 12.44 A cube) and its 2x2x2 and 4x4x4 replicas (1536, 12288 atoms), NVE from 300 K, "
    "0.5 fs steps, float64. Models: `bench/models/water-{se_e2_a,painn,dimenet}.json` (se_e2_a: "
    "DeePMD-kit's `examples/water/se_e2_a` sizes), trained "
    f"{e['TRAIN_STEPS']} steps (so that NVE from the DFT geometry stays physical) and frozen: the cost of an evaluation does not depend on the weights.",
    "",
    "- **md**: `atomforge md`, neighbour-list skin 1 A; s/step between the progress lines of step 0 "
    "(after the first force evaluation) and the last step.",
    "- **LAMMPS**: `lmp_atomforge` with `pair_style atomforge`, 1 MPI rank, `neighbor 1.0 bin`, "
    "`fix nve`; s/step = LAMMPS' \"Loop time\" / steps (the setup's force evaluation is not in it). "
    "On one rank with a periodic box the model computes the whole box with its own periodic images "
    "(LAMMPS' ghosts, one cut-off plus the skin deep, are unused; plugins/lammps/README.md).",
    f"- libtorch intra-op threads: OMP_NUM_THREADS={e['THREADS']}, OPENBLAS_NUM_THREADS unset (OpenBLAS built for OpenMP). "
    "atom-steps/s = atoms x steps / seconds.",
    f"- Steps aim at {e['TARGET_S']} s of timed run, within [{e['MIN_STEPS']}, {e['MAX_STEPS']}]. "
    "Each run in its own process; peak RSS is the process's (ru_maxrss). A run is killed when its "
    f"resident memory passes {e['MEM_LIMIT_GIB']} GiB (out of memory); a size is not started when "
    "the previous size's peak x the atom ratio exceeds 2 x that (DimeNet recomputes its layers above 131072 edges, so its estimate from a smaller size is high)."])
w = out.append
w("| model | atoms | driver | steps | s/step | atom-steps/s | peak RSS MB | LAMMPS ghosts | other load before / during, CPUs |")
w("|---|---|---|---|---|---|---|---|---|")
for r in rows():
    cells = [r["model"], str(r.get("natoms", "-")), r["driver"]]
    if "error" in r:
        err = r["error"]
        if "estimated_mb" in r:
            err += f" (estimated {r['estimated_mb'] / 1024:.1f} GiB from the smaller size; limit {r['limit_gib']} GiB)"
        elif r.get("stopped") == "memory":
            err += f" (killed at {r['peak_rss_mb'] / 1024:.1f} GiB, the limit, after {r['wall_s']:.0f} s)"
        cells += [err, "", "", "", "", ""]
    else:
        cells += [str(r["steps"]), f"{r['s_per_step']:.4g}", f"{r['natoms'] / r['s_per_step']:.4g}",
                  f"{r['peak_rss_mb']:.0f}", str(r.get("ghosts") or "-"),
                  f"{r.get('busy_before', 0) * ncpu / 100:.2f} / {r['others_cpus']:.2f}"]
    w("| " + " | ".join(cells) + " |")
w("")
w(f"Other load: CPUs kept busy by other processes in the second before a run and during it. On this "
  f"{ncpu}-CPU machine anything much above 0.1 means that row's time is contended and too slow.")
write(out)
EOF
