"""Neighbour-list backends: vesin (used) vs matscipy vs ASE, on crystalline ammonia.

Prints milliseconds per full neighbour list (r_max 6 Å) and the pair counts, which must agree.

    python benchmarks/bench_neighbors.py
"""

from __future__ import annotations

import numpy as np
from _timing import interleaved, print_table

from legato_ase.neighbors import neighbor_list
from legato_ase.structures import ammonia_crystal

CUTOFF = 6.0


def main() -> None:
    import ase.neighborlist
    import matscipy.neighbours

    rows = []
    for size in (3, 6, 12):
        atoms = ammonia_crystal(size)
        atoms.rattle(0.05, seed=1)
        fns = {
            "vesin (legato_ase)": lambda a=atoms: neighbor_list(
                a.positions, a.cell.array, a.pbc, CUTOFF
            ),
            "matscipy": lambda a=atoms: matscipy.neighbours.neighbour_list("ijS", a, CUTOFF),
        }
        if len(atoms) <= 3456:
            fns["ase"] = lambda a=atoms: ase.neighborlist.neighbor_list("ijS", a, CUTOFF)
        counts = {name: len(fn()[0]) for name, fn in fns.items()}
        times = interleaved(fns, repeats=3)
        base = times["vesin (legato_ase)"]
        for name, t in times.items():
            rows.append([len(atoms), name, 1e3 * t, t / base, counts[name]])
        assert len(set(counts.values())) == 1, counts
    print(f"full neighbour list, cutoff {CUTOFF} Å, NH3-I crystal")
    print_table(["atoms", "backend", "ms", "x vesin", "pairs"], rows)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
