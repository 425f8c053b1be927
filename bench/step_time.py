#!/usr/bin/env python3
"""Reads measure_run.py's JSON line on stdin and the run's timestamped log, and prints the line
with s_per_step (and LAMMPS' mean ghost count) added, or an "error".

    ... | step_time.py md|lammps STEPS LOG

md: the time between `atomforge md`'s progress lines for step 0 (printed after the first force
evaluation) and step STEPS. lammps: "Loop time" / steps (LAMMPS' setup, with its first force
evaluation, is outside the loop).
"""
import json
import re
import sys


def main():
    driver, steps, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    r = json.loads(sys.stdin.read())
    lines = [l.rstrip("\n").split("\t", 1) for l in open(log) if "\t" in l]
    if r["stopped"] == "memory":
        r["error"] = "out of memory"
    elif r["stopped"] == "time":
        r["error"] = f"stopped after {r['wall_s']:.0f} s"
    elif r["rc"] != 0:
        r["error"] = f"exit code {r['rc']}: " + (lines[-1][1][:200] if lines else "no output")
    elif driver == "md":
        at = {int(m.group(1)): float(t) for t, l in lines for m in [re.match(r"md step (\d+)/", l)] if m}
        r["s_per_step"] = (at[steps] - at[0]) / steps
    else:
        text = "\n".join(l for _, l in lines)
        loop = re.search(r"Loop time of (\S+) on \d+ procs for (\d+) steps with (\d+) atoms", text)
        ghosts = re.search(r"Nghost:\s+(\S+)", text)
        r["s_per_step"] = float(loop.group(1)) / int(loop.group(2))
        r["ghosts"] = round(float(ghosts.group(1))) if ghosts else None
    r["steps"] = steps
    print(json.dumps(r))


if __name__ == "__main__":
    main()
