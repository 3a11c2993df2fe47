"""Rigid bond and contact scans: geometry and signs against an analytic Morse potential."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.morse import MorsePotential

from legato_ase.stability.scan import (
    bond_scan,
    closest_pair,
    contact_scan,
    molecules,
    restoring_ok,
)
from legato_ase.structures import ammonia_crystal

D = np.round(np.arange(1.0, 2.001, 0.1), 3)
MORSE = {"epsilon": 4.0, "rho0": 2.0, "r0": 1.0, "rcut1": 4.0, "rcut2": 5.0}


def morse_pair(r):
    """ASE's Morse form below its smoothing range: ε (e^{−2ρ0(r/r0−1)} − 2 e^{−ρ0(r/r0−1)})."""
    x = np.exp(-MORSE["rho0"] * (r / MORSE["r0"] - 1))
    energy = MORSE["epsilon"] * (x * x - 2 * x)
    force = 2 * MORSE["epsilon"] * MORSE["rho0"] / MORSE["r0"] * (x * x - x)  # −dV/dr
    return energy, force


def test_bond_scan_of_a_dimer_is_the_pair_curve_with_restoring_force():
    dimer = Atoms("NH", positions=[[0, 0, 0], [0.6, 0.8, 0.0]])
    scan = bond_scan(dimer, MorsePotential(**MORSE), 0, 1, D)
    energy, force = morse_pair(D)
    np.testing.assert_allclose(scan.energy, energy - energy[0], atol=1e-10)
    np.testing.assert_allclose(scan.force_along, force, atol=1e-8)
    assert restoring_ok(scan, from_distance=1.2, min_force=0.5)
    np.testing.assert_allclose(dimer.positions[1], [0.6, 0.8, 0.0])  # input untouched


def test_restoring_ok_rejects_a_force_that_pushes_the_atom_away():
    dimer = Atoms("NH", positions=[[0, 0, 0], [1.0, 0, 0]])
    flipped = MorsePotential(**{**MORSE, "epsilon": -1.0})  # repulsive well: pushes outwards
    assert not restoring_ok(bond_scan(dimer, flipped, 0, 1, D))


def test_molecules_of_the_crystal_across_periodic_boundaries():
    atoms = ammonia_crystal(1)
    atoms.wrap()
    mols = molecules(atoms)
    assert len(mols) == 4
    for n, *hs in mols:
        np.testing.assert_allclose(atoms.get_distances(n, hs, mic=True), 0.99, atol=0.02)


def test_contact_scan_moves_the_whole_molecule_to_the_requested_distance():
    atoms = ammonia_crystal(2)
    mols = molecules(atoms)
    a, b = closest_pair(atoms, mols)
    distances = [3.2, 2.6, 2.0]
    seen = []

    class Probe(MorsePotential):
        def calculate(self, atoms=None, properties=("energy",), system_changes=()):
            seen.append(atoms.get_distance(mols[a][0], mols[b][0], mic=True))
            inner = atoms.get_distances(mols[b][0], mols[b][1:], mic=True)
            np.testing.assert_allclose(inner, 0.99, atol=0.02)  # rigid
            super().calculate(atoms, properties, system_changes)

    scan = contact_scan(atoms, Probe(**MORSE), mols[a], mols[b], distances)
    np.testing.assert_allclose(sorted(set(np.round(seen, 8)), reverse=True), distances)
    assert scan.energy[0] == 0.0


def test_scan_rejects_overlapping_parts():
    atoms = ammonia_crystal(1)
    with pytest.raises(ValueError, match="share atoms"):
        contact_scan(atoms, MorsePotential(), [0, 4], [4, 5], [3.0])
    with pytest.raises(ValueError, match="different atoms"):
        bond_scan(atoms, MorsePotential(), 3, 3, [1.0])


@pytest.mark.parametrize("name", ["nh3-legato", "nh3-allegro"])
def test_bundled_models_restore_a_stretched_nh_bond(name):
    """No spurious dissociation channel: the first bundled pair (v1, trained on equilibrium
    frames only, kept in benchmarks/results/robust_models/v1_bundled) failed this with a
    0.6 eV barrier at 1.3 Å and outward forces beyond it."""
    from legato_ase import LegatoCalculator
    from legato_ase.datasets import read_ammonia

    atoms = read_ammonia("liquid_200", "-1")[0]
    atoms.calc = None
    n, h = molecules(atoms)[0][:2]
    scan = bond_scan(atoms, LegatoCalculator(name), n, h, D)
    assert restoring_ok(scan, from_distance=1.2, min_force=0.5)
    assert np.all(np.diff(scan.energy) > 0)  # uphill all the way from 1.0 to 2.0 Å
