#!/usr/bin/env bash
# The multi-task pre-training experiment: pre-train one se_e2_a trunk with seven heads on
# ../shared/data (GFN1-xTB and GFN-FF molecules, three EAM metals, DeePMD-kit's water and nopbc),
# compare every head with a single-task model of the same size and step budget, then fine-tune on
# GFN2-xTB molecules and Mishin-EAM copper with 5, 20 and all training frames per system versus
# training from scratch with the same steps. Writes docs/multitask-experiment.md, its JSON and
# docs/img/*.png. See docs/multitask-experiment.md for what is run and the results.
#
#   bash bench/multitask_experiment.sh [DATA_ROOT] [WORK]
#
#   DATA_ROOT  benchmark data (default: ../shared/data relative to the repository)
#   WORK       runs, inputs, logs, test outputs (default: /tmp/atomforge-exp); emptied first
#
# Environment: PT_STEPS (multi-task steps, 4000), FT_STEPS (fine-tuning steps, 800),
# ATOMFORGE (binary, build/src/cli/atomforge), LANES (runs at a time, 2), THREADS (threads per run, 1),
# NICE (nice level of training/testing, 10), RESUME=1 (keep WORK, skip runs already finished),
# REPORT_ONLY=1 (only re-make the report from WORK).
# Needs /usr/bin/python3 with numpy and matplotlib (Debian: python3-numpy python3-matplotlib).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${1:-$REPO/../shared/data}
WORK=${2:-/tmp/atomforge-exp}
PT_STEPS=${PT_STEPS:-4000}
FT_STEPS=${FT_STEPS:-800}
ATOMFORGE=${ATOMFORGE:-$REPO/build/src/cli/atomforge}
LANES=${LANES:-2}
THREADS=${THREADS:-1}
NICE=${NICE:-10}
PY=/usr/bin/python3
HELPER=$REPO/bench/multitask_experiment.py

die() { echo "multitask_experiment.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*"; }

# ---- checks --------------------------------------------------------------------------------
[[ -x $PY ]] || die "$PY is missing (Debian: apt-get install python3 python3-numpy python3-matplotlib)"
$PY "$HELPER" check || die "install the missing packages (apt-get install python3-numpy python3-matplotlib)"
[[ -x $ATOMFORGE ]] || die "atomforge binary not found at $ATOMFORGE (build it: bash scripts/build.sh, or set ATOMFORGE)"
[[ -d $DATA ]] || die "data root '$DATA' not found (first argument)"
DATA=$(cd "$DATA" && pwd)
for d in mf/gfn1 mf/gfnff mf/gfn2 metals/Cu_u3 metals/Cu_zhou metals/Ni_u3 metals/Cu_mishin1 \
         deepmd-examples/water deepmd-examples/nopbc; do
  [[ -d $DATA/$d ]] || die "'$DATA/$d' is missing: is '$DATA' the benchmark data root?"
done
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK/" in "$REPO/"*) die "WORK ($WORK) must be outside the repository" ;; esac

export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

write_meta() {  # machine, date, commit, settings -> WORK/meta.json
  local commit dirty
  commit=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
  dirty=$([[ -n $(git -C "$REPO" status --porcelain -- src CMakeLists.txt 2>/dev/null) ]] && echo True || echo False)
  $PY - "$WORK/meta.json" <<EOF
import json, sys
json.dump({
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "commit": "$commit", "dirty": $dirty,
  "binary": "${BINARY_SOURCE#$REPO/}", "binary_sha256": "$(sha256sum "$WORK/bin/atomforge" | cut -c1-16)",
  "binary_mtime": "$(date -u -r "$BINARY_SOURCE" +%Y-%m-%dT%H:%M:%SZ)", "data": "$DATA", "work": "$WORK",
  "cpu": """$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)""", "cores": $(getconf _NPROCESSORS_ONLN),
  "os": """$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)""",
  "threads": "OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=1", "parallel": $LANES, "nice": $NICE,
  "load_start": "$(cut -d' ' -f1-3 /proc/loadavg)",
  "nopbc_split": json.load(open("$WORK/data/summary.json"))["nopbc"],
}, open(sys.argv[1], "w"), indent=1)
EOF
}

# ---- one training run: train INPUT OUT [atomforge train options] ------------------------------
train() {
  local input=$1 out=$2; shift 2
  local name=${out#$WORK/runs/}
  if [[ ${RESUME:-0} == 1 && -f $out/.done ]]; then log "skip $name (done)"; return 0; fi
  rm -rf "$out"; mkdir -p "$out"
  log "train $name ($*)"
  local t0=$SECONDS rc=0
  nice -n "$NICE" "$ATOMFORGE" train "$input" -o "$out" "$@" >"$out/train.log" 2>&1 || rc=$?
  if [[ $rc != 0 ]]; then
    tail -20 "$out/train.log" >&2
    die "atomforge train failed (exit $rc) for $name: see $out/train.log"
  fi
  if grep -qiE '\bnan\b|\binf\b' "$out/lcurve.out"; then
    echo "WARNING: NaN/inf in $out/lcurve.out" | tee -a "$WORK/problems.txt" >&2
  fi
  echo "train $name $((SECONDS - t0))" >>"$WORK/times.txt"
  touch "$out/.done"
}

# ---- one test: test NAME MODEL [atomforge test options]; output in WORK/tests/NAME.txt ----------
test_model() {
  local name=$1 model=$2; shift 2
  local t0=$SECONDS rc=0
  mkdir -p "$WORK/tests"
  nice -n "$NICE" "$ATOMFORGE" test -m "$model" -n 1000000 -d "$WORK/tests/$name" "$@" \
    >"$WORK/tests/$name.txt" 2>"$WORK/tests/$name.err" || rc=$?
  [[ $rc == 0 ]] || { cat "$WORK/tests/$name.err" >&2; die "atomforge test failed (exit $rc) for $name"; }
  $PY "$HELPER" parse-test "$WORK/tests/$name.txt" >/dev/null || die "cannot parse $WORK/tests/$name.txt"
  echo "test $name $((SECONDS - t0))" >>"$WORK/times.txt"
}

plan() { $PY -c "import json,sys; p=json.load(open('$WORK/plan.json')); print($1)"; }

# Lane A: multi-task pre-training, its tests, then every fine-tuning run (they need its checkpoint).
lane_pretrain_and_finetune() {
  train "$WORK/inputs/pretrain.json" "$WORK/runs/pretrain"
  nice -n "$NICE" "$ATOMFORGE" show "$WORK/runs/pretrain/model.ckpt.pt" >"$WORK/runs/pretrain/show.txt" 2>&1 \
    || die "atomforge show failed on the pre-trained checkpoint"
  local task valid
  for task in $(plan "' '.join(p['tasks'])"); do
    valid=$(plan "' '.join(p['tasks']['$task']['valid'])")
    # shellcheck disable=SC2086
    test_model "mt_$task" "$WORK/runs/pretrain/model.ckpt.pt" --model-branch "$task" -s $valid
  done
  # A frozen head must give the checkpoint's numbers.
  nice -n "$NICE" "$ATOMFORGE" freeze "$WORK/runs/pretrain/model.ckpt.pt" --head gfn1 -o "$WORK/runs/pretrain/gfn1.pth" \
    >"$WORK/runs/pretrain/freeze.log" 2>&1 || die "atomforge freeze failed: see $WORK/runs/pretrain/freeze.log"
  # shellcheck disable=SC2046
  test_model "mt_gfn1_frozen" "$WORK/runs/pretrain/gfn1.pth" -s $(plan "' '.join(p['tasks']['gfn1']['valid'])")
  local target size branch
  for target in $(plan "' '.join(p['targets'])"); do
    branch=$(plan "p['targets']['$target']['branch']")
    valid=$(plan "' '.join(p['targets']['$target']['valid'])")
    for size in $(plan "' '.join(p['targets']['$target']['sizes'])"); do
      train "$WORK/inputs/ft_${target}_$size.json" "$WORK/runs/ft/$target/$size/finetune" \
        --finetune "$WORK/runs/pretrain/model.ckpt.pt" --model-branch "$branch"
      # shellcheck disable=SC2086
      test_model "ft_${target}_${size}_finetune" "$WORK/runs/ft/$target/$size/finetune/model.ckpt.pt" -s $valid
    done
  done
}

# Lane B: the single-task baselines, then the from-scratch runs.
lane_single_and_scratch() {
  local task valid target size
  for task in $(plan "' '.join(p['tasks'])"); do
    valid=$(plan "' '.join(p['tasks']['$task']['valid'])")
    train "$WORK/inputs/single_$task.json" "$WORK/runs/single/$task"
    # shellcheck disable=SC2086
    test_model "single_$task" "$WORK/runs/single/$task/model.ckpt.pt" -s $valid
  done
  for target in $(plan "' '.join(p['targets'])"); do
    valid=$(plan "' '.join(p['targets']['$target']['valid'])")
    for size in $(plan "' '.join(p['targets']['$target']['sizes'])"); do
      train "$WORK/inputs/ft_${target}_$size.json" "$WORK/runs/ft/$target/$size/scratch"
      # shellcheck disable=SC2086
      test_model "ft_${target}_${size}_scratch" "$WORK/runs/ft/$target/$size/scratch/model.ckpt.pt" -s $valid
    done
  done
}

# ---- main ----------------------------------------------------------------------------------
if [[ ${REPORT_ONLY:-0} != 1 ]]; then
  T0=$SECONDS
  if [[ ${RESUME:-0} != 1 ]]; then
    rm -rf "${WORK:?}"/{bin,data,inputs,runs,tests,times.txt,problems.txt,plan.json,meta.json,lane_a.log,lane_b.log}
  fi
  log "data $DATA, work $WORK, $PT_STEPS multi-task steps, $FT_STEPS fine-tuning steps, $LANES lanes x $THREADS thread(s)"
  # A private copy of the binary: a rebuild of the build folder during the experiment must not
  # mix binaries between runs.
  mkdir -p "$WORK/bin"
  cp "$ATOMFORGE" "$WORK/bin/atomforge.tmp" && mv "$WORK/bin/atomforge.tmp" "$WORK/bin/atomforge"
  "$WORK/bin/atomforge" --help >/dev/null || die "the copy of $ATOMFORGE does not run (was it being linked?)"
  BINARY_SOURCE=$ATOMFORGE
  $PY "$HELPER" prepare-data "$DATA" "$WORK" >/dev/null
  $PY "$HELPER" write-inputs "$DATA" "$WORK" "$PT_STEPS" "$FT_STEPS"
  write_meta
  ATOMFORGE=$WORK/bin/atomforge
  if [[ $LANES -ge 2 ]]; then
    lane_pretrain_and_finetune >"$WORK/lane_a.log" 2>&1 &
    pid_a=$!
    lane_single_and_scratch >"$WORK/lane_b.log" 2>&1 &
    pid_b=$!
    rc_a=0; rc_b=0
    wait $pid_a || rc_a=$?
    wait $pid_b || rc_b=$?
    cat "$WORK/lane_a.log" "$WORK/lane_b.log"
    [[ $rc_a == 0 && $rc_b == 0 ]] || die "a lane failed (pre-train/fine-tune: $rc_a, single/scratch: $rc_b)"
  else
    lane_pretrain_and_finetune
    lane_single_and_scratch
  fi
  echo "total all $((SECONDS - T0))" >>"$WORK/times.txt"
  $PY - "$WORK/meta.json" <<EOF
import json, sys
m = json.load(open(sys.argv[1])); m["load_end"] = "$(cut -d' ' -f1-3 /proc/loadavg)"
json.dump(m, open(sys.argv[1], "w"), indent=1)
EOF
fi

# Sanity: the frozen gfn1 head reproduces the checkpoint's gfn1 numbers.
a=$($PY "$HELPER" parse-test "$WORK/tests/mt_gfn1.txt")
b=$($PY "$HELPER" parse-test "$WORK/tests/mt_gfn1_frozen.txt")
[[ $a == "$b" ]] || echo "WARNING: frozen gfn1 head differs from the checkpoint: $a vs $b" | tee -a "$WORK/problems.txt" >&2

$PY "$HELPER" report "$WORK" "$REPO"
[[ -s $WORK/problems.txt ]] && { echo "problems:"; cat "$WORK/problems.txt"; }
log "done: docs/multitask-experiment.md, docs/img/*.png (runs in $WORK)"
