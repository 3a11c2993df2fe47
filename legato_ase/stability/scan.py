"""Rigid scans that show where a potential breaks: stretched bonds and molecules pushed together.

A model whose training data never stretched a bond can have a spurious dissociation channel: the
energy rises, then falls, and the force pushes the atom further out. Error tables cannot see it
(the hole lies outside the data); a scan against the reference method shows it in seconds.

Typical use::

    from legato_ase.stability.scan import bond_scan, molecules
    atoms.calc = LegatoCalculator("nh3-legato")
    mols = molecules(atoms)
    scan = bond_scan(atoms, atoms.calc, mols[0][0], mols[0][1], np.arange(1.0, 2.01, 0.1))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator


@dataclass(frozen=True)
class Scan:
    """One rigid scan.

    Attributes:
        distances: [K] the scanned distance (Å).
        energy: [K] potential energy relative to the first point (eV).
        force_along: [K] force on the moved part projected on the direction pointing away from
            the fixed part (eV/Å): negative means restoring.
    """

    distances: np.ndarray
    energy: np.ndarray
    force_along: np.ndarray


def molecules(atoms: Atoms, centre: str = "N", ligand: str = "H", n_ligands: int = 3) -> list:
    """Molecules as index lists ``[centre, ligand, ...]``: each centre with its nearest ligands.

    Distances use the minimum image. Raises ValueError when a ligand is claimed twice (the
    structure is not made of intact molecules).
    """
    symbols = np.array(atoms.get_chemical_symbols())
    centres = np.flatnonzero(symbols == centre)
    ligands = np.flatnonzero(symbols == ligand)
    if len(ligands) < n_ligands * len(centres):
        raise ValueError(f"{len(ligands)} {ligand} atoms cannot give {len(centres)} molecules")
    result, taken = [], set()
    for c in centres:
        d = atoms.get_distances(c, ligands, mic=True)
        mine = [int(i) for i in ligands[np.argsort(d)[:n_ligands]]]
        if taken.intersection(mine):
            raise ValueError(f"{ligand} atoms shared between molecules near atom {c}")
        taken.update(mine)
        result.append([int(c), *mine])
    return result


def _energy_and_force(atoms: Atoms, calc: Calculator, moved: Sequence[int], unit: np.ndarray):
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    force = atoms.get_forces()[list(moved)].sum(axis=0)
    return energy, float(force @ unit)


def _scan(atoms, calc, fixed, moved, distances) -> Scan:
    work = atoms.copy()
    vector = work.get_distance(fixed, moved[0], mic=True, vector=True)
    unit = vector / np.linalg.norm(vector)
    start = work.positions[moved].copy()
    start_d = float(np.linalg.norm(vector))
    energies, forces = [], []
    for d in distances:
        work.positions[moved] = start + (float(d) - start_d) * unit
        e, f = _energy_and_force(work, calc, moved, unit)
        energies.append(e)
        forces.append(f)
    energies = np.asarray(energies)
    return Scan(np.asarray(distances, float), energies - energies[0], np.asarray(forces))


def bond_scan(
    atoms: Atoms, calc: Calculator, centre: int, moving: int, distances: Sequence[float]
) -> Scan:
    """Move atom ``moving`` along its bond to ``centre`` to each distance (Å); all else fixed."""
    if centre == moving:
        raise ValueError("centre and moving must be different atoms")
    return _scan(atoms, calc, centre, [moving], distances)


def contact_scan(
    atoms: Atoms,
    calc: Calculator,
    fixed: Sequence[int],
    moving: Sequence[int],
    distances: Sequence[float],
) -> Scan:
    """Translate molecule ``moving`` rigidly so that its first atom lies at each distance (Å)
    from the first atom of ``fixed``, along the line joining them.

    ``force_along`` is the total force on the moving molecule along that line.
    """
    if set(fixed) & set(moving):
        raise ValueError("the fixed and the moving molecule share atoms")
    return _scan(atoms, calc, fixed[0], list(moving), distances)


def closest_pair(atoms: Atoms, mols: Sequence[Sequence[int]]) -> tuple[int, int]:
    """Indices (into ``mols``) of the two molecules whose first atoms are closest."""
    firsts = [m[0] for m in mols]
    d = atoms.get_all_distances(mic=True)[np.ix_(firsts, firsts)]
    np.fill_diagonal(d, np.inf)
    a, b = np.unravel_index(np.argmin(d), d.shape)
    return int(a), int(b)


def restoring_ok(scan: Scan, from_distance: float = 1.2, min_force: float = 0.5) -> bool:
    """True when the force restores the bond by at least ``min_force`` (eV/Å) from
    ``from_distance`` on."""
    mask = scan.distances >= from_distance - 1e-9
    return bool(np.all(-scan.force_along[mask] >= min_force))


def energy_gap(scan: Scan, reference: Scan, up_to: float = 1.5) -> float:
    """Largest |ΔE − ΔE_ref| (eV) over the points up to ``up_to`` Å."""
    mask = scan.distances <= up_to + 1e-9
    return float(np.max(np.abs(scan.energy[mask] - reference.energy[mask])))
