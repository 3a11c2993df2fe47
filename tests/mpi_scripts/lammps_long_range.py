"""mpirun -n P python lammps_long_range.py OUT.json: LAMMPS mode with a long-range model.

LAMMPS owns the atoms; each rank spreads its local atoms' latent charges, the grid is
summed over ranks; the range-separated layer also takes the charges of ghost atoms from
their owners and returns dE/dq to them. Single points must equal the serial calculator to
round-off.
"""

import numpy as np
import torch
from ase import Atoms
from common import TINY, ammonia_cell, out_path, triclinic, write_json
from mpi4py import MPI

import legato_ase
from legato_ase import LegatoCalculator
from legato_ase.parallel.lammps import run_lammps


def _model(separated: bool):
    lr = {"sigma": 1.2, "grid_spacing": 0.6, "exclude_short_range": separated}
    settings = {**TINY, "long_range": lr}
    return legato_ase.build_model(settings, species=["H", "N"], seed=0, dtype=torch.float64)


def main():
    report = {}
    for layer, separated in (("full", False), ("separated", True)):
        _compare(_model(separated), layer, report)
    try:
        run_lammps(ammonia_cell(), _model(False), "run 0", halo="double")
        report["double_halo_error"] = None
    except ValueError as err:
        report["double_halo_error"] = str(err)
    if MPI.COMM_WORLD.rank == 0:
        write_json(out_path(), {"size": MPI.COMM_WORLD.size, "cases": report})


def _compare(model, layer: str, report: dict) -> None:
    serial = LegatoCalculator(model, max_edges=None)
    molecule = ammonia_cell()
    molecule.wrap()
    molecule.pbc, molecule.cell = False, np.zeros((3, 3))
    cases = [
        ("orthorhombic", ammonia_cell(), ("single",)),
        ("triclinic", triclinic(ammonia_cell()), ("single",)),
        ("molecule", molecule, ("single",)),
    ]
    for name, atoms, halos in cases:
        atoms.set_momenta(np.zeros((len(atoms), 3)))
        for halo in halos:
            res = run_lammps(atoms, model, "run 0", halo=halo)
            same = Atoms(res.symbols, positions=res.positions, cell=res.cell, pbc=res.pbc)
            ref = serial.calculate_batch([same])[0]
            errors = {
                "energy": abs(res.energy - ref["energy"]),
                "forces": float(np.abs(res.forces - ref["forces"]).max()),
            }
            if "stress" in ref:
                errors["stress"] = float(np.abs(res.stress - ref["stress"]).max())
            report[f"{name}/{halo}/{layer}"] = errors


main()
