"""Shared test utilities: tiny seeded models, random structures, finite differences."""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms

import legato_ase

TINY = {
    "r_max": 3.5,
    "num_bessel": 4,
    "l_max": 2,
    "n_layers": 2,
    "n_scalar": 16,
    "n_tensor": 4,
    "two_body_mlp": [16],
    "latent_mlp": [12],
    "edge_energy_mlp": [8],
    "avg_num_neighbors": 8.0,
    "energy_shift": {"H": -1.0, "N": -3.0},
    "energy_scale": {"H": 0.5, "N": 0.7},
}


# A network small enough to train for an epoch in a second (training tests).
TINY_TRAIN_MODEL = {
    "r_max": 3.0,
    "n_layers": 1,
    "n_scalar": 8,
    "n_tensor": 4,
    "num_bessel": 4,
    "two_body_mlp": [8],
    "edge_energy_mlp": [8],
}


def tiny_model(dtype=torch.float64, seed=0, **changes):
    """A small, seeded model; float64 by default so physics checks are tight."""
    return legato_ase.build_model({**TINY, **changes}, species=["H", "N"], seed=seed, dtype=dtype)


def random_structure(n_atoms=12, cell=None, pbc=True, seed=0, min_dist=0.9) -> Atoms:
    """Random H/N atoms in a (by default triclinic) cell, no two closer than min_dist."""
    rng = np.random.default_rng(seed)
    if cell is None:
        cell = np.array([[5.0, 0.0, 0.0], [0.8, 4.6, 0.0], [-0.5, 0.7, 4.8]])
    cell = np.asarray(cell, dtype=float)
    positions: list[np.ndarray] = []
    while len(positions) < n_atoms:
        trial = rng.random(3) @ cell
        atoms = Atoms("H" * (len(positions) + 1), positions=positions + [trial], cell=cell, pbc=pbc)
        if (
            len(positions) == 0
            or atoms.get_distances(len(positions), range(len(positions)), mic=pbc).min() > min_dist
        ):
            positions.append(trial)
    symbols = ["N" if k % 4 == 0 else "H" for k in range(n_atoms)]
    return Atoms(symbols, positions=positions, cell=cell, pbc=pbc)


def finite_difference_forces(atoms: Atoms, delta=1e-4) -> np.ndarray:
    forces = np.zeros((len(atoms), 3))
    for a in range(len(atoms)):
        for k in range(3):
            energies = []
            for sign in (1, -1):
                shifted = atoms.copy()
                shifted.calc = atoms.calc
                shifted.positions[a, k] += sign * delta
                energies.append(shifted.get_potential_energy())
            forces[a, k] = -(energies[0] - energies[1]) / (2 * delta)
    return forces


def finite_difference_stress(atoms: Atoms, delta=1e-5) -> np.ndarray:
    """σ = (1/V) ∂E/∂ε by central differences of symmetric strains, Voigt order."""
    volume = atoms.get_volume()
    stress = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[a, b] += 0.5 * sign * delta
                strain[b, a] += 0.5 * sign * delta
                strained = atoms.copy()
                strained.calc = atoms.calc
                strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                energies.append(strained.get_potential_energy())
            stress[a, b] = (energies[0] - energies[1]) / (2 * delta) / volume
    return stress.flat[[0, 4, 8, 5, 2, 1]]


def random_rotation(seed=0, reflect=False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return -q if reflect else q
