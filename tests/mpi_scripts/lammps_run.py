"""mpirun -n P python lammps_run.py OUT.json: LAMMPS mode vs the serial calculator, and NVT.

Part 1: single-point energy, forces, stress for orthorhombic and triclinic cells with
both halo choices, and a molecule (no periodicity). Part 2: 50 NVT steps on all ranks;
rank 0 repeats them on one rank (MPI.COMM_SELF) and compares the final positions.
"""

import numpy as np
from ase import Atoms
from common import ammonia_cell, out_path, tiny_model, triclinic, write_json
from mpi4py import MPI

from legato_ase import LegatoCalculator
from legato_ase.parallel import SerialComm
from legato_ase.parallel.lammps import run_lammps

NVT = """
velocity all create 300 4928 dist gaussian loop geom
fix nvt all nvt temp 300 300 0.05
timestep 0.0005
thermo 10
run 50
"""


def molecule():
    atoms = ammonia_cell()
    atoms.wrap()
    atoms.pbc, atoms.cell = False, np.zeros((3, 3))
    return atoms


def single_points(model):
    serial, report = LegatoCalculator(model), {}
    cases = [
        ("orthorhombic", ammonia_cell(), ("single", "double")),
        ("triclinic", triclinic(ammonia_cell()), ("single", "double")),
        ("molecule", molecule(), ("single",)),  # shrink-wrapped LAMMPS boundaries
    ]
    for name, atoms, halos in cases:
        atoms.set_momenta(np.zeros((len(atoms), 3)))
        for halo in halos:
            res = run_lammps(atoms, model, "run 0", halo=halo)
            same = Atoms(res.symbols, positions=res.positions, cell=res.cell, pbc=res.pbc)
            ref = serial.calculate_batch([same])[0]
            report[f"{name}/{halo}"] = {
                "energy": abs(res.energy - ref["energy"]),
                "forces": float(np.abs(res.forces - ref["forces"]).max()),
            }
            if "stress" in ref:
                report[f"{name}/{halo}"]["stress"] = float(np.abs(res.stress - ref["stress"]).max())
    return report


def nvt(model):
    atoms = ammonia_cell()
    parallel = run_lammps(atoms, model, NVT, halo="single")
    report = {"temperature_K": parallel.thermo["temp"], "n_callbacks": parallel.n_callbacks}
    if MPI.COMM_WORLD.rank == 0:
        serial = run_lammps(atoms, model, NVT, comm=SerialComm())
        report["max_position_difference"] = float(
            np.abs(parallel.positions - serial.positions).max()
        )
        report["energy_difference"] = abs(parallel.energy - serial.energy)
    return report


def main():
    model = tiny_model()
    report = {"size": MPI.COMM_WORLD.size, "single_points": single_points(model), "nvt": nvt(model)}
    if MPI.COMM_WORLD.rank == 0:
        write_json(out_path(), report)


main()
