"""mpirun -n 2 python lammps_error.py: a model failure on one rank inside the LAMMPS loop.

The exception cannot propagate through LAMMPS's C callback; the callback must print it
with its rank and end every rank (MPI_Abort) instead of leaving rank 0 waiting.
"""

import torch
from common import ammonia_cell, tiny_model
from mpi4py import MPI

from legato_ase.parallel.lammps import run_lammps


class FailingOnRank1(torch.nn.Module):
    """The real model, except that its third evaluation on rank 1 raises."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0
        self.species, self.r_max = model.species, model.r_max

    def evaluate(self, graph, **kwargs):
        self.calls += 1
        if MPI.COMM_WORLD.rank == 1 and self.calls == 3:
            raise FloatingPointError("deliberate model failure on rank 1")
        return self.model.evaluate(graph, **kwargs)

    @property
    def device(self):
        return self.model.device


run_lammps(ammonia_cell(), FailingOnRank1(tiny_model()), "fix 1 all nve\nrun 10")
print(f"rank {MPI.COMM_WORLD.rank} finished the run", flush=True)
