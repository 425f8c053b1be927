#!/usr/bin/env python3
"""Runs one command for a benchmark and prints one JSON line about it: exit code, wall time, peak
resident memory (the kernel's ru_maxrss of the process, or the largest VmRSS seen), how many CPUs
other processes kept busy meanwhile (others_cpus: the machine's busy time from /proc/stat minus the
command's own CPU time, per second of wall time), and whether it was stopped for memory or time.

    measure_run.py --limit-gib 18 --log run.log [--timeout-s S] [--cwd DIR] -- COMMAND ARGS...

The command's stdout and stderr go to --log, each line prefixed with the seconds since the start
and a tab, so that a program's progress lines time its steps. The process is killed once its
resident memory passes --limit-gib (checked every 0.1 s): on a machine without swap the kernel's
OOM killer could otherwise pick another process, and with swap the machine would crawl. Run
binaries directly (not through a shell), so that the memory watched is theirs.
"""
import argparse
import json
import os
import signal
import subprocess
import threading
import time


def resident_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def busy_seconds():
    """CPU time all CPUs spent not idle since boot."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit-gib", type=float, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--timeout-s", type=float, default=0, help="0: none")
    p.add_argument("--cwd")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command")

    start, busy_start = time.monotonic(), busy_seconds()
    proc = subprocess.Popen(command, cwd=a.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, errors="replace")

    def copy_lines():
        with open(a.log, "w") as log:
            for line in proc.stdout:
                log.write(f"{time.monotonic() - start:.4f}\t{line}")
                log.flush()

    reader = threading.Thread(target=copy_lines)
    reader.start()
    limit_kib = a.limit_gib * 1048576
    seen_kib, stopped = 0, None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        rss = resident_kib(proc.pid)
        seen_kib = max(seen_kib, rss)
        if stopped is None and rss > limit_kib:
            stopped = "memory"
        elif stopped is None and a.timeout_s > 0 and time.monotonic() - start > a.timeout_s:
            stopped = "time"
        if stopped:
            os.kill(proc.pid, signal.SIGKILL)
        time.sleep(0.1)
    wall, busy = time.monotonic() - start, busy_seconds() - busy_start
    others = max(0.0, busy - usage.ru_utime - usage.ru_stime) / wall if wall > 0 else 0.0
    reader.join()
    print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "wall_s": round(wall, 3),
                      "peak_rss_mb": round(max(usage.ru_maxrss, seen_kib) / 1024, 1),
                      "others_cpus": round(others, 2), "stopped": stopped, "limit_gib": a.limit_gib}))


if __name__ == "__main__":
    main()
