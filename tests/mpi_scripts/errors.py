"""mpirun -n 2 python errors.py CASE: an error on one rank must end every rank.

CASE "species": an atom of an unknown species sits in rank 1's domain only; every rank
must raise (collectively) and the script exits with code 3 on each rank.
CASE "uncaught": rank 1 raises outside the calculator; the abort hook ends all ranks.
"""

from mpi4py import MPI  # noqa: F401

import sys

from common import ammonia_cell, tiny_model

from legato_ase.parallel import ParallelLegatoCalculator, install_abort_hook


def species_case(calc):
    atoms = ammonia_cell().repeat((2, 1, 1))
    atoms.wrap()
    # Grid (2, 1, 1) on a 17.3 Å axis with r_max 4 Å: rank 0's domain and halo cover the
    # fractions [-0.23, 0.73); an atom near 0.75 is seen by rank 1 only.
    stranger = int(abs(atoms.get_scaled_positions()[:, 0] - 0.75).argmin())
    atoms[stranger].symbol = "O"
    try:
        atoms.calc = calc
        atoms.get_potential_energy()
    except ValueError as err:
        print(f"rank {calc.comm.rank} caught: {err}", flush=True)
        sys.exit(3)


def uncaught_case(calc):
    install_abort_hook(calc.comm)
    atoms = ammonia_cell()
    atoms.calc = calc
    if calc.comm.rank == 1:
        raise RuntimeError("deliberate failure on rank 1")
    atoms.get_potential_energy()  # rank 0 would wait here for ever without the hook


calc = ParallelLegatoCalculator(tiny_model(), grid=(MPI.COMM_WORLD.size, 1, 1))
{"species": species_case, "uncaught": uncaught_case}[sys.argv[1]](calc)
