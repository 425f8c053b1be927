#!/usr/bin/env python3
"""Writes an R x R x R replica of frame 0 of a DeePMD-kit npy system with an orthorhombic box
(e.g. examples/data/water/data_0: 192 atoms, so R = 2 gives 1536 and R = 4 gives 12288) as
PREFIX.extxyz (an `atomforge md` start frame) and PREFIX.data (LAMMPS `read_data`, atom_style
atomic, LAMMPS type k = the k-th element of type_map.raw), the same wrapped coordinates in both.

    water_box.py SYSTEM_DIR R PREFIX [--labels]

With --labels the extxyz also carries frame 0's labels for training: the energy times R^3 and the
forces tiled (exact for a replica of a periodic frame).

Plain Python (numpy is not required): the .npy files are read by their header.
"""
import ast
import struct
import sys

MASSES = {"H": 1.008, "O": 15.999}


def read_npy_row(path):
    """The first row of a 2-D (or the first value of a 1-D) little-endian float .npy array."""
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            sys.exit(f"{path}: not a .npy file")
        major = f.read(2)[0]
        (header_len,) = struct.unpack("<H" if major == 1 else "<I", f.read(2 if major == 1 else 4))
        header = ast.literal_eval(f.read(header_len).decode("latin1"))
        code = {"<f4": "f", "<f8": "d"}.get(header["descr"])
        if code is None or header["fortran_order"] or len(header["shape"]) not in (1, 2):
            sys.exit(f"{path}: expected a 1-D or 2-D C-order <f4 or <f8 array, got {header}")
        n = header["shape"][1] if len(header["shape"]) == 2 else 1
        return struct.unpack(f"<{n}{code}", f.read(n * struct.calcsize(code)))


def main():
    if len(sys.argv) not in (4, 5) or (len(sys.argv) == 5 and sys.argv[4] != "--labels"):
        sys.exit(__doc__)
    system, reps, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    labels = len(sys.argv) == 5
    coord = read_npy_row(f"{system}/set.000/coord.npy")
    box = read_npy_row(f"{system}/set.000/box.npy")
    types = [int(t) for t in open(f"{system}/type.raw").read().split()]
    names = open(f"{system}/type_map.raw").read().split()
    if any(abs(box[k]) > 1e-9 for k in (1, 2, 3, 5, 6, 7)):
        sys.exit(f"{system}: frame 0 has a non-orthorhombic box {box}")
    length = [box[0], box[4], box[8]]
    atoms = []
    for i, j, k in ((i, j, k) for i in range(reps) for j in range(reps) for k in range(reps)):
        for a, t in enumerate(types):
            x = [coord[3 * a + c] % length[c] + (i, j, k)[c] * length[c] for c in range(3)]
            atoms.append((t, x, a))
    big = [reps * l for l in length]
    source = f"frame 0 of {system} replicated {reps}x{reps}x{reps}"

    lattice = f"{big[0]:.10f} 0 0 0 {big[1]:.10f} 0 0 0 {big[2]:.10f}"
    force = read_npy_row(f"{system}/set.000/force.npy") if labels else None
    with open(prefix + ".extxyz", "w") as f:
        if labels:
            energy = read_npy_row(f"{system}/set.000/energy.npy")[0] * reps**3
            f.write(f'{len(atoms)}\nLattice="{lattice}" Properties=species:S:1:pos:R:3:forces:R:3 energy={energy:.10f} '
                    f'pbc="T T T" comment="{source}"\n')
        else:
            f.write(f'{len(atoms)}\nLattice="{lattice}" Properties=species:S:1:pos:R:3 pbc="T T T" comment="{source}"\n')
        for t, x, a in atoms:
            forces = "".join(f" {force[3 * a + c]:.10f}" for c in range(3)) if labels else ""
            f.write(f"{names[t]} {x[0]:.10f} {x[1]:.10f} {x[2]:.10f}{forces}\n")
    with open(prefix + ".data", "w") as f:
        f.write(f"{source}\n\n{len(atoms)} atoms\n{len(names)} atom types\n\n")
        for c, axis in enumerate("xyz"):
            f.write(f"0 {big[c]:.10f} {axis}lo {axis}hi\n")
        if any(n not in MASSES for n in names):
            sys.exit(f"{system}: masses known only for {sorted(MASSES)}, type_map has {names}")
        f.write("\nMasses\n\n" + "".join(f"{t + 1} {MASSES[n]}\n" for t, n in enumerate(names)))
        f.write("\nAtoms # atomic\n\n")
        for a, (t, x, _) in enumerate(atoms):
            f.write(f"{a + 1} {t + 1} {x[0]:.10f} {x[1]:.10f} {x[2]:.10f}\n")
    print(len(atoms))


if __name__ == "__main__":
    main()
