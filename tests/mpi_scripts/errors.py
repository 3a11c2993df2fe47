"""mpirun -n 2 python errors.py CASE: an uncaught error on rank 1 must end every rank.

Rank 1 raises outside the calculator while rank 0 enters a collective evaluation; the
abort hook ends all ranks. ``uncaught`` installs it by hand, ``automatic`` relies on
``LegatoCalculator(..., parallel=True)`` installing it, as a script written like the
README's would. (Input errors inside the evaluation: compare_ase.py.)
"""

import sys

from common import ammonia_cell, tiny_model
from mpi4py import MPI  # noqa: F401

from legato_ase import LegatoCalculator
from legato_ase.parallel import install_abort_hook


def uncaught_case(calc):
    install_abort_hook(calc.comm)
    automatic_case(calc)


def automatic_case(calc):
    atoms = ammonia_cell()
    atoms.calc = calc
    if calc.comm.rank == 1:
        raise RuntimeError("deliberate failure on rank 1")
    atoms.get_potential_energy()  # rank 0 would wait here for ever without the hook


calc = LegatoCalculator(tiny_model(), parallel=True, grid=(MPI.COMM_WORLD.size, 1, 1))
{"uncaught": uncaught_case, "automatic": automatic_case}[sys.argv[1]](calc)
