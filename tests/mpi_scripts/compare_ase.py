"""mpirun -n P python compare_ase.py OUT.json: parallel vs serial results on several cells."""

from common import ammonia_cell, comparison_cells, max_errors, out_path, tiny_model, write_json
from mpi4py import MPI  # noqa: F401  (before ASE picks its world)

from legato_ase import LegatoCalculator
from legato_ase.calculator import ParallelLegatoCalculator


def one_rank_input_error(model) -> dict:
    """An atom of unknown species seen by one rank only: every rank must raise it."""
    size = MPI.COMM_WORLD.size
    atoms = ammonia_cell().repeat((size, 1, 1))
    atoms.wrap()
    # Slabs of width 1/size; the halo reaches 4 Å / (8.65·size Å) < 0.5/size into the
    # neighbours, so an atom at the centre of rank 1's slab is in no other rank's halo.
    stranger = int(abs(atoms.get_scaled_positions()[:, 0] - 1.5 / size).argmin())
    atoms[stranger].symbol = "O"
    try:
        ParallelLegatoCalculator(model, grid=(size, 1, 1)).calculate_batch([atoms])
    except ValueError as err:
        return {"raised": MPI.COMM_WORLD.gather(str(err))}
    return {"raised": MPI.COMM_WORLD.gather(None)}


def main():
    model = tiny_model()
    serial = LegatoCalculator(model)
    size = MPI.COMM_WORLD.size
    error_report = one_rank_input_error(model)
    grids = {"auto": None, "slabs": (size, 1, 1)}  # slabs of 8.6/P Å: thinner than r_max at P=4
    report = {}
    root = MPI.COMM_WORLD.rank == 0  # results are identical on all ranks: compare on one
    structures = comparison_cells()
    for name, atoms in structures.items():
        ref = serial.calculate_batch([atoms])[0] if root else None
        for label, grid in grids.items():
            calc = ParallelLegatoCalculator(model, grid=grid)
            got = calc.calculate_batch([atoms])[0]
            owned = int(MPI.COMM_WORLD.allreduce(int(calc.evaluator.last_n_owned)))
            empty = int(MPI.COMM_WORLD.allreduce(int(calc.evaluator.last_n_owned == 0)))
            if root:
                report[f"{name}/{label}"] = dict(
                    max_errors(ref, got), n_owned_total=owned, empty_domains=empty
                )
    # The user-facing switch: LegatoCalculator(parallel=True) delegates to the same evaluator.
    batch = LegatoCalculator(model, parallel=True).calculate_batch(list(structures.values()))
    if root:
        for (name, atoms), got in zip(structures.items(), batch, strict=True):
            report[f"{name}/batch"] = max_errors(serial.calculate_batch([atoms])[0], got)
        write_json(out_path(), {"size": size, "cases": report, "input_error": error_report})


main()
