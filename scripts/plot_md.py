#!/usr/bin/env python3
"""Plots the outputs of `atomforge md` in OUTDIR: thermo.png (temperature and energies against
time), rdf.png (g(r) per element pair) and msd.png (MSD per element, with the fitted D), for the
tables that exist.

usage: plot_md.py OUTDIR
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    header, rows, comments = [], [], []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                comments.append(line[1:].strip())
                header = line[1:].split()
            elif line.strip():
                rows.append([float(x) for x in line.split()])
    columns = {name: [r[i] for r in rows] for i, name in enumerate(header)}
    return header, columns, comments


def thermo(out):
    header, c, _ = read(os.path.join(out, "thermo.out"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(c["time_fs"], c["T_K"])
    axes[0].set_xlabel("time (fs)")
    axes[0].set_ylabel("T (K)")
    for name in ("Etot_eV", "Econserved_eV"):
        axes[1].plot(c["time_fs"], c[name], label=name.replace("_eV", ""))
    axes[1].set_xlabel("time (fs)")
    axes[1].set_ylabel("energy (eV)")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "thermo.png"), dpi=120)


def rdf(out):
    header, c, _ = read(os.path.join(out, "rdf.out"))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in header[1:]:
        if name.startswith("g_"):
            ax.plot(c[header[0]], c[name], label=name[2:].replace("_", "-"))
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_xlabel("r (A)")
    ax.set_ylabel("g(r)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "rdf.png"), dpi=120)


def msd(out):
    header, c, comments = read(os.path.join(out, "msd.out"))
    d = {line.split()[0][2:]: line.split()[2] for line in comments if line.startswith("D_")}
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in header[1:]:
        group = name[len("msd_"):-len("_A2")]
        ax.plot(c["time_fs"], c[name], label=f"{group} (D = {float(d.get(group, 'nan')):.3g} A^2/fs)")
    ax.set_xlabel("time (fs)")
    ax.set_ylabel("MSD (A^2)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "msd.png"), dpi=120)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    out = argv[1]
    for name, plot in (("thermo.out", thermo), ("rdf.out", rdf), ("msd.out", msd)):
        if os.path.exists(os.path.join(out, name)):
            plot(out)
            print(os.path.join(out, name.replace(".out", ".png")))


if __name__ == "__main__":
    main(sys.argv)
