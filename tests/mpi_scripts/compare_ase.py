"""mpirun -n P python compare_ase.py OUT.json: parallel vs serial results on several cells."""

from mpi4py import MPI  # noqa: F401  (before ASE picks its world)

import numpy as np
from common import ammonia_cell, clustered, max_errors, out_path, tiny_model, triclinic, write_json

from legato_ase import LegatoCalculator
from legato_ase.parallel import ParallelLegatoCalculator


def cases():
    ortho = ammonia_cell()
    molecule = ortho.copy()
    molecule.pbc = False
    molecule.cell = np.zeros((3, 3))
    slab = ortho.copy()
    slab.pbc = [True, True, False]
    return {"orthorhombic": ortho, "triclinic": triclinic(ortho), "clustered": clustered(ortho),
            "molecule": molecule, "slab": slab}


def main():
    model = tiny_model()
    serial = LegatoCalculator(model)
    size = MPI.COMM_WORLD.size
    grids = {"auto": None, "slabs": (size, 1, 1)}  # slabs of 8.6/P Å: thinner than r_max at P=4
    report = {}
    for name, atoms in cases().items():
        ref = serial.calculate_batch([atoms])[0]
        for label, grid in grids.items():
            calc = ParallelLegatoCalculator(model, grid=grid)
            got = calc.calculate_batch([atoms])[0]
            owned = int(MPI.COMM_WORLD.allreduce(int(calc.evaluator.last_n_owned)))
            empty = int(MPI.COMM_WORLD.allreduce(int(calc.evaluator.last_n_owned == 0)))
            report[f"{name}/{label}"] = dict(max_errors(ref, got), n_owned_total=owned,
                                             empty_domains=empty)
    batch = ParallelLegatoCalculator(model).calculate_batch(list(cases().values()))
    for (name, atoms), got in zip(cases().items(), batch):
        report[f"{name}/batch"] = max_errors(serial.calculate_batch([atoms])[0], got)
    if MPI.COMM_WORLD.rank == 0:
        write_json(out_path(), {"size": size, "cases": report})


main()
