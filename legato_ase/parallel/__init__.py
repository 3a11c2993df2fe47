"""Domain-parallel evaluation: the ASE mode (every rank runs the same ASE script) and the
LAMMPS mode (LAMMPS distributes the atoms; our model provides the forces on every rank).

Both modes share one domain evaluation (:func:`evaluate_local`): owned atoms plus halo
atoms -> graph with edges from owned centres -> ``model.evaluate``.
"""

from .calculator import ParallelError, ParallelEvaluator, warn_if_ase_world_differs
from .comm import MPIComm, SerialComm, get_comm, install_abort_hook
from .device import select_device
from .domains import choose_grid, decompose, make_frame
from .evaluate import LocalResult, evaluate_local, local_edges

__all__ = [
    "LocalResult",
    "MPIComm",
    "ParallelError",
    "ParallelEvaluator",
    "SerialComm",
    "choose_grid",
    "decompose",
    "evaluate_local",
    "get_comm",
    "install_abort_hook",
    "local_edges",
    "make_frame",
    "run_lammps",
    "select_device",
    "warn_if_ase_world_differs",
]


def __getattr__(name):
    if name == "run_lammps":  # LAMMPS is optional: import it only when asked for
        from .lammps import run_lammps

        return run_lammps
    raise AttributeError(name)
