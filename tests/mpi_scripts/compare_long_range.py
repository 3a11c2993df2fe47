"""mpirun -n P python compare_long_range.py OUT.json: long-range models, parallel vs serial.

Each rank spreads its own atoms' latent charges; the charge grid is summed over ranks
forward and backward. The range-separated layer (``exclude_short_range``) also needs the
charges of ghost atoms and returns dE/dq to their owners. Results must equal one serial
evaluation to round-off.
"""

from common import TINY, comparison_cells, max_errors, out_path, write_json
from mpi4py import MPI  # noqa: F401  (before ASE picks its world)

import legato_ase
from legato_ase import LegatoCalculator
from legato_ase.calculator import ParallelLegatoCalculator


def main():
    import torch

    size = MPI.COMM_WORLD.size
    root = MPI.COMM_WORLD.rank == 0
    cells = comparison_cells()
    cells.pop("slab")  # mixed periodicity: rejected by the layer (tested serially)
    grids = {"auto": None, "slabs": (size, 1, 1)}
    report = {}
    for layer, separated in (("full", False), ("separated", True)):
        lr = {"sigma": 1.2, "grid_spacing": 0.6, "exclude_short_range": separated}
        settings = {**TINY, "long_range": lr}
        model = legato_ase.build_model(settings, species=["H", "N"], seed=0, dtype=torch.float64)
        serial = LegatoCalculator(model, max_edges=None)
        for name, atoms in cells.items():
            ref = serial.calculate_batch([atoms])[0] if root else None
            for label, grid in grids.items():
                got = ParallelLegatoCalculator(model, grid=grid).calculate_batch([atoms])[0]
                if root:
                    report[f"{name}/{label}/{layer}"] = max_errors(ref, got)
    if root:
        write_json(out_path(), {"size": size, "cases": report})


main()
