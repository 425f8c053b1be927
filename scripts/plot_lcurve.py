#!/usr/bin/env python3
"""Plots validation (or training) RMSE columns of one or more lcurve.out files against step.

usage: plot_lcurve.py OUT.png LABEL=PATH/lcurve.out [LABEL=PATH ...]
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path) as f:
        header = f.readline().lstrip("#").split()
        rows = [list(map(float, line.split())) for line in f if line.strip() and not line.startswith("#")]
    return header, rows


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out, runs = argv[1], [a.split("=", 1) for a in argv[2:]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, path in runs:
        header, rows = read(path)
        steps = [r[0] for r in rows]
        for ax, quantity in zip(axes, ("rmse_e", "rmse_f")):
            for i, name in enumerate(header):
                if name.startswith(quantity + "_val") or (name.startswith(quantity + "_trn") and quantity + "_val" not in " ".join(header)):
                    suffix = name[len(quantity) + 4:].lstrip("_")
                    ax.plot(steps, [r[i] for r in rows], label=f"{label} {suffix}".strip())
    for ax, title in zip(axes, ("energy RMSE per atom (eV)", "force RMSE (eV/A)")):
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main(sys.argv)
