"""mpirun -n 2 python committee.py OUT.json: a committee split over ranks equals serial.

Also: the deviation guard raises the same UncertaintyError on every rank.
"""

import torch
from common import TINY, ammonia_cell, max_errors, out_path, triclinic, write_json
from mpi4py import MPI

import legato_ase
from legato_ase import LegatoCalculator, UncertaintyError

KEYS = ("energy", "energies", "forces", "stress", "force_deviation", "energy_deviation")
members = [
    legato_ase.build_model(TINY, species=["H", "N"], seed=s, dtype=torch.float64) for s in range(3)
]
atoms = triclinic(ammonia_cell())
serial = LegatoCalculator(members, max_edges=None).calculate_batch([atoms])[0]
parallel = LegatoCalculator(members, parallel=True).calculate_batch([atoms])[0]
errors = max_errors({k: serial[k] for k in KEYS}, {k: parallel[k] for k in KEYS})
guard = LegatoCalculator(
    members, parallel=True, max_force_deviation=0.5 * serial["max_force_deviation"]
)
try:
    guard.calculate_batch([atoms])
    raised = None
except UncertaintyError as err:
    raised = [err.step, err.atom, err.deviation]
report = {
    "size": MPI.COMM_WORLD.size,
    "errors": errors,
    "max_force_deviation": serial["max_force_deviation"],
    "raised": MPI.COMM_WORLD.allgather(raised),
}
if MPI.COMM_WORLD.rank == 0:
    write_json(out_path(), report)
