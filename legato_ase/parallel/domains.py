"""Spatial domains over a (possibly triclinic, possibly non-periodic) cell, and halos.

Atoms are assigned to domains by their fractional coordinates; a domain's halo holds
every periodic image of every atom that can lie within ``r_max`` of the domain. A point
within Cartesian distance r of another has fractional coordinates within r/h_a along
axis a (h_a: spacing of the lattice planes), so the halo is a fractional box widened by
r_max/h_a, which works for domains thinner than r_max (several image layers are taken).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

# Fractional slack so that atoms at the halo boundary are not lost to rounding.
_SLACK = 1e-9


@dataclasses.dataclass(frozen=True, kw_only=True)
class Frame:
    """Fractional frame of a structure.

    Attributes:
        vectors: [3, 3] rows, Å. Periodic rows are the cell vectors; non-periodic rows
            span the atoms' extent along directions orthogonal to the periodic ones.
        origin: [3] Å.
        pbc: [3] bool.
    """

    vectors: np.ndarray
    origin: np.ndarray
    pbc: np.ndarray

    @property
    def spacings(self) -> np.ndarray:
        """[3] distance between lattice planes along each axis, Å."""
        return 1.0 / np.linalg.norm(np.linalg.inv(self.vectors), axis=0)

    def fractional(self, positions: np.ndarray) -> np.ndarray:
        return (positions - self.origin) @ np.linalg.inv(self.vectors)


def make_frame(positions: np.ndarray, cell: np.ndarray, pbc) -> Frame:
    """Frame of a structure; non-periodic axes cover the atoms (plus a small margin)."""
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
    vectors = np.array(cell, dtype=np.float64).reshape(3, 3)
    origin = np.zeros(3)
    if not pbc.all():
        periodic = vectors[pbc]
        # Orthonormal basis; the last (3 - n_periodic) vectors complete the periodic span.
        _, _, vt = np.linalg.svd(np.vstack([periodic, np.zeros((3 - len(periodic), 3))]))
        complement = vt[len(periodic) :]
        for axis, u in zip(np.flatnonzero(~pbc), complement, strict=True):
            proj = positions @ u if len(positions) else np.zeros(1)
            vectors[axis] = u * (np.ptp(proj) + 1e-6)
            origin += u * proj.min()
    return Frame(vectors=vectors, origin=origin, pbc=pbc)


def choose_grid(n_ranks: int, spacings: np.ndarray) -> tuple[int, int, int]:
    """Split n_ranks into (p_a, p_b, p_c) giving the thickest domains.

    Ties go to the smallest halo surface.
    """
    best, best_key = None, None
    for pa in range(1, n_ranks + 1):
        if n_ranks % pa:
            continue
        for pb in range(1, n_ranks // pa + 1):
            if (n_ranks // pa) % pb:
                continue
            grid = np.array([pa, pb, n_ranks // pa // pb])
            thickness = spacings / grid
            key = (-round(float(thickness.min()), 9), float(np.sum(1.0 / thickness)))
            if best_key is None or key < best_key:
                best, best_key = tuple(int(g) for g in grid), key
    return best


@dataclasses.dataclass(frozen=True, kw_only=True)
class Domain:
    """The atoms one rank evaluates.

    Attributes:
        owned: [n_owned] indices of the atoms this domain owns.
        ghosts: [n_ghost] indices of halo atoms (an atom may appear several times).
        positions: [n_owned + n_ghost, 3] Cartesian positions, Å; owned atoms first,
            wrapped into the cell; ghosts at their image positions.
    """

    owned: np.ndarray
    ghosts: np.ndarray
    positions: np.ndarray

    @property
    def indices(self) -> np.ndarray:
        """[n_owned + n_ghost] structure index of every local atom."""
        return np.concatenate([self.owned, self.ghosts])


def domain_of(frac: np.ndarray, grid) -> np.ndarray:
    """[N] rank owning each atom, from wrapped fractional coordinates [N, 3]."""
    grid = np.asarray(grid)
    cells = np.clip(np.floor(frac * grid).astype(np.int64), 0, grid - 1)
    return (cells[:, 0] * grid[1] + cells[:, 1]) * grid[2] + cells[:, 2]


def _wrap(frame: Frame, positions: np.ndarray) -> np.ndarray:
    frac = frame.fractional(positions)
    frac[:, frame.pbc] -= np.floor(frac[:, frame.pbc])
    frac[:, ~frame.pbc] = np.clip(frac[:, ~frame.pbc], 0.0, 1.0)
    return frac


def _image_ranges(frame: Frame, lo: np.ndarray, hi: np.ndarray, delta: np.ndarray):
    ranges = []
    for axis in range(3):
        if frame.pbc[axis]:
            ranges.append(
                range(math.floor(lo[axis] - delta[axis]), math.ceil(hi[axis] + delta[axis]))
            )
        else:
            ranges.append(range(0, 1))
    return itertools.product(*ranges)


def decompose(frame: Frame, positions: np.ndarray, r_max: float, grid, rank: int) -> Domain:
    """Owned atoms and halo of domain ``rank`` of ``grid``.

    Args:
        frame: from :func:`make_frame`.
        positions: [N, 3] Cartesian positions, Å (need not be wrapped).
        r_max: halo width, Å.
        grid: (p_a, p_b, p_c) domains along each axis.
        rank: the domain, 0 <= rank < prod(grid).
    """
    grid = np.asarray(grid)
    frac = _wrap(frame, np.asarray(positions, dtype=np.float64))
    owner = domain_of(frac, grid)
    cell_index = np.array(np.unravel_index(rank, tuple(grid)))
    lo, hi = cell_index / grid, (cell_index + 1) / grid
    delta = r_max / frame.spacings + _SLACK
    owned = np.flatnonzero(owner == rank)
    ghost_idx, ghost_frac = [], []
    for image in _image_ranges(frame, lo, hi, delta):
        shifted = frac + np.asarray(image, dtype=np.float64)
        inside = np.all((shifted >= lo - delta) & (shifted < hi + delta), axis=1)
        if not any(image):
            inside &= owner != rank
        ghost_idx.append(np.flatnonzero(inside))
        ghost_frac.append(shifted[inside])
    ghosts = np.concatenate(ghost_idx)
    local_frac = np.concatenate([frac[owned]] + ghost_frac)
    return Domain(
        owned=owned,
        ghosts=ghosts,
        positions=local_frac @ frame.vectors + frame.origin,
    )
