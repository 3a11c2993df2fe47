"""Locality, extensivity, pair cutoffs, batching and precision."""

import numpy as np
import pytest
import torch
from ase import Atoms
from helpers import random_structure, tiny_model

from legato_ase import LegatoCalculator


def _energy(model, atoms):
    atoms = atoms.copy()
    atoms.calc = LegatoCalculator(model)
    return atoms.get_potential_energy()


def test_supercell_energy_is_extensive():
    model = tiny_model()
    atoms = random_structure(8, seed=1)
    e1 = _energy(model, atoms)
    for k in (2, 3):
        assert _energy(model, atoms * (k, k, k)) == pytest.approx(k**3 * e1, rel=1e-11)


def test_clusters_further_apart_than_r_max_add():
    model = tiny_model()
    a = random_structure(6, cell=np.eye(3) * 3, pbc=False, seed=2)
    b = random_structure(7, cell=np.eye(3) * 3, pbc=False, seed=3)
    far = b.copy()
    far.positions += [3.0 + model.r_max + 0.01, 0, 0]
    both = a + far
    assert _energy(model, both) == pytest.approx(_energy(model, a) + _energy(model, b), abs=1e-11)
    near = b.copy()
    near.positions += [3.5, 0, 0]
    assert abs(_energy(model, a + near) - _energy(model, a) - _energy(model, b)) > 1e-8


def test_pair_cutoff_removes_only_that_pair():
    base = tiny_model(pair_r_max={"H-H": 2.0})
    pair = Atoms("HH", positions=[[0, 0, 0], [2.5, 0, 0]])
    assert _energy(base, pair) == pytest.approx(2 * -1.0, abs=1e-12)
    mixed = Atoms("HN", positions=[[0, 0, 0], [2.5, 0, 0]])
    assert abs(_energy(base, mixed) - (-4.0)) > 1e-8


def test_batch_evaluation_equals_one_by_one():
    model = tiny_model()
    structures = [random_structure(n, seed=n) for n in (5, 9, 7)]
    structures.append(random_structure(6, cell=np.eye(3) * 4, pbc=False, seed=1))
    calc = LegatoCalculator(model)
    batch = calc.calculate_batch(structures)
    assert calc.n_evaluations == 1
    for atoms, res in zip(structures, batch):
        single = LegatoCalculator(model).calculate_batch([atoms])[0]
        assert res.keys() == single.keys()
        for key in res:
            np.testing.assert_allclose(res[key], single[key], atol=1e-12)
    assert "stress" not in batch[-1]


def test_float32_model_is_close_to_float64_and_returns_float64():
    atoms = random_structure(12, seed=8)
    atoms64, atoms32 = atoms.copy(), atoms.copy()
    atoms64.calc = LegatoCalculator(tiny_model(dtype=torch.float64))
    atoms32.calc = LegatoCalculator(tiny_model(dtype=torch.float32))
    assert atoms32.get_forces().dtype == np.float64
    assert atoms32.get_potential_energy() == pytest.approx(atoms64.get_potential_energy(), abs=1e-4)
    np.testing.assert_allclose(atoms32.get_forces(), atoms64.get_forces(), atol=1e-4)
    np.testing.assert_allclose(atoms32.get_stress(), atoms64.get_stress(), atol=1e-5)


def test_calculator_can_switch_a_model_file_to_float64(tmp_path):
    from legato_ase import save_model

    save_model(tiny_model(dtype=torch.float32), tmp_path / "m.pt")
    atoms = random_structure(8, seed=11)
    atoms.calc = LegatoCalculator(tmp_path / "m.pt", dtype="float64")
    assert atoms.calc.model.dtype == torch.float64
    reference = atoms.copy()
    reference.calc = LegatoCalculator(tiny_model(dtype=torch.float64))
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-6)
    with pytest.raises(ValueError, match="float32"):
        LegatoCalculator(tmp_path / "m.pt", dtype="half")


@pytest.mark.parametrize("pbc", [True, False])
def test_memory_bounded_chunks_give_the_same_results(pbc):
    """Splitting a large structure into domains evaluated in turn changes nothing."""
    model = tiny_model()
    atoms = random_structure(
        30, cell=[[7.0, 0, 0], [1.2, 6.5, 0], [-0.8, 0.9, 6.8]], pbc=pbc, seed=12
    )
    whole = LegatoCalculator(model, max_edges=None).calculate_batch([atoms])[0]
    chunked_calc = LegatoCalculator(model, max_edges=50)
    assert chunked_calc.evaluator.sub_domains(len(atoms)) > 2
    chunked = chunked_calc.calculate_batch([atoms])[0]
    assert chunked.keys() == whole.keys()
    for key in whole:
        np.testing.assert_allclose(chunked[key], whole[key], rtol=0, atol=1e-10, err_msg=key)


def test_per_atom_energies_sum_to_total():
    atoms = random_structure(10, seed=9)
    atoms.calc = LegatoCalculator(tiny_model())
    assert atoms.get_potential_energies().sum() == pytest.approx(
        atoms.get_potential_energy(), abs=1e-12
    )
    assert atoms.get_potential_energy(force_consistent=True) == atoms.get_potential_energy()


@pytest.mark.parametrize("l_max,parity", [(0, True), (1, False), (3, True)])
def test_other_rotation_orders_stay_invariant(l_max, parity):
    from helpers import random_rotation

    model = tiny_model(l_max=l_max, parity=parity, n_layers=2)
    atoms = random_structure(8, seed=10)
    rot = random_rotation(3, reflect=True)
    turned = atoms.copy()
    turned.set_cell(atoms.cell.array @ rot.T)
    turned.positions = atoms.positions @ rot.T
    assert _energy(model, turned) == pytest.approx(_energy(model, atoms), abs=1e-9)
