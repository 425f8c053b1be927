#!/usr/bin/env bash
# Multi-process training (issue 5): per-rank peak memory, time per step and collective payload of
# graph-parallel dimenet training on DeePMD-kit's water replicated R x R x R (R = 4: 12288
# atoms) at P = 1, 2, 4 ranks; and the payload of data and head parallelism (2 ranks) against
# what the parameter counts say it must be. This machine has 2 cores: 4 ranks are oversubscribed,
# so wall-clock scaling is not the point here; memory per rank and bytes are.
#
#   bash bench/run_distributed.sh [BUILD_DIR]          (BUILD_DIR defaults to build/)
#
# Environment: R=4, PS="1 2 4", STEPS=4, WAIT_IDLE=300, OUT=bench/results/distributed.md,
# QUICK=1 (R=1, PS="1 2", STEPS=2: a check of the script, not a measurement).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${1:-build}"
if [[ "${QUICK:-0}" == 1 ]]; then R=1 PS="1 2" STEPS=2; fi
R="${R:-4}" PS="${PS:-1 2 4}" STEPS="${STEPS:-4}" WAIT_IDLE="${WAIT_IDLE:-300}"
OUT="${OUT:-bench/results/distributed.md}"
export SCRIPT_CMD="bash bench/run_distributed.sh $* (R=$R PS=\"$PS\" STEPS=$STEPS)"
[[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" --target atomforge
BIN="$(cd "$BUILD" && pwd)/src/cli/atomforge"
source bench/lib.sh
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export ROWS="$WORK/rows.jsonl"
NATOMS=$(python3 bench/water_box.py examples/data/water/data_0 "$R" "$WORK/water" --labels)

# Runs `atomforge train INPUT` on N ranks (torchrun-style variables) into $WORK/NAME and prints
# one JSON row: ranks, s/step and payload (rank 0's log), peak RSS of every rank.
train_on() {
  local name="$1" ranks="$2" input="$3" port r
  local flags=()
  [[ "$name" == heads ]] && flags=(-v)  # every rank says what it holds
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  for ((r = 0; r < ranks; r++)); do
    RANK=$r WORLD_SIZE=$ranks MASTER_PORT=$port /usr/bin/time -f %M -o "$WORK/$name.rss.$r" \
      "$BIN" "${flags[@]}" train "$input" -o "$WORK/$name" > "$WORK/$name.log.$r" 2>&1 &
  done
  wait
  python3 - "$name" "$ranks" "$WORK" <<'PY'
import json, re, sys
name, ranks, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
log = open(f"{work}/{name}.log.0").read()
# The steady rate: the first step also builds the graph and faults in its memory.
step = re.search(r"; ([0-9.]+) s/step after the first", log) or re.search(r"\(([0-9.]+) s/step", log)
payload = re.search(r"collectives: ([0-9.]+) MB per training step", log)
params = re.search(r"\((\d+) parameters", log)
logs = "".join(open(f"{work}/{name}.log.{r}").read() for r in range(ranks))
held = [[int(x) for x in m] for m in re.findall(r"rank \d+: task '\w+', (\d+) parameters \(trunk (\d+), head (\d+)\)", logs)]
rss = [int(open(f"{work}/{name}.rss.{r}").read().split()[-1]) / 1048576 for r in range(ranks)]
if step is None:
    sys.exit(f"{name}: no step time in rank 0's log:\n{log}")
print(json.dumps({"name": name, "ranks": ranks, "s_per_step": float(step.group(1)),
                  "payload_mb": float(payload.group(1)) if payload else 0.0,
                  "parameters": int(params.group(1)) if params else 0, "held": held, "rss_gib": rss}))
PY
}

# Graph parallelism: one frame of NATOMS atoms, batch 1; the model is a small dimenet so that
# P = 1 fits this machine's memory.
for P in $PS; do
  python3 - "$WORK/water.extxyz" "$STEPS" "$P" > "$WORK/graph$P.json" <<'PY'
import json, sys
data, steps, p = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(json.dumps({
  "model": {"type_map": ["O", "H"],
            "descriptor": {"type": "dimenet", "rcut": 3.0, "features": 16, "layers": 2, "triplet_features": 8,
                           "basis_features": 4, "out_features": 16, "radial_basis": 6, "angular_basis": 7, "seed": 1},
            "fitting_net": {"neuron": [16, 16], "seed": 1}},
  "learning_rate": {"start_lr": 0.001, "stop_lr": 0.0001, "decay_steps": 100},
  "loss": {"start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1},
  "training": {"training_data": {"systems": [data], "batch_size": 1}, "numb_steps": steps, "seed": 1,
               "disp_freq": steps, "save_freq": steps, "disp_training": False, "parallel": {"graph": p}}}))
PY
  busy=$(wait_idle)
  echo "== dimenet, $NATOMS atoms, graph parallel P = $P (CPUs busy beforehand: $busy%)" >&2
  train_on "graph$P" "$P" "$WORK/graph$P.json" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r.update(mode="graph", busy=int(sys.argv[1]), atoms=int(sys.argv[2])); print(json.dumps(r))' "$busy" "$NATOMS" | tee -a "$ROWS" >&2
done

# Data parallelism: the README's water se_e2_a example model, batch 1 per rank; head
# parallelism: the bundled two-fidelity multi-task example, heads distributed over 2 ranks.
python3 - "$ROOT" "$STEPS" "$WORK" <<'PY'
import json, sys
root, steps, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
water = json.load(open(f"{root}/examples/water/input.json"))
water["training"].update(numb_steps=steps, disp_freq=steps, save_freq=steps, disp_training=False)
water["training"].pop("validation_data", None)
for key in ("training_data",):
    water["training"][key]["systems"] = [f"{root}/examples/data/water/data_0"]
json.dump(water, open(f"{work}/data.json", "w"))
mt = json.load(open(f"{root}/examples/multitask/pretrain.json"))
mt["training"].update(numb_steps=steps, disp_freq=steps, save_freq=steps, disp_training=False,
                      multi_task_mode="all", parallel={"heads": "distributed"})
for task in ("gfn1", "gfnff"):
    for split in ("training_data", "validation_data"):
        d = mt["training"]["data_dict"][task][split]
        d["systems"] = f"{root}/examples/data/mf/{task}/" + ("train" if split == "training_data" else "valid")
json.dump(mt, open(f"{work}/heads.json", "w"))
PY
for mode in data heads; do
  busy=$(wait_idle)
  echo "== $mode parallel, 2 ranks (CPUs busy beforehand: $busy%)" >&2
  train_on "$mode" 2 "$WORK/$mode.json" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r.update(mode=sys.argv[1], busy=int(sys.argv[2])); print(json.dumps(r))' "$mode" "$busy" | tee -a "$ROWS" >&2
done

export_machine_facts
export OUT NATOMS
python3 - <<'PY'
import os, sys
sys.path.insert(0, "bench")
import report

e = os.environ
rows = report.rows()
out = report.head(
    "Multi-process training: memory per rank, time per step, bytes communicated",
    "bench/run_distributed.sh",
    [f"Graph parallelism: a small dimenet (rcut 3 A, 16 features, 2 blocks, triplet width 8) trained on P "
     f"ranks on one frame of "
     f"DeePMD-kit's water replicated to {e['NATOMS']} atoms (labels: the frame's energy x replicas, forces tiled), "
     "batch 1, float64, one thread per rank (OMP_NUM_THREADS=1). Each rank of a P-rank group computes its "
     "1/P of the edges (messages, radial bases, every per-edge layer) and the triplets they start; node "
     "features stay whole on every rank (docs/distributed.md). s/step is the rate after the first step, "
     "which also builds the graph and faults in the run's memory (tens of seconds at P = 1 on some machines).",
     "",
     "**This machine has 2 cores**: with P = 4 the ranks share 2 cores (oversubscribed), so time per step "
     "shows the work per rank and the communication, not a wall-clock speed-up. The point of graph "
     "parallelism here is memory per rank.",
     "",
     "Payload = bytes rank 0 handed to all-reduce/broadcast per training step, averaged over the run "
     "(learning-curve rows and checkpoints not included). A ring all-reduce puts about 2 (P-1)/P times the "
     "payload on each link."])
w = out.append
w("## Graph parallelism (dimenet)")
w("")
w("| P (ranks) | atoms | s/step | peak RSS per rank (GiB) | payload per step (MB) | CPUs busy before |")
w("|---|---|---|---|---|---|")
for r in rows:
    if r["mode"] != "graph":
        continue
    rss = ", ".join(f"{x:.2f}" for x in r["rss_gib"])
    w(f"| {r['ranks']} | {r['atoms']} | {r['s_per_step']:.2f} | {rss} | {r['payload_mb']:.1f} | {r['busy']}% |")
w("")
w("## Data and head parallelism (2 ranks): payload computed from the parameter counts vs measured")
w("")
w("Data parallel: the water se_e2_a example (`examples/water/input.json`), batch 1 per rank; every step "
  "all-reduces every gradient: 8 bytes x parameters (+ one 8-byte flag per parameter tensor). Head parallel: "
  "the two-fidelity multi-task example with `heads: distributed` over 2 ranks (one task each): only the "
  "trunk's gradients cross ranks (a group of one rank reduces its head with nobody).")
w("")
w("| mode | parameters held per rank | computed per step (MB) | measured per step (MB) | s/step | peak RSS per rank (GiB) |")
w("|---|---|---|---|---|---|")
for r in rows:
    if r["mode"] == "data":
        held, computed = f"{r['parameters']}", 8 * r["parameters"] / 1e6
    elif r["mode"] == "heads":
        held = "; ".join(f"{t} (trunk {tr} + head {h})" for t, tr, h in r["held"])
        computed = 8 * r["held"][0][1] / 1e6 if r["held"] else float("nan")
    else:
        continue
    rss = ", ".join(f"{x:.2f}" for x in r["rss_gib"])
    w(f"| {r['mode']} | {held} | {computed:.3f} | {r['payload_mb']:.3f} | {r['s_per_step']:.2f} | {rss} |")
report.write(out)
PY
