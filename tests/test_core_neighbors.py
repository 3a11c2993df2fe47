"""Neighbour lists agree with ASE's reference implementation in every geometry we support."""

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

from legato_ase.neighbors import neighbor_list


def _pairs(i, j, shifts):
    return sorted(zip(i.tolist(), j.tolist(), map(tuple, shifts.tolist())))


def _random_atoms(cell, pbc, n=10, seed=0, span=None):
    rng = np.random.default_rng(seed)
    cell = np.asarray(cell, dtype=float)
    frac = rng.random((n, 3))
    positions = frac @ cell if span is None else frac * span
    return Atoms("H" * n, positions=positions, cell=cell, pbc=pbc)


CASES = {
    "orthorhombic": ([[6, 0, 0], [0, 7, 0], [0, 0, 8]], True),
    "skewed triclinic": ([[5, 0, 0], [3.5, 4, 0], [-2, 1.5, 4.5]], True),
    "cell smaller than cutoff": ([[2.1, 0, 0], [0.3, 2.4, 0], [0.2, -0.4, 2.2]], True),
    "slab, zero third vector": ([[6, 0, 0], [1, 6, 0], [0, 0, 0]], [True, True, False]),
    "wire": ([[5, 0, 0], [0, 0, 0], [0, 0, 0]], [True, False, False]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_pairs_and_shifts_match_ase(name):
    cell, pbc = CASES[name]
    atoms = _random_atoms(cell, pbc, span=[6, 6, 6] if not np.all(pbc) else None)
    cutoff = 3.0
    ours = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    ref = ase_neighbor_list("ijS", atoms, cutoff)
    assert len(ref[0]) > 0
    assert _pairs(*ours) == _pairs(*ref)


def test_molecule_without_cell_matches_ase():
    atoms = _random_atoms(np.zeros((3, 3)), False, n=15, span=[5, 5, 5], seed=3)
    ours = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, 2.5)
    ref = ase_neighbor_list("ijS", atoms, 2.5)
    assert _pairs(*ours) == _pairs(*ref)
    assert not ours[2].any()


def test_unwrapped_positions_give_the_same_distances():
    atoms = _random_atoms([[5, 0, 0], [1, 5, 0], [0.5, 0.5, 5]], True, seed=4)
    moved = atoms.positions + np.array([[11.0, -23.0, 7.0]])
    i, j, s = neighbor_list(atoms.positions, atoms.cell.array, True, 3.0)
    i2, j2, s2 = neighbor_list(moved, atoms.cell.array, True, 3.0)
    d1 = np.linalg.norm(atoms.positions[j] - atoms.positions[i] + s @ atoms.cell.array, axis=1)
    d2 = np.linalg.norm(moved[j2] - moved[i2] + s2 @ atoms.cell.array, axis=1)
    assert sorted(np.round(d1, 10)) == sorted(np.round(d2, 10))
