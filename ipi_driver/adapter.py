"""The one boundary between i-PI's conventions and ASE's (numpy and ASE only, no torch).

i-PI: atomic units (Bohr, Hartree), cell ``h`` with lattice vectors as columns, virial
``−V·σ`` as a 3×3 matrix. ASE: Å, eV, cell rows, Voigt stress in eV/Å³.
Positions are used exactly as i-PI sends them (unwrapped, in i-PI's possibly rotated
frame); the template contributes only the chemical symbols and the periodicity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from ase import Atoms

from .protocol import ForceData, PosData

# ase.units (CODATA 2014) so that ASE's socket server and this driver agree to the last bit.
# i-PI's own tables use 7-digit values (1 Å = 1.8897261 Bohr); the difference, 4e-9
# relative, is far below anything a simulation can resolve.
BOHR_A = 0.5291772105638411
HARTREE_EV = 27.211386024367243


class BatchEvaluator(Protocol):
    """Anything that evaluates a list of structures at once (e.g. LegatoCalculator)."""

    def calculate_batch(self, structures: Sequence[Atoms]) -> list[dict[str, Any]]: ...


def to_atoms(data: PosData, template: Atoms) -> list[Atoms]:
    """ASE structures (Å, cell rows) from a POSDATA payload, symbols/pbc from the template."""
    n_atoms = data.positions.shape[1]
    if n_atoms != len(template):
        raise ValueError(
            f"i-PI sent {n_atoms} atoms but the template has {len(template)}; pass the "
            "structure i-PI was started with as --template"
        )
    structures = []
    for cell, positions in zip(data.cells, data.positions, strict=True):
        atoms = Atoms(
            symbols=template.get_chemical_symbols(),
            positions=positions * BOHR_A,
            cell=cell.T * BOHR_A,
            pbc=template.pbc,
        )
        structures.append(atoms)
    return structures


def to_wire(results: Sequence[Mapping[str, Any]], structures: Sequence[Atoms]) -> ForceData:
    """A FORCEREADY payload (atomic units, i-PI layout) from ASE results.

    The virial is −V·σ (no kinetic part); a structure without stress (not 3-D periodic)
    gets a zero virial, so such runs must stay at constant volume.
    """
    energies = np.array([float(r["energy"]) for r in results]) / HARTREE_EV
    forces = np.stack([np.asarray(r["forces"], dtype=np.float64) for r in results])
    virials = np.stack([_virial_eV(r, a) for r, a in zip(results, structures, strict=True)])
    return ForceData(
        energies=energies,
        forces=forces * (BOHR_A / HARTREE_EV),
        # i-PI reads the virial in its column layout: the transpose of ASE's matrix
        virials=np.ascontiguousarray(virials.transpose(0, 2, 1)) / HARTREE_EV,
        extras=tuple(_extras(r, a) for r, a in zip(results, structures, strict=True)),
    )


def _virial_eV(result: Mapping[str, Any], atoms: Atoms, key: str = "stress") -> np.ndarray:
    """−V·σ as a 3×3 matrix (eV) from a Voigt stress, or stresses [..., 6] -> [..., 3, 3]."""
    if key not in result:
        return np.zeros((3, 3))
    xx, yy, zz, yz, xz, xy = np.moveaxis(np.asarray(result[key], dtype=np.float64), -1, 0)
    stress = np.stack([xx, xy, xz, xy, yy, yz, xz, yz, zz], axis=-1)
    return -atoms.get_volume() * stress.reshape(*stress.shape[:-1], 3, 3)


def _extras(result: Mapping[str, Any], atoms: Atoms) -> str:
    """Per-structure extras as JSON for i-PI (empty when none).

    A committee's members go out as i-PI's ``<ffcommittee>`` reads them from one driver
    (with ``<parse_json>true</parse_json>``): ``committee_pot`` [K] (Hartree),
    ``committee_force`` [K][3N] (Hartree/Bohr) and ``committee_virial`` [K][9] (Hartree,
    i-PI's layout), so that i-PI's committee machinery (mean, uncertainty, weighted
    baseline, active-learning output) works unchanged.
    """
    extra = {k: np.asarray(v).tolist() for k, v in result.items() if k in ("dipole",)}
    if "committee_energy" in result:
        extra.update(_committee_extras(result, atoms))
    return json.dumps(extra) if extra else ""


def _committee_extras(result: Mapping[str, Any], atoms: Atoms) -> dict[str, list]:
    energy = np.asarray(result["committee_energy"], dtype=np.float64)
    forces = np.asarray(result["committee_forces"], dtype=np.float64)
    if "committee_stress" in result:
        virial = _virial_eV(result, atoms, "committee_stress").transpose(0, 2, 1)
    else:  # not 3-D periodic: no stress, zero virials (as for the mean)
        virial = np.zeros((len(energy), 3, 3))
    return {
        "committee_pot": (energy / HARTREE_EV).tolist(),
        "committee_force": (forces * (BOHR_A / HARTREE_EV)).reshape(len(energy), -1).tolist(),
        "committee_virial": (virial / HARTREE_EV).reshape(len(energy), 9).tolist(),
    }


def from_wire(data: ForceData, structures: Sequence[Atoms]) -> list[dict[str, Any]]:
    """ASE results from a FORCEREADY payload (the inverse of :func:`to_wire`)."""
    results = []
    for n, atoms in enumerate(structures):
        virial = data.virials[n].T * HARTREE_EV
        res = {
            "energy": float(data.energies[n]) * HARTREE_EV,
            "forces": data.forces[n] * (HARTREE_EV / BOHR_A),
        }
        if atoms.pbc.all():
            stress = -virial / atoms.get_volume()
            res["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]].copy()
        results.append(res)
    return results


def from_atoms(structures: Sequence[Atoms]) -> PosData:
    """A POSDATA payload from ASE structures (the inverse of :func:`to_atoms`)."""
    cells = np.stack([np.asarray(a.cell.array).T for a in structures]) / BOHR_A
    positions = np.stack([a.positions for a in structures]) / BOHR_A
    return PosData(cells=cells, positions=positions)


def evaluate(evaluator: BatchEvaluator, data: PosData, template: Atoms) -> ForceData:
    """Evaluate all structures of one request in ONE call of the evaluator.

    Identical structures (i-PI pads an incomplete batch by repeating the last one) are
    evaluated once.
    """
    structures = to_atoms(data, template)
    keys = [c.tobytes() + p.tobytes() for c, p in zip(data.cells, data.positions, strict=True)]
    unique = list(dict.fromkeys(keys))
    first = [keys.index(k) for k in unique]
    unique_results = evaluator.calculate_batch([structures[i] for i in first])
    by_key = dict(zip(unique, unique_results, strict=True))
    return to_wire([by_key[k] for k in keys], structures)
