"""One neighbour-list function (vesin backend) with input checks.

vesin was measured against matscipy in benchmarks/bench_neighbors.py (2–3x faster, same
pairs); it handles cells smaller than the cutoff, triclinic cells, mixed periodicity and
unwrapped positions.
"""

from __future__ import annotations

import numpy as np

# Distances below this are treated as atoms on top of each other (Å).
MIN_DISTANCE = 1e-2


def _check_cell(cell: np.ndarray, pbc: np.ndarray) -> None:
    lengths = np.linalg.norm(cell, axis=1)
    for axis in np.flatnonzero(pbc):
        if lengths[axis] < 1e-8:
            raise ValueError(
                f"cell vector {axis} is zero but the structure is periodic along it; "
                "set a cell with atoms.set_cell(...) or turn periodicity off with "
                f"atoms.pbc[{axis}] = False."
            )
    periodic = cell[pbc]
    if len(periodic) and np.linalg.matrix_rank(periodic, tol=1e-6 * lengths.max()) < len(periodic):
        raise ValueError(
            "the periodic cell vectors are linearly dependent (degenerate cell: "
            f"{cell.tolist()}); give three independent lattice vectors."
        )


def _complete_cell(cell: np.ndarray, pbc: np.ndarray, positions: np.ndarray, cutoff: float):
    """Replace the vectors of non-periodic directions by long orthogonal ones."""
    if pbc.all():
        return cell
    out = cell.copy()
    span = np.ptp(positions, axis=0).max() if len(positions) else 0.0
    length = 2.0 * (span + cutoff) + 1.0
    for axis in np.flatnonzero(~pbc):
        others = out[[a for a in range(3) if a != axis]]
        normal = np.cross(others[0], others[1])
        if np.linalg.norm(normal) < 1e-8:
            # Fewer than two independent vectors around: fall back to a Cartesian axis
            # that is not yet spanned.
            for trial in np.eye(3):
                candidate = trial - sum(
                    trial @ o / (o @ o) * o for o in others if np.linalg.norm(o) > 1e-8
                )
                if np.linalg.norm(candidate) > 1e-3:
                    normal = candidate
                    break
        out[axis] = length * normal / np.linalg.norm(normal)
        # Later axes may use this one to build their normal.
    return out


def neighbor_list(
    positions: np.ndarray, cell: np.ndarray, pbc, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list: every ordered pair (i, j) with |r_j − r_i + S·cell| < cutoff.

    Args:
        positions: [N, 3] positions in Å (need not be wrapped into the cell).
        cell: [3, 3] lattice vectors as rows, Å.
        pbc: three booleans.
        cutoff: Å.

    Returns:
        i [E], j [E] (int64) and integer image shifts S [E, 3] (int64).

    Raises:
        ValueError: NaN or infinite positions, a zero or degenerate periodic cell vector,
            or two atoms closer than MIN_DISTANCE.
    """
    from vesin import NeighborList

    positions = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    bad = ~np.isfinite(positions).all(axis=1)
    if bad.any():
        raise ValueError(
            f"positions of atoms {np.flatnonzero(bad)[:10].tolist()} are NaN or infinite; "
            "the structure (or the MD run that produced it) has blown up."
        )
    if len(positions) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, 3), dtype=np.int64)
    _check_cell(cell, pbc)
    box = _complete_cell(cell, pbc, positions, cutoff)
    if not pbc.any():
        box = np.zeros((3, 3))
    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, shifts, d = nl.compute(positions, box, [bool(p) for p in pbc], quantities="ijSd")
    if len(d) and d.min() < MIN_DISTANCE:
        k = int(np.argmin(d))
        raise ValueError(
            f"atoms {int(i[k])} and {int(j[k])} are {d[k]:.2e} Å apart (on top of each "
            "other); check the structure for duplicated atoms."
        )
    return i.astype(np.int64), j.astype(np.int64), shifts.astype(np.int64)
