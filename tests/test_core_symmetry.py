"""Symmetries, derivatives and smoothness of the potential (tiny seeded float64 models)."""

import numpy as np
import pytest
import torch
from ase import Atoms
from helpers import (
    finite_difference_forces,
    finite_difference_stress,
    random_rotation,
    random_structure,
    tiny_model,
)

from legato_ase import LegatoCalculator


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _results(model, atoms):
    atoms = atoms.copy()
    atoms.calc = LegatoCalculator(model)
    return atoms.get_potential_energy(), atoms.get_forces(), atoms


@pytest.mark.parametrize("reflect", [False, True])
def test_energy_invariant_and_forces_equivariant_under_rotation(model, reflect):
    atoms = random_structure(14, seed=1)
    e0, f0, _ = _results(model, atoms)
    for seed in range(3):
        rot = random_rotation(seed, reflect=reflect)
        turned = atoms.copy()
        turned.set_cell(atoms.cell.array @ rot.T)
        turned.positions = atoms.positions @ rot.T
        e1, f1, _ = _results(model, turned)
        assert e1 == pytest.approx(e0, abs=1e-9)
        np.testing.assert_allclose(f1, f0 @ rot.T, atol=1e-9)


def test_molecule_energy_invariant_under_rotation_and_reflection(model):
    atoms = random_structure(8, cell=np.eye(3) * 4.0, pbc=False, seed=3)
    e0, f0, _ = _results(model, atoms)
    rot = random_rotation(5, reflect=True)
    turned = atoms.copy()
    turned.positions = atoms.positions @ rot.T
    e1, f1, _ = _results(model, turned)
    assert e1 == pytest.approx(e0, abs=1e-9)
    np.testing.assert_allclose(f1, f0 @ rot.T, atol=1e-9)


def test_translation_and_wrapping_do_not_change_results(model):
    atoms = random_structure(12, seed=2)
    e0, f0, _ = _results(model, atoms)
    moved = atoms.copy()
    moved.positions += np.array([3.3, -7.1, 12.9])  # far outside the cell: unwrapped
    e1, f1, _ = _results(model, moved)
    moved.wrap()
    e2, f2, _ = _results(model, moved)
    assert e1 == pytest.approx(e0, abs=1e-9) and e2 == pytest.approx(e0, abs=1e-9)
    np.testing.assert_allclose(f1, f0, atol=1e-9)
    np.testing.assert_allclose(f2, f0, atol=1e-9)


def test_permutation_permutes_forces_and_keeps_energy(model):
    atoms = random_structure(12, seed=4)
    e0, f0, _ = _results(model, atoms)
    order = np.random.default_rng(0).permutation(len(atoms))
    e1, f1, _ = _results(model, atoms[order])
    assert e1 == pytest.approx(e0, abs=1e-9)
    np.testing.assert_allclose(f1, f0[order], atol=1e-9)


def test_forces_match_finite_differences_on_triclinic_cell(model):
    atoms = random_structure(10, seed=5)
    _, forces, calc_atoms = _results(model, atoms)
    assert np.abs(forces).max() > 1e-3  # the check is not vacuous
    np.testing.assert_allclose(forces, finite_difference_forces(calc_atoms), atol=1e-6)


def test_stress_matches_finite_strain_on_triclinic_cell(model):
    atoms = random_structure(10, seed=6)
    atoms.calc = LegatoCalculator(model)
    stress = atoms.get_stress()
    assert np.abs(stress).max() > 1e-4
    np.testing.assert_allclose(stress, finite_difference_stress(atoms), atol=1e-8)


def test_stress_matches_finite_strain_for_cell_smaller_than_cutoff(model):
    atoms = random_structure(3, cell=[[2.6, 0, 0], [0.4, 2.5, 0], [0.2, 0.3, 2.7]], seed=7)
    atoms.calc = LegatoCalculator(model)
    np.testing.assert_allclose(atoms.get_stress(), finite_difference_stress(atoms), atol=1e-8)
    np.testing.assert_allclose(atoms.get_forces(), finite_difference_forces(atoms), atol=1e-6)


def test_energy_and_force_go_smoothly_to_zero_at_the_cutoff(model):
    r_max = model.r_max
    distances = np.linspace(r_max - 0.05, r_max + 0.02, 36)
    energies, forces = [], []
    for d in distances:
        pair = Atoms("HN", positions=[[0, 0, 0], [d, 0, 0]])
        e, f, _ = _results(model, pair)
        energies.append(e)
        forces.append(f[1, 0])
    isolated = -1.0 + -3.0  # the per-species shifts
    energies, forces = np.array(energies) - isolated, np.array(forces)
    assert np.all(energies[distances >= r_max] == 0) and np.all(forces[distances >= r_max] == 0)
    inside = distances < r_max
    assert np.abs(energies[inside]).max() > 0
    # The envelope has u = u' = u'' = 0 at r_max: the energy vanishes at least like (1 - x)^3
    gap = 1 - distances[inside] / r_max
    slope = np.polyfit(np.log(gap[-10:]), np.log(np.abs(energies[inside][-10:])), 1)[0]
    assert slope > 2.8
    assert abs(energies[inside][-1]) < 1e-9 and abs(forces[inside][-1]) < 1e-6
    assert np.all(np.abs(np.diff(energies)) < 1e-5)  # no jump anywhere


@pytest.mark.parametrize("l_max, parity", [(1, True), (2, True), (2, False), (3, True)])
def test_sparse_tensor_product_equals_the_dense_clebsch_gordan_product(l_max, parity):
    """The product over non-zero coefficients is the dense C[a, b, k] contraction."""
    model = tiny_model(l_max=l_max, parity=parity, n_layers=2)
    gen = torch.Generator().manual_seed(1)
    for layer in model.allegro.layers:
        features = torch.randn(layer.d_in, 7, 5, generator=gen, dtype=torch.float64)
        env = torch.randn(layer.d_sh, 7, 5, generator=gen, dtype=torch.float64)
        dense = torch.einsum(
            "kab,aef,bef->kef", layer.coupling.view(-1, layer.d_in, layer.d_sh), features, env
        )
        blocks = layer.tensor_product(features, env)  # [2l+1, E, n, F] per block
        sparse = torch.cat([b.permute(2, 0, 1, 3).reshape(-1, 7, 5) for b in blocks])
        assert sparse.shape == dense.shape
        assert torch.allclose(sparse, dense, rtol=0, atol=1e-13)
        # Far fewer products than the dense tensor has entries.
        assert sum(map(len, layer.terms)) < 0.3 * layer.coupling.numel()
