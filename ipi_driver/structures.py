"""Ammonia start structures (solid NH3-I and liquid) and molecule assignment."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.spacegroup import crystal

# NH3-I: P2_13, 4 molecules per cubic cell (neutron diffraction of ND3, Hewat & Riekel 1979).
NH3_I_LATTICE_A = {77.0: 5.084, 160.0: 5.1305}
NH3_I_BASIS = [(0.2107, 0.2107, 0.2107), (0.3689, 0.2671, 0.1159)]
_NH3_MOLAR_MASS_G = 17.031
_AVOGADRO = 6.02214076e23


def nh3_crystal(a_A: float = 5.1305, repeat: tuple[int, int, int] = (2, 2, 2)) -> Atoms:
    """Solid ammonia NH3-I (P2_13): 16 atoms per cubic cell of edge ``a_A`` Å, repeated.

    N–H 0.99 Å and H···N 2.43 Å at the default a = 5.1305 Å (160 K).
    """
    if a_A <= 0:
        raise ValueError(f"lattice constant must be positive, got a_A={a_A}")
    cell = crystal(["N", "H"], basis=NH3_I_BASIS, spacegroup=198, cellpar=[a_A] * 3 + [90] * 3)
    atoms = Atoms(cell.get_chemical_symbols(), positions=cell.positions, cell=cell.cell, pbc=True)
    return atoms.repeat(repeat)


def nh3_liquid(
    density_g_cm3: float = 0.68, repeat: tuple[int, int, int] = (2, 2, 2), seed: int = 0
) -> Atoms:
    """A start structure for liquid ammonia: NH3-I molecules, randomly rotated about their
    nitrogen, in a cell scaled to the density. Melt it by MD above 195.4 K."""
    if density_g_cm3 <= 0:
        raise ValueError(f"density must be positive, got {density_g_cm3} g/cm^3")
    atoms = nh3_crystal(repeat=repeat)
    n_molecules = atoms.get_chemical_symbols().count("N")
    volume_A3 = n_molecules * _NH3_MOLAR_MASS_G / _AVOGADRO / density_g_cm3 * 1e24
    scale = (volume_A3 / atoms.get_volume()) ** (1 / 3)
    rng = np.random.default_rng(seed)
    owner = molecule_index(atoms)
    positions = atoms.positions.copy()
    for m, n in enumerate(np.flatnonzero(atoms.numbers == 7)):
        members = np.flatnonzero(owner == m)
        bonds = atoms.get_distances(n, members, mic=True, vector=True)
        rotation = _random_rotation(rng)
        positions[members] = positions[n] * scale + bonds @ rotation.T
    atoms.positions = positions
    atoms.set_cell(atoms.cell.array * scale, scale_atoms=False)
    return atoms


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def molecule_index(atoms: Atoms, centre: str = "N") -> np.ndarray:
    """[N] int: the molecule of each atom, that of its nearest ``centre`` atom (minimum image).

    Centre atoms number molecules 0, 1, ... in their order in ``atoms``.
    """
    centres = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == centre)
    if len(centres) == 0:
        raise ValueError(f"no {centre} atoms to build molecules around")
    owner = np.empty(len(atoms), dtype=np.int64)
    for k in range(len(atoms)):
        owner[k] = np.argmin(atoms.get_distances(k, centres, mic=True))
    owner[centres] = np.arange(len(centres))
    return owner
