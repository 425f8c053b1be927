#!/usr/bin/env bash
# Distillation speed and accuracy: trains a large water teacher (bench/models/water-TEACHER.json,
# by default se_e2_a with DeePMD-kit's water example sizes) briefly, runs `atomforge distill` with examples/distill/water.json's se_e2_a student on it
# (shortened: EXPLORE_STEPS, STUDENT_STEPS), and writes bench/results/distill.md with report.json's
# frame counts, accuracies and teacher/student seconds per frame, plus an independent measurement:
# `atomforge md` s/step of teacher.pth and student.pth on the same 192-atom water frame.
#
#   bash bench/run_distill.sh [BUILD_DIR]       (BUILD_DIR defaults to build/)
#   QUICK=1 bash bench/run_distill.sh build     (a check of the script, /tmp/distill-quick.md)
#
# Environment: TEACHERS="se_e2_a" (any of se_e2_a painn dimenet; se_e2_a has DeePMD-kit's water
#   example sizes, 1M parameters) TEACHER_STEPS=600
#   TEACHER_LR='{"stop_lr": 0.001}' (replaces keys of examples/water's learning_rate)
#   EXPLORE_STEPS=200 (6 runs: frame 0 of data_0 and data_3 at 300, 400, 500 K; 20 frames each)
#   STUDENT_STEPS=2000
#   TIMING_REPEATS=20 (report.json's timing) MAX_FORCE=20 (select.max_force, eV/A) MD_STEPS=20 THREADS=2 WAIT_IDLE=300 RUN_TIMEOUT_S=3600
#   MEM_LIMIT_GIB (default 85% of MemAvailable) NO_BUILD=1 OUT=bench/results/distill.md
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${1:-build}"
if [[ "${QUICK:-0}" == 1 ]]; then
  : "${TEACHER_STEPS:=2}" "${EXPLORE_STEPS:=10}" "${STUDENT_STEPS:=20}" "${TIMING_REPEATS:=2}" "${MD_STEPS:=2}"
  # A 2-step teacher explores far from water: keep every frame.
  : "${WAIT_IDLE:=0}" "${OUT:=/tmp/distill-quick.md}" "${MAX_FORCE:=1e9}"
fi
TEACHERS="${TEACHERS:-se_e2_a}"
TEACHER_STEPS="${TEACHER_STEPS:-600}"
# A learning rate that stays high through the short run (the example's decays to 1e-4 by its end).
# The teacher's forces must be good enough for stable exploration at 500 K: painn
# (bench/models/water-painn.json) still had a 1.0 eV/A force error after 300 steps and its
# exploration blew up; it needs TEACHER_STEPS in the thousands.
TEACHER_LR="${TEACHER_LR:-{\"stop_lr\": 0.001\}}"
EXPLORE_STEPS="${EXPLORE_STEPS:-200}"
STUDENT_STEPS="${STUDENT_STEPS:-2000}"
TIMING_REPEATS="${TIMING_REPEATS:-20}"
MAX_FORCE="${MAX_FORCE:-20}"
MD_STEPS="${MD_STEPS:-20}"
THREADS="${THREADS:-2}"
WAIT_IDLE="${WAIT_IDLE:-300}"
RUN_TIMEOUT_S="${RUN_TIMEOUT_S:-3600}"
MEM_LIMIT_GIB="${MEM_LIMIT_GIB:-$(awk '/MemAvailable/ {printf "%.1f", 0.85 * $2 / 1048576}' /proc/meminfo)}"
OUT="${OUT:-bench/results/distill.md}"
WATER="$ROOT/examples/data/water"

if [[ "${NO_BUILD:-0}" != 1 ]]; then
  [[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
  cmake --build "$BUILD" --target atomforge
fi
BIN="$BUILD/src/cli/atomforge"
source bench/lib.sh
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS="$THREADS"
echo "libtorch intra-op threads: OMP_NUM_THREADS=$OMP_NUM_THREADS (OPENBLAS_NUM_THREADS=1)" >&2
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROWS="$WORK/rows.jsonl"
: > "$ROWS"
python3 bench/water_box.py "$WATER/data_0" 1 "$WORK/water" > /dev/null

for teacher in $TEACHERS; do
  dir="$WORK/$teacher"
  echo "== teacher $teacher: training $TEACHER_STEPS steps" >&2
  train_and_freeze "$BIN" "bench/models/water-$teacher.json" "$dir" "$TEACHER_STEPS" "$TEACHER_LR"
  python3 - "$dir/model.pth" "$WATER" "$EXPLORE_STEPS" "$STUDENT_STEPS" "$TIMING_REPEATS" "$MAX_FORCE" "$dir/distill.json" <<'EOF'
import json, sys
teacher, water, explore, student, repeats, max_force, out = sys.argv[1:3] + [int(v) for v in sys.argv[3:6]] + [float(sys.argv[6]), sys.argv[7]]
d = json.load(open("examples/distill/water.json"))
d["teacher"] = teacher
d["start"] = {"systems": [water + "/data_0", water + "/data_3"], "frames": [0]}
d["explore"].update(steps=explore, every=max(1, explore // 20))
d["select"].update(max_frames=0, max_force=max_force)
d["original_data"] = [water + "/data_3"]
d["timing_repeats"] = repeats
# The example's schedule (lr from 2e-3 to 1e-5) over the shorter run.
d["student"]["learning_rate"]["decay_steps"] = max(1, student // 40)
d["student"]["training"].update(numb_steps=student, save_freq=student, disp_freq=max(1, student // 20))
json.dump(d, open(out, "w"), indent=1)
EOF
  busy=$(wait_idle)
  echo "== distill from $teacher (CPUs busy beforehand: $busy%)" >&2
  run=$(python3 bench/measure_run.py --limit-gib "$MEM_LIMIT_GIB" --timeout-s "$RUN_TIMEOUT_S" --log "$dir/distill.log" \
    -- "$BIN" distill "$dir/distill.json" -o "$dir/out")
  echo "$run" >&2
  if [[ ! -f "$dir/out/report.json" ]]; then
    cut -f2- "$dir/distill.log" | tail -5 >&2
    python3 - "$teacher" "$run" "$dir/distill.log" >> "$ROWS" <<'EOF'
import json, sys
teacher, run, log = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
last = [l.split("\t", 1)[-1].strip() for l in open(log)][-1:] or ["no output"]
why = {"memory": "out of memory", "time": f"stopped after {run['wall_s']:.0f} s"}.get(run["stopped"], last[0])
print(json.dumps({"teacher": teacher, "error": why[:300]}))
EOF
    continue
  fi
  md=()
  for who in teacher student; do
    model="$dir/model.pth"
    [[ $who == student ]] && model="$dir/out/student.pth"
    busy_md=$(wait_idle)
    echo "== md $who of $teacher, $MD_STEPS steps (CPUs busy beforehand: $busy_md%)" >&2
    md+=("$(measure_steps md "$model" "$WORK/water" "$MD_STEPS" "$dir/md-$who")")
    echo "${md[-1]}" >&2
  done
  python3 - "$teacher" "$busy" "$run" "${md[@]}" "$dir/out/report.json" "$dir/train.log" "$dir/distill.log" >> "$ROWS" <<'EOF'
import json, re, sys
teacher, busy, run, md_t, md_s, report, train_log, distill_log = sys.argv[1:]
params = lambda path: [int(p) for p in re.findall(r"\((\d+) parameters", open(path).read())]
print(json.dumps({"teacher": teacher, "busy_before": int(busy), "run": json.loads(run), "md_teacher": json.loads(md_t),
                  "md_student": json.loads(md_s), "report": json.load(open(report)),
                  "teacher_parameters": params(train_log)[-1], "student_parameters": params(distill_log)[-1]}))
EOF
done

export_machine_facts
export ROWS OUT THREADS TEACHER_STEPS TEACHER_LR EXPLORE_STEPS STUDENT_STEPS TIMING_REPEATS MD_STEPS
export SCRIPT_CMD="bash bench/run_distill.sh ${1:-}" QUICK="${QUICK:-0}"
PYTHONPATH=bench python3 - <<'EOF'
from report import e, ncpu, head, rows, write
fmt = lambda v, f="{:.4g}": "-" if v is None else f.format(v)
out = head("Distillation: teacher vs student speed and accuracy, water", "bench/run_distill.sh", [
    f"Teacher: `bench/models/water-TEACHER.json` trained {e['TEACHER_STEPS']} steps on "
    f"`examples/data/water/data_0` with `examples/water/input.json`'s learning rate and loss, learning rate "
    f"keys `{e['TEACHER_LR']}` replaced (briefly: its cost is the point, but its molecular dynamics must stay stable). "
    "`atomforge distill` with `examples/distill/water.json` shortened: Langevin exploration with the "
    f"teacher from frame 0 of data_0 and of data_3 at 300, 400 and 500 K, {e['EXPLORE_STEPS']} steps "
    f"each, a frame every {max(1, int(e['EXPLORE_STEPS']) // 20)}; the example's se_e2_a student "
    f"(neuron [8, 16, 32], fitting [32, 32, 32]) trained {e['STUDENT_STEPS']} steps on the teacher's labels.",
    "",
    f"- **report.json s/frame**: `atomforge distill`'s own timing, neighbour list + evaluation of one "
    f"192-atom frame, median of {e['TIMING_REPEATS']} (`timing_repeats`).",
    f"- **md s/step**: measured here, not by distill: `atomforge md` NVE on frame 0 of data_0 (192 atoms), "
    f"{e['MD_STEPS']} steps after the first force evaluation, teacher.pth and student.pth each in its own process.",
    "- Accuracy: RMSE of the student against held-out teacher labels (teacher force RMS for scale), "
    "and of both against the DFT labels of `data_3` (`original_data`; the teacher is trained on data_0 only).",
    f"- libtorch intra-op threads: OMP_NUM_THREADS={e['THREADS']}, OPENBLAS_NUM_THREADS=1."])
w = out.append
w("| teacher | parameters teacher / student | frames train / valid | distill wall s | peak RSS MB | "
  "report.json s/frame teacher / student | speed ratio | md s/step teacher / student | md ratio | "
  "student faster | held-out student force RMSE / teacher force RMS, eV/A | data_3 force RMSE teacher / student, eV/A | "
  "data_3 energy RMSE teacher / student, meV/atom | other load before / during, CPUs |")
w("|" + "---|" * 14)
for r in rows():
    if "error" in r:
        w(f"| {r['teacher']} | distill failed: {r['error']} |" + " |" * 12)
        continue
    rep, t, s = r["report"], r["md_teacher"], r["md_student"]
    tim, held, orig = rep["timing"], rep["held_out"], rep.get("original_data", {})
    md_ratio = t["s_per_step"] / s["s_per_step"] if "s_per_step" in t and "s_per_step" in s else None
    faster = tim["speed_ratio"] > 1 and (md_ratio or 0) > 1
    og = lambda who, key, scale=1: fmt(orig[who][key] * scale if orig.get(who, {}).get(key) is not None else None)
    load = max(r["run"]["others_cpus"], t.get("others_cpus", 0), s.get("others_cpus", 0))
    w("| " + " | ".join([
        r["teacher"], f"{r['teacher_parameters']} / {r['student_parameters']}",
        f"{rep['frames']['train']} / {rep['frames']['valid']}", f"{r['run']['wall_s']:.0f}", f"{r['run']['peak_rss_mb']:.0f}",
        f"{fmt(tim['teacher_seconds_per_frame'])} / {fmt(tim['student_seconds_per_frame'])}", f"{tim['speed_ratio']:.2f}",
        f"{fmt(t.get('s_per_step'))} / {fmt(s.get('s_per_step'))}", fmt(md_ratio, "{:.2f}"),
        "yes" if faster else "**no**",
        f"{fmt(held['student_vs_teacher']['force_rmse'])} / {fmt(held['teacher_force_rms'])}",
        f"{og('teacher', 'force_rmse')} / {og('student', 'force_rmse')}",
        f"{og('teacher', 'energy_rmse_per_atom', 1000)} / {og('student', 'energy_rmse_per_atom', 1000)}",
        f"{r['busy_before'] * ncpu / 100:.2f} / {load:.2f}"]) + " |")
w("")
w(f"Student faster: both ratios (teacher time / student time) above 1. Other load: CPUs kept busy by other "
  f"processes before the distill run and during the runs (the largest); on this {ncpu}-CPU machine "
  "anything much above 0.1 means the times are contended.")
write(out)
EOF
