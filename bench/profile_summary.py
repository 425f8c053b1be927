#!/usr/bin/env python3
"""Summarise a libtorch profiler trace (bench_se_e2_a --profile PREFIX writes PREFIX.MODE.json).

Prints the operators with the largest self time (their time minus that of the operators they
called), with call counts and the share of all traced time. Standard library only.

    python3 bench/profile_summary.py /tmp/prof.train.json [--top 25]
"""
import argparse
import collections
import json


def self_times(events):
    """Self time per operator name, from complete ('X') events nested by thread."""
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            by_thread[e.get("tid")].append((float(e["ts"]), float(e["dur"]), e["name"]))
    totals = collections.defaultdict(float)
    counts = collections.Counter()
    wall = 0.0
    for spans in by_thread.values():
        spans.sort(key=lambda s: (s[0], -s[1]))
        stack = []  # [end, name, child_time]

        def close(entry):
            end, name, children, dur = entry
            totals[name] += dur - children
            if stack:
                stack[-1][2] += dur

        for ts, dur, name in spans:
            while stack and stack[-1][0] <= ts:
                close(stack.pop())
            if not stack:
                wall += dur
            stack.append([ts + dur, name, 0.0, dur])
            counts[name] += 1
        while stack:
            close(stack.pop())
    return totals, counts, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with open(args.trace) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    totals, counts, wall = self_times(events)
    all_self = sum(totals.values())
    print(f"traced top-level time {wall / 1e6:.3f} s, self time {all_self / 1e6:.3f} s")
    print(f"| operator | calls | self s | share |")
    print(f"|---|---|---|---|")
    for name, t in sorted(totals.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"| {name} | {counts[name]} | {t / 1e6:.3f} | {100 * t / all_self:.1f}% |")


if __name__ == "__main__":
    main()
