#!/usr/bin/env bash
# The packed data store (issue 7): generates a large data set (replicated, perturbed frames),
# packs it with `atomforge pack`, and measures start-up (open + first frame), random-access read
# throughput against what a training step consumes, memory at two data set sizes, and training a
# few hundred steps from the store; writes bench/results/data_store.md.
#
#   bash bench/run_data_store.sh [BUILD_DIR]        (BUILD_DIR defaults to build/)
#
# Environment:
#   FRAMES=1000000 SMALL_FRAMES=10000 SYSTEMS=100   the large and small molecule data sets (H2O,
#                         3 atoms, from examples/data/mf/gfnff/train/H2O), both in SYSTEMS systems
#   WATER_FRAMES=10000    a store of 192-atom water frames (examples/data/water/data_0), the frames
#                         of the se_e2_a water benchmark (bench/results/se_e2_a_water.md)
#   READS=200000          random frames read per measurement
#   STEPS=300             training steps from each molecule store
#   WAIT_IDLE=300         wait up to this many seconds for idle CPUs before each timed run
#   WORK=DIR              scratch folder (default: a new one under /tmp; removed at the end)
#   OUT=bench/results/data_store.md
# Disk: about 0.5 KB per molecule frame (npy + store) and 19 KB per water frame; the script checks
# the free space first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${1:-build}"
FRAMES="${FRAMES:-1000000}"
SMALL_FRAMES="${SMALL_FRAMES:-10000}"
SYSTEMS="${SYSTEMS:-100}"
WATER_FRAMES="${WATER_FRAMES:-10000}"
READS="${READS:-200000}"
STEPS="${STEPS:-300}"
WAIT_IDLE="${WAIT_IDLE:-300}"
OUT="${OUT:-bench/results/data_store.md}"

if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD" --target atomforge bench_data_store ${JOBS:+--parallel "$JOBS"}
AF="$ROOT/$BUILD/src/cli/atomforge"
BENCH="$ROOT/$BUILD/bench/bench_data_store"
[[ "$BUILD" = /* ]] && AF="$BUILD/src/cli/atomforge" && BENCH="$BUILD/bench/bench_data_store"

WORK="${WORK:-$(mktemp -d /tmp/atomforge-data-store.XXXXXX)}"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
need_mb=$(( (FRAMES + SMALL_FRAMES) * 5 / 10000 + WATER_FRAMES * 19 / 1000 + 200 ))
free_mb=$(df -Pm "$WORK" | awk 'NR == 2 {print $4}')
echo "== scratch $WORK: about $need_mb MB needed, $free_mb MB free" >&2
(( free_mb > 2 * need_mb )) || { echo "not enough free disk in $WORK" >&2; exit 1; }

source bench/lib.sh
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2
JSONL="$WORK/results.jsonl"

# record KEY JSON: one line of results, with the CPU load seen just before.
record() { echo "{\"key\": \"$1\", \"busy_before\": $2, \"result\": $3}" | tee -a "$JSONL" >&2; }

elapsed() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.3f", t1 - t0}'; }

# Peak memory of a command: polls /proc every 50 ms for the largest anonymous RSS and the peak RSS.
# Prints "seconds peak_rss_mb peak_anon_mb" on fd 3 and the command's output on stdout.
measure() {
  local t0 pid anon=0 hwm=0 a h
  t0=$(date +%s.%N)
  "$@" & pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    a=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    h=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    (( ${a:-0} > anon )) && anon=$a
    (( ${h:-0} > hwm )) && hwm=$h
    sleep 0.05
  done
  wait "$pid"
  echo "$(elapsed "$t0") $(( hwm / 1024 )) $(( anon / 1024 ))" >&3
}

generate_and_pack() {  # NAME SOURCE FRAMES SYSTEMS
  local name=$1 source=$2 frames=$3 systems=$4 t0 busy
  t0=$(date +%s.%N)
  "$BENCH" generate --source "$source" --frames "$frames" --systems "$systems" --out "$WORK/$name"
  local gen_s; gen_s=$(elapsed "$t0")
  local npy_mb; npy_mb=$(du -sm "$WORK/$name" | cut -f1)
  busy=$(wait_idle)
  read -r secs rss anon < <(measure "$AF" pack "$WORK/$name" -o "$WORK/$name.afd" 3>&1 >&2)
  record "pack_$name" "$busy" "{\"frames\": $frames, \"systems\": $systems, \"generate_s\": $gen_s, \"npy_mb\": $npy_mb, \"afd_mb\": $(du -m "$WORK/$name.afd" | cut -f1), \"pack_s\": $secs, \"peak_rss_mb\": $rss, \"peak_anon_mb\": $anon}"
  rm -rf "${WORK:?}/$name"  # the npy copy is no longer needed
}

read_store() {  # NAME BATCH
  local busy; busy=$(wait_idle)
  record "read_$1_b$2" "$busy" "$("$BENCH" read --store "$WORK/$1.afd" --reads "$READS" --batch "$2" --seed 7)"
}

train_store() {  # NAME
  local name=$1 busy
  python3 - "$WORK/$name.afd" "$STEPS" > "$WORK/$name.json" <<'PY'
import json, sys
print(json.dumps({
  "model": {"type_map": ["O", "H"],
            "descriptor": {"type": "se_e2_a", "sel": [4, 8], "rcut": 4.0, "rcut_smth": 0.5,
                           "neuron": [4, 8, 16], "axis_neuron": 4, "seed": 1},
            "fitting_net": {"neuron": [16, 16], "seed": 2}},
  "learning_rate": {"start_lr": 0.005, "stop_lr": 0.0001, "decay_steps": 50},
  "loss": {"start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1},
  "training": {"training_data": {"systems": [sys.argv[1]], "batch_size": 1},
               "numb_steps": int(sys.argv[2]), "seed": 3, "disp_freq": 100, "save_freq": int(sys.argv[2]),
               "disp_training": False}}))
PY
  busy=$(wait_idle)
  read -r secs rss anon < <(measure "$AF" train "$WORK/$name.json" -o "$WORK/$name.train" 3>&1 >"$WORK/$name.log" 2>&1)
  grep -q "finished" "$WORK/$name.log" || { cat "$WORK/$name.log" >&2; exit 1; }
  local per_step; per_step=$(sed -n 's/.*finished [0-9]* steps in .* (\([0-9.]*\) s\/step).*/\1/p' "$WORK/$name.log")
  record "train_$name" "$busy" "{\"steps\": $STEPS, \"wall_s\": $secs, \"s_per_step\": ${per_step:-null}, \"peak_rss_mb\": $rss, \"peak_anon_mb\": $anon, \"rows\": $(grep -vc '^#' "$WORK/$name.train/lcurve.out")}"
}

generate_and_pack small examples/data/mf/gfnff/train/H2O "$SMALL_FRAMES" "$SYSTEMS"
generate_and_pack large examples/data/mf/gfnff/train/H2O "$FRAMES" "$SYSTEMS"
generate_and_pack water examples/data/water/data_0 "$WATER_FRAMES" 10
for name in small large water; do
  read_store "$name" 1
  read_store "$name" 32
done
train_store small
train_store large

mkdir -p "$(dirname "$OUT")"
export_machine_facts
export JSONL OUT FRAMES SMALL_FRAMES SYSTEMS WATER_FRAMES READS STEPS
export SCRIPT_CMD="bash bench/run_data_store.sh ${1:-}"
python3 bench/data_store_report.py
echo "wrote $OUT" >&2
