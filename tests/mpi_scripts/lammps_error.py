"""python lammps_error.py [on-rank]: a model failure inside the LAMMPS loop.

The exception cannot propagate through LAMMPS's C callback. Under ``mpirun -n 2`` (failure
on rank 1) the callback must print it with its rank and end every rank (MPI_Abort)
instead of leaving rank 0 waiting; on one rank it must stop the run and re-raise.
"""

import sys

import torch
from common import ammonia_cell, tiny_model
from mpi4py import MPI

from legato_ase.parallel.lammps import run_lammps


class FailingOnRank1(torch.nn.Module):
    """The real model, except that its third evaluation on FAILING_RANK raises."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0
        self.species, self.r_max = model.species, model.r_max

    def evaluate(self, graph, **kwargs):
        self.calls += 1
        if MPI.COMM_WORLD.rank == FAILING_RANK and self.calls == 3:
            raise FloatingPointError(f"deliberate model failure on rank {FAILING_RANK}")
        return self.model.evaluate(graph, **kwargs)

    @property
    def device(self):
        return self.model.device


FAILING_RANK = int(sys.argv[1]) if len(sys.argv) > 1 else 1
model = FailingOnRank1(tiny_model())
try:
    run_lammps(ammonia_cell(), model, "fix 1 all nve\nrun 100")
except FloatingPointError as err:  # only reachable on a single rank
    print(f"re-raised after {model.calls} force calls: {err}", flush=True)
    sys.exit(5)
print(f"rank {MPI.COMM_WORLD.rank} finished the run", flush=True)
