"""The long-range convolution layer: physics, exactness against Ewald sums, configuration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from helpers import (
    finite_difference_forces,
    finite_difference_stress,
    random_rotation,
    random_structure,
    tiny_model,
)
from scipy.special import erfc

import legato_ase
from legato_ase import LegatoCalculator
from legato_ase.config import LongRangeConfig
from legato_ase.model.longrange import LongRange
from legato_ase.structures import ammonia_crystal

MADELUNG_NACL = 1.747564594633182  # per ion pair, in units of q²/r_0


# The layer's two kernels: the full one and the range-separated one (only beyond r_max).
KERNELS = {"full": {}, "separated": {"exclude_short_range": True}}


@pytest.fixture(scope="module", params=list(KERNELS))
def model(request):
    return tiny_model(long_range=KERNELS[request.param])


def _calc(model, **kwargs):
    return LegatoCalculator(model, max_edges=None, **kwargs)


def _energy(model, atoms):
    atoms = atoms.copy()
    atoms.calc = _calc(model)
    return atoms.get_potential_energy()


def test_long_range_layer_changes_the_energy(model):
    atoms = random_structure(12)
    assert abs(_energy(model, atoms) - _energy(tiny_model(), atoms)) > 1e-3


def test_energy_invariant_and_forces_equivariant_under_rotation(model):
    atoms = random_structure(12)
    atoms.calc = _calc(model)
    rot = random_rotation(3)
    turned = atoms.copy()
    turned.set_cell(atoms.cell.array @ rot.T)
    turned.positions = atoms.positions @ rot.T
    turned.calc = _calc(model)
    assert turned.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-7)
    np.testing.assert_allclose(turned.get_forces(), atoms.get_forces() @ rot.T, atol=1e-6)


def test_translation_and_permutation_change_nothing(model):
    atoms = random_structure(12)
    atoms.calc = _calc(model)
    moved = atoms.copy()
    moved.positions += [1.3, -0.4, 2.2]
    order = np.random.default_rng(1).permutation(len(atoms))
    shuffled = moved[order]
    shuffled.calc = _calc(model)
    assert shuffled.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-7)
    np.testing.assert_allclose(shuffled.get_forces(), atoms.get_forces()[order], atol=1e-6)


def test_forces_match_finite_differences_on_triclinic_cell(model):
    atoms = random_structure(6)
    atoms.calc = _calc(model)
    np.testing.assert_allclose(atoms.get_forces(), finite_difference_forces(atoms), atol=1e-6)


def test_stress_matches_finite_strain_on_triclinic_cell(model):
    # Lengths away from multiples of the grid spacing: the finite strains keep the grid size.
    cell = 1.013 * np.array([[5.0, 0.0, 0.0], [0.8, 4.6, 0.0], [-0.5, 0.7, 4.8]])
    atoms = random_structure(10, cell=cell)
    atoms.calc = _calc(model)
    np.testing.assert_allclose(atoms.get_stress(), finite_difference_stress(atoms), atol=1e-7)


def test_forces_match_finite_differences_for_a_molecule(model):
    atoms = random_structure(8, pbc=False)
    atoms.calc = _calc(model)
    np.testing.assert_allclose(atoms.get_forces(), finite_difference_forces(atoms), atol=1e-6)


@pytest.mark.parametrize("layer", KERNELS.values(), ids=list(KERNELS))
def test_supercell_energy_is_extensive_with_default_settings(layer):
    """A 2×1×1 supercell of the 16-atom ammonia crystal: the grid is not commensurate, and
    the cell is shorter than 2·r_max (a separated kernel's near field reaches images)."""
    model = tiny_model(long_range=layer)
    cell = ammonia_crystal(1)
    e1, e2 = _energy(model, cell), _energy(model, cell.repeat((2, 1, 1)))
    assert abs(e2 - 2 * e1) <= 1e-6 * abs(e2)


@pytest.mark.parametrize("layer", KERNELS.values(), ids=list(KERNELS))
def test_float32_agrees_with_float64(layer):
    atoms = random_structure(12)
    e64 = _energy(tiny_model(long_range=layer), atoms)
    e32 = _energy(tiny_model(torch.float32, long_range=layer), atoms)
    assert e32 == pytest.approx(e64, rel=1e-5)


def _fixed_charge_layer(sigma: float, spacing: float, screening: float = 0.0) -> LongRange:
    # Tighter than the defaults (truncation 5.5): these tests compare to 1e-9.
    cfg = LongRangeConfig(
        channels=1, sigma=sigma, grid_spacing=spacing, truncation=7.0, screening=[screening]
    )
    layer = LongRange(cfg, n_features=1, n_species=1).double()
    layer.amplitude.data.fill_(1.0)
    return layer.requires_grad_(False)


def _coulomb_energy(layer: LongRange, atoms: Atoms, charges: np.ndarray) -> float:
    q = torch.tensor(charges, dtype=torch.float64).unsqueeze(1)
    pos, cell = torch.tensor(atoms.positions), torch.tensor(atoms.cell.array)
    return 0.5 * float((q * layer.periodic_potentials(pos, q, cell)).sum())


def _short_range_part(atoms: Atoms, charges: np.ndarray, sigma: float) -> float:
    """½ Σ' q_i q_j erfc(r/2σ)/r: the point-charge energy minus that of smeared charges."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, 14 * sigma)
    return 0.5 * float(np.sum(charges[i] * charges[j] * erfc(d / (2 * sigma)) / d))


@pytest.mark.parametrize("cell", ["cubic", "primitive"])
def test_rock_salt_matches_madelung_constant(cell):
    """Fixed ±1 charges: smeared-charge energy + real-space remainder = point-charge Ewald."""
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=cell == "cubic")
    charges = np.array([1.0 if s == "Na" else -1.0 for s in atoms.get_chemical_symbols()])
    sigma = 0.6
    layer = _fixed_charge_layer(sigma, spacing=0.4)
    energy = _coulomb_energy(layer, atoms, charges) + _short_range_part(atoms, charges, sigma)
    expected = -MADELUNG_NACL / (5.64 / 2) * len(atoms) / 2
    assert energy == pytest.approx(expected, rel=1e-9)


def _ewald_energy(atoms: Atoms, charges: np.ndarray, alpha: float = 0.45) -> float:
    """Point-charge Coulomb energy (q²/Å) by a textbook Ewald sum, written independently of
    the layer: real-space erfc sum + reciprocal sum + self term (neutral cell)."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, 6.0 / alpha)  # erfc(6) ≈ 2e-17
    real = 0.5 * np.sum(charges[i] * charges[j] * erfc(alpha * d) / d)
    recip_cell = 2 * np.pi * np.linalg.inv(atoms.cell.array).T
    k_max = 2 * alpha * 6.2  # exp(−k²/4α²) < 1e-16 beyond
    reach = [int(np.ceil(k_max / np.linalg.norm(b))) + 1 for b in recip_cell]
    grid = np.array(np.meshgrid(*[np.arange(-n, n + 1) for n in reach], indexing="ij"))
    ks = grid.reshape(3, -1).T @ recip_cell
    k2 = np.sum(ks**2, axis=1)
    ks, k2 = ks[(k2 > 0) & (k2 < k_max**2)], k2[(k2 > 0) & (k2 < k_max**2)]
    structure = np.exp(1j * ks @ atoms.positions.T) @ charges
    volume = atoms.get_volume()
    recip = 2 * np.pi / volume * np.sum(np.exp(-k2 / (4 * alpha**2)) / k2 * np.abs(structure) ** 2)
    return float(real + recip - alpha / np.sqrt(np.pi) * np.sum(charges**2))


def test_random_charges_in_a_triclinic_cell_match_an_independent_ewald_sum():
    rng = np.random.default_rng(5)
    cell = [[7.3, 0.0, 0.0], [1.9, 6.8, 0.0], [-1.2, 1.4, 8.1]]
    atoms = Atoms("H" * 14, scaled_positions=rng.random((14, 3)), cell=cell, pbc=True)
    charges = rng.normal(size=14)
    charges -= charges.mean()  # neutral: no k = 0 term on either side
    sigma = 0.6
    layer = _fixed_charge_layer(sigma, spacing=0.35)
    energy = _coulomb_energy(layer, atoms, charges) + _short_range_part(atoms, charges, sigma)
    assert energy == pytest.approx(_ewald_energy(atoms, charges), rel=1e-10)


def test_periodic_yukawa_matches_direct_sum_in_a_large_box():
    rng = np.random.default_rng(0)
    positions = torch.tensor(rng.random((6, 3)) * 4 + 10)
    q = torch.tensor(rng.normal(size=(6, 1)))
    mu, box = 1.0, 24.0  # images of the cluster: exp(−μL) ≈ 4e-11
    layer = _fixed_charge_layer(0.8, 0.4, screening=mu)
    direct = layer.direct_potentials(positions, q)
    periodic = layer.periodic_potentials(positions, q, torch.eye(3, dtype=torch.float64) * box)
    k_zero = 4 * math.pi / mu**2 * float(q.sum()) / box**3  # left out on the grid
    np.testing.assert_allclose(periodic.numpy() + k_zero, direct.numpy(), atol=1e-9)


def test_batch_of_crystal_and_molecule_equals_separate_calls(model):
    crystal, molecule = random_structure(12), random_structure(6, pbc=False, seed=3)
    calc = _calc(model)
    batched = calc.calculate_batch([crystal, molecule])
    for atoms, res in zip([crystal, molecule], batched):
        alone = _calc(model).calculate_batch([atoms])[0]
        assert res["energy"] == pytest.approx(alone["energy"], abs=1e-9)
        np.testing.assert_allclose(res["forces"], alone["forces"], atol=1e-9)


def test_save_load_round_trip(model, tmp_path):
    atoms = random_structure(12)
    legato_ase.save_model(model, tmp_path / "lr.pt")
    loaded = legato_ase.load_model(tmp_path / "lr.pt")
    assert loaded.config.long_range == model.config.long_range
    assert _energy(loaded, atoms) == _energy(model, atoms)


def test_model_without_long_range_is_unchanged_and_reloads(tmp_path):
    plain = tiny_model()
    assert plain.long_range is None and plain.config.to_dict()["long_range"] is None
    payload_config = plain.config.to_dict()
    del payload_config["long_range"]  # files written before the layer existed
    assert legato_ase.ModelConfig.from_dict(payload_config) == plain.config


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"grid_spacing": 1.0}, "too coarse"),
        ({"sigma": -1.0}, "sigma must be a positive"),
        ({"screening": [0.1, -0.2, 0.0, 0.0]}, "must be ≥ 0"),
        ({"screening": [0.1]}, "one inverse length"),
        ({"truncation": 2.0}, "at least 3"),
        ({"chanels": 2}, "did you mean 'channels'"),
    ],
)
def test_bad_long_range_settings_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        legato_ase.build_model({"preset": "default", "long_range": settings})


def test_slab_is_rejected_with_advice(model):
    atoms = random_structure(8)
    atoms.pbc = [True, True, False]
    with pytest.raises(ValueError, match="add vacuum"):
        _energy(model, atoms)


@pytest.mark.parametrize("pbc", [True, False])
def test_memory_bounded_chunks_equal_one_evaluation(model, pbc):
    """Two passes (charges, then the layer, then forces through the charges) per chunk."""
    from legato_ase.parallel.calculator import ParallelEvaluator

    cell = np.diag([7.0, 6.5, 6.8]) + [[0, 0, 0], [0.5, 0, 0], [0.3, -0.4, 0]]
    atoms = random_structure(24, cell=cell, pbc=pbc, seed=2)
    whole = _calc(model).calculate_batch([atoms])[0]
    chunked = ParallelEvaluator(model, "serial", chunk_atoms=5)
    assert chunked.sub_domains(len(atoms)) == 5
    got = chunked([atoms])[0]
    for key in whole:
        np.testing.assert_allclose(got[key], whole[key], atol=1e-10, rtol=0, err_msg=key)


def test_ipi_beads_in_one_request_match_single_evaluations(model):
    """The i-PI driver's adapter: several beads of a long-range model, units round-tripped."""
    from ipi_driver.adapter import evaluate, from_atoms, from_wire

    beads = [random_structure(10, seed=s) for s in (4, 5)]
    for bead in beads[1:]:
        bead.set_chemical_symbols(beads[0].get_chemical_symbols())
    calc = _calc(model)
    wire = evaluate(calc, from_atoms(beads), beads[0])
    for bead, got in zip(beads, from_wire(wire, beads)):
        alone = _calc(model).calculate_batch([bead])[0]
        assert got["energy"] == pytest.approx(alone["energy"], abs=1e-9)
        np.testing.assert_allclose(got["forces"], alone["forces"], atol=1e-9)
        np.testing.assert_allclose(got["stress"], alone["stress"], atol=1e-10)


def test_interpolation_gradients_are_exact_to_second_order():
    """Training differentiates forces: the custom gather must be twice differentiable."""
    from legato_ase.model.longrange import _Gather

    gen = torch.Generator().manual_seed(0)
    weights = torch.randn(3, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    grid = torch.randn(7, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    index = torch.randint(0, 7, (3, 5), generator=gen, dtype=torch.int32)

    def gather(w, g):
        return _Gather.apply(w, g, index)

    assert torch.autograd.gradcheck(gather, (weights, grid))
    assert torch.autograd.gradgradcheck(gather, (weights, grid))
