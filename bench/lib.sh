# Shared by the bench/run_*.sh scripts: machine load and facts. Source it; do not run it.

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

# Exports what the reports print about the machine (BUILD must be set).
export_machine_facts() {
  export TORCH_PKG="$(dpkg-query -W -f='${Package} ${Version}' libtorch-dev 2>/dev/null || true)"
  export COMMIT="$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
  export CPU_MODEL="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  export CPU_COUNT="$(nproc --all)"  # plain nproc obeys OMP_NUM_THREADS
  export CORES="$(lscpu | awk -F: '/^Core\(s\) per socket/ {c=$2} /^Socket\(s\)/ {s=$2} END {print c*s}')"
  export MEM_GIB="$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
  export OS_NAME="$(. /etc/os-release && echo "$PRETTY_NAME")"
  export KERNEL="$(uname -r)"
  export CXX_VERSION="$(grep -m1 '^CMAKE_CXX_COMPILER:' "$BUILD/CMakeCache.txt" | cut -d= -f2 | xargs -r -I{} sh -c '{} --version | head -1')"
  export DATE_UTC="$(date -u '+%Y-%m-%d %H:%M UTC')"
}

# train_and_freeze BIN MODEL_JSON DIR STEPS [LEARNING_RATE_JSON]: trains the model section
# MODEL_JSON (a bench/models file) for STEPS steps on the bundled water frames with
# examples/water/input.json's learning rate (keys of LEARNING_RATE_JSON replaced) and loss, then
# freezes it to DIR/model.pth. Run from the repository root.
train_and_freeze() {
  local bin=$1 model=$2 dir=$3 steps=$4 lr=${5:-"{}"}
  mkdir -p "$dir"
  python3 - "$model" "$dir/input.json" "$steps" "$PWD/examples/data/water" "$lr" <<'PY'
import json, sys
model, out, steps, water, lr = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
base = json.load(open("examples/water/input.json"))
base["model"] = json.load(open(model))
base["learning_rate"].update(lr)
t = base["training"]
t["training_data"]["systems"] = [water + "/data_0"]
t["validation_data"] = {"systems": [water + "/data_3"], "batch_size": 1, "numb_btch": 1}
t.update(numb_steps=steps, save_freq=steps, disp_freq=max(1, steps // 10), disp_training=False)
json.dump(base, open(out, "w"), indent=1)
PY
  "$bin" train "$dir/input.json" -o "$dir/train" > "$dir/train.log" 2>&1 || { cat "$dir/train.log" >&2; return 1; }
  "$bin" freeze "$dir/train/model.ckpt.pt" -o "$dir/model.pth" >> "$dir/train.log" 2>&1 || { cat "$dir/train.log" >&2; return 1; }
}

# measure_steps DRIVER MODEL_PTH BOX STEPS DIR: runs STEPS NVE steps (0.5 fs, from 300 K) of the
# box BOX.extxyz with `atomforge md` (DRIVER md) or BOX.data with LAMMPS (DRIVER lammps) in DIR,
# under bench/measure_run.py; prints its JSON line with s_per_step (bench/step_time.py).
# Needs BIN, and for LAMMPS LMP, PLUGIN and ELEMENTS (pair_coeff's element per type); MEM_LIMIT_GIB
# and RUN_TIMEOUT_S.
measure_steps() {
  local driver=$1 model=$2 box=$3 steps=$4 dir=$5
  mkdir -p "$dir"
  if [[ $driver == md ]]; then
    cat > "$dir/md.json" <<JSON
{"model": "$model", "start": {"file": "$box.extxyz"}, "ensemble": {"type": "nve"},
 "initial_temperature": 300, "timestep_fs": 0.5, "steps": $steps, "thermo_every": $steps, "trajectory": {"every": 0}}
JSON
    python3 bench/measure_run.py --limit-gib "$MEM_LIMIT_GIB" --timeout-s "$RUN_TIMEOUT_S" --log "$dir/log" \
      -- "$BIN" md "$dir/md.json" -o "$dir/out"
  else
    # neighbor 1.0: the skin of atomforge md's default; LAMMPS' ghost shell is the model's
    # receptive field plus the skin.
    cat > "$dir/in.lmp" <<LMP
units metal
atom_style atomic
boundary p p p
read_data $box.data
plugin load $PLUGIN
pair_style atomforge $model
pair_coeff * * $ELEMENTS
neighbor 1.0 bin
velocity all create 300 1 mom yes rot no dist gaussian
timestep 0.0005
thermo $steps
fix 1 all nve
run $steps
LMP
    python3 bench/measure_run.py --limit-gib "$MEM_LIMIT_GIB" --timeout-s "$RUN_TIMEOUT_S" --log "$dir/log" \
      --cwd "$dir" -- "$LMP" -in in.lmp -log log.lammps
  fi | python3 bench/step_time.py "$driver" "$steps" "$dir/log"
}
