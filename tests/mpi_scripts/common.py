"""Shared by the scripts that tests/test_parallel*.py launch under mpirun."""

from __future__ import annotations

import glob
import json
import sys

import numpy as np
import torch

TINY = {
    "r_max": 4.0,
    "n_layers": 1,
    "n_scalar": 16,
    "n_tensor": 8,
    "two_body_mlp": [16],
    "avg_num_neighbors": 30,
    "energy_shift": {"H": -10.0, "N": -50.0},
}


def tiny_model():
    import legato_ase

    return legato_ase.build_model(TINY, species=["H", "N"], seed=0, dtype=torch.float64)


def ammonia_cell():
    from ase.io import read

    # parallel=False: a plain read on every rank (ASE read is collective under MPI).
    return read(sorted(glob.glob("/work/shared/data/*.extxyz"))[0], 0, parallel=False)


def triclinic(atoms):
    out = atoms.copy()
    skew = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.0, 1.5, 0.0]])
    out.set_cell(atoms.cell.array + skew, scale_atoms=True)
    out.positions += 3.3  # unwrapped positions
    return out


def clustered(atoms):
    """All atoms in one corner of a box twice as large: most domains are empty."""
    out = atoms.copy()
    out.wrap()
    out.set_cell(2.0 * atoms.cell.array, scale_atoms=False)
    return out


def comparison_cells() -> dict:
    """The cells every serial-vs-parallel comparison runs on."""
    ortho = ammonia_cell()
    molecule = ortho.copy()
    molecule.pbc, molecule.cell = False, np.zeros((3, 3))
    slab = ortho.copy()
    slab.pbc = [True, True, False]
    return {
        "orthorhombic": ortho,
        "triclinic": triclinic(ortho),
        "clustered": clustered(ortho),
        "molecule": molecule,
        "slab": slab,
    }


def max_errors(ref: dict, got: dict) -> dict:
    return {k: float(np.abs(np.asarray(ref[k]) - np.asarray(got[k])).max()) for k in ref}


def write_json(path: str, payload) -> None:
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=1)


def out_path() -> str:
    return sys.argv[1]
