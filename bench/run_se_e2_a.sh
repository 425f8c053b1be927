#!/usr/bin/env bash
# Builds bench_se_e2_a and times the se_e2_a water training step and energy+force evaluation
# (192 atoms, batch 1, DeePMD-kit's examples/water/se_e2_a sizes), then writes
# bench/results/se_e2_a_water.md: machine, date, libtorch, BLAS, git commit, the commands, the
# table (medians) and DeePMD-kit's figures quoted from issue 7 for comparison.
#
#   bash bench/run_se_e2_a.sh [BUILD_DIR]        (BUILD_DIR defaults to build/)
#
# Environment:
#   STEPS=20 WARMUP=3     timed and untimed repetitions of each measurement
#   JOBS=N                build parallelism (default: the generator's)
#   WAIT_IDLE=300         wait up to this many seconds for the other CPUs to be idle before each
#                         run (0: do not wait); the load seen is written into the table anyway
#   EXTRA_BLAS_DIR=DIR    also run float64 with LD_LIBRARY_PATH=DIR, e.g. a libblas.so.3 from
#                         OpenBLAS, to compare with the system's default BLAS
#   OUT=bench/results/se_e2_a_water.md
#
# Each measurement runs in its own process so that its peak RSS (ru_maxrss) is its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${1:-build}"
STEPS="${STEPS:-20}"
WARMUP="${WARMUP:-3}"
WAIT_IDLE="${WAIT_IDLE:-300}"
OUT="${OUT:-bench/results/se_e2_a_water.md}"
EXTRA_BLAS_DIR="${EXTRA_BLAS_DIR:-}"

if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD" --target bench_se_e2_a ${JOBS:+--parallel "$JOBS"}
BIN="$BUILD/bench/bench_se_e2_a"

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2
JSONL="$(mktemp)"
trap 'rm -f "$JSONL"' EXIT

# Percentage of all CPUs busy over one second, from /proc/stat.
cpu_busy() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

# Waits (up to WAIT_IDLE s) until under 15% of the CPUs are busy; echoes the last reading.
wait_idle() {
  local busy deadline=$(( SECONDS + WAIT_IDLE ))
  busy=$(cpu_busy)
  while (( busy >= 15 && SECONDS < deadline )); do sleep 4; busy=$(cpu_busy); done
  echo "$busy"
}

# run LABEL PRECISION THREADS MODE [ENV...]
run() {
  local label=$1 precision=$2 threads=$3 mode=$4; shift 4
  local busy; busy=$(wait_idle)
  echo "== $label: $mode, $precision, $threads thread(s) (CPUs busy beforehand: $busy%)" >&2
  env "$@" OMP_NUM_THREADS="$threads" "$BIN" --steps "$STEPS" --warmup "$WARMUP" --threads "$threads" \
    --precision "$precision" --mode "$mode" |
    python3 -c 'import json,sys; [print(json.dumps({**json.loads(l), "label": sys.argv[1], "busy_before": int(sys.argv[2])})) for l in sys.stdin if l.strip()]' \
      "$label" "$busy" | tee -a "$JSONL" >&2
}

CONFIGS=("default float64 2" "default float64 1" "default float32 2")
[[ -n "$EXTRA_BLAS_DIR" ]] && CONFIGS+=("extra float64 2" "extra float64 1")
for config in "${CONFIGS[@]}"; do
  read -r which precision threads <<<"$config"
  envs=()
  label="system BLAS"
  if [[ "$which" == extra ]]; then envs=("LD_LIBRARY_PATH=$EXTRA_BLAS_DIR"); label="EXTRA_BLAS_DIR"; fi
  for mode in train prepare infer; do run "$label" "$precision" "$threads" "$mode" "${envs[@]}"; done
done

# Which libblas.so.3 libtorch loads (Debian's libtorch uses the libblas.so.3 alternative).
blas_of() { env "$@" ldd "$BIN" | awk '/libblas\.so\.3/ {print $3}' | xargs -r readlink -f; }
blas_pkg() { dpkg -S "$1" 2>/dev/null | cut -d: -f1 | head -1 || true; }
SYSTEM_BLAS="$(blas_of)"
SYSTEM_BLAS_PKG="$(blas_pkg "$SYSTEM_BLAS")"
EXTRA_BLAS=""
[[ -n "$EXTRA_BLAS_DIR" ]] && EXTRA_BLAS="$(blas_of LD_LIBRARY_PATH="$EXTRA_BLAS_DIR")"

TORCH_PKG="$(dpkg-query -W -f='${Package} ${Version}' libtorch-dev 2>/dev/null || true)"
COMMIT="$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
mkdir -p "$(dirname "$OUT")"

export JSONL OUT BIN STEPS WARMUP SYSTEM_BLAS SYSTEM_BLAS_PKG EXTRA_BLAS EXTRA_BLAS_DIR TORCH_PKG COMMIT
export CPU_MODEL="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
export CPU_COUNT="$(nproc)"
export CORES="$(lscpu | awk -F: '/^Core\(s\) per socket/ {c=$2} /^Socket\(s\)/ {s=$2} END {print c*s}')"
export MEM_GIB="$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
export OS_NAME="$(. /etc/os-release && echo "$PRETTY_NAME")"
export KERNEL="$(uname -r)"
export CXX_VERSION="$(grep -m1 '^CMAKE_CXX_COMPILER:' "$BUILD/CMakeCache.txt" | cut -d= -f2 | xargs -r -I{} sh -c '{} --version | head -1')"
export DATE_UTC="$(date -u '+%Y-%m-%d %H:%M UTC')"
export SCRIPT_CMD="bash bench/run_se_e2_a.sh ${1:-}"
export WAIT_POLICY="${OMP_WAIT_POLICY:-}"
python3 - <<'EOF'
import json, os

rows = [json.loads(l) for l in open(os.environ["JSONL"]) if l.strip()]
e = os.environ
by = {}
for r in rows:
    by[(r["label"], r["precision"], r["threads"], r["bench"])] = r
keys = []
for r in rows:
    k = (r["label"], r["precision"], r["threads"])
    if k not in keys:
        keys.append(k)

def blas_name(label):
    if label == "system BLAS":
        pkg = e["SYSTEM_BLAS_PKG"]
        return f"system `{os.path.basename(e['SYSTEM_BLAS'])}`" + (f" ({pkg})" if pkg else "")
    return f"`{e['EXTRA_BLAS']}`"

ncpu = int(e["CPU_COUNT"])
torch_version = rows[0]["torch_version"] if rows else "?"
out = []
w = out.append
w("# se_e2_a water: training step and energy+force evaluation")
w("")
w("Generated by `bench/run_se_e2_a.sh` (source: `bench/bench_se_e2_a.cpp`). Do not edit by hand; rerun.")
w("")
w("Workload: DeePMD-kit's water (`examples/data/water/data_0`, 192 atoms: 64 O, 128 H, periodic "
  "12.44 A cube), batch 1, frames taken in turn; model as DeePMD-kit's `examples/water/se_e2_a`: "
  "se_e2_a sel [46, 92], rcut 6, rcut_smth 0.5, neuron [25, 50, 100], axis_neuron 16, type_one_side, "
  "resnet_dt false; fitting [240, 240, 240] resnet_dt true; statistics and out_bias from the data. "
  f"{rows[0]['edges'] if rows else '?'} neighbour pairs within 6 A in frame 0.")
w("")
w("- **train**: prepare (neighbour list, model input) + evaluate with `create_graph` + 'ener' loss "
  "with DeePMD-kit's default prefactors (start_pref_e 0.02, start_pref_f 1000, no virial) + backward + Adam step.")
w("- **prepare**: the neighbour list and model input alone (included in train and inference).")
w("- **inference**: prepare + evaluate without `create_graph`: energy, forces and virial of one frame.")
w(f"- Each: {e['WARMUP']} untimed warm-up runs, then the median of {e['STEPS']} timed runs; each in its own "
  "process, so peak RSS (`ru_maxrss`, includes reading the data and the statistics) is per measurement.")
w("")
w("## Machine")
w("")
w(f"- date: {e['DATE_UTC']}")
w(f"- CPU: {e['CPU_MODEL']}, {e['CORES']} cores ({e['CPU_COUNT']} online CPUs)")
w(f"- memory: {e['MEM_GIB']} GiB")
w(f"- OS: {e['OS_NAME']}, kernel {e['KERNEL']}")
w(f"- compiler: {e['CXX_VERSION']}")
w(f"- libtorch: {e['TORCH_PKG'] or 'not from a Debian package'} (TORCH_VERSION {torch_version})")
w(f"- BLAS loaded by libtorch: `{e['SYSTEM_BLAS']}`" + (f" from {e['SYSTEM_BLAS_PKG']}" if e['SYSTEM_BLAS_PKG'] else ""))
if e["EXTRA_BLAS"]:
    w(f"- extra rows: `LD_LIBRARY_PATH={e['EXTRA_BLAS_DIR']}` loads `{e['EXTRA_BLAS']}`")
w(f"- git commit: {e['COMMIT']}")
w(f"- command: `{e['SCRIPT_CMD'].strip()}` (STEPS={e['STEPS']} WARMUP={e['WARMUP']}), "
  f"with OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS equal to the thread count"
  + (f", OMP_WAIT_POLICY={e['WAIT_POLICY']}" if e["WAIT_POLICY"] else "") + "; per run: "
  f"`{e['BIN']} --steps {e['STEPS']} --warmup {e['WARMUP']} --threads T --precision P --mode M`")
w("")
w("## Results")
w("")
w("| who | BLAS | precision | threads | train s/step (median) | train steps/s | train min-max s | "
  "prepare ms | inference s/frame | inference frames/s | peak RSS train / inference MB | other load before / during, CPUs |")
w("|---|---|---|---|---|---|---|---|---|---|---|---|")
for k in keys:
    label, precision, threads = k
    t = by.get(k + ("train",)); p = by.get(k + ("prepare",)); i = by.get(k + ("infer",))
    busy = max(r["busy_before"] for r in (t, p, i) if r)
    cells = ["atomforge", blas_name(label), precision, str(threads)]
    cells += [f"{t['median_s']:.3f}", f"{t['per_s']:.2f}", f"{t['min_s']:.3f}-{t['max_s']:.3f}"] if t else ["-"] * 3
    cells += [f"{1000 * p['median_s']:.1f}"] if p else ["-"]
    cells += [f"{i['median_s']:.3f}", f"{i['per_s']:.2f}"] if i else ["-"] * 2
    cells += [" / ".join(f"{r['peak_rss_mb']:.0f}" if r else "-" for r in (t, i))]
    during = max(r["others_cpus"] for r in (t, p, i) if r)
    cells += [f"{busy * ncpu / 100:.2f} / {during:.2f}"]
    w("| " + " | ".join(cells) + " |")
w("| DeePMD-kit PyTorch backend, **quoted from issue 7, not measured by us** (Debian 12, 2 cores, "
  "Debian torch 1.13, 2026-11-23) | ? | float64 | 2 | 0.72 | 1.39 | - | - | ~0.5 | ~2 | 0.85 GB peak | - |")
w("")
w("\"Other load\" is how many CPUs other processes kept busy, in the second before a run (all processes, "
  "the runs were started when it was low if WAIT_IDLE allowed) and on average during its timed steps "
  "(the machine's busy time minus the benchmark's own CPU time); the largest of a row's three runs. "
  f"On this {ncpu}-CPU machine, anything much above 0.1 during the runs means the timings of that row "
  "are contended and too slow, the 2-thread ones most (libtorch's OpenMP threads wait for each other).")
w("")
with open(e["OUT"], "w") as f:
    f.write("\n".join(out) + "\n")
print(f"wrote {e['OUT']}")
EOF
