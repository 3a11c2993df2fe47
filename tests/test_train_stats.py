"""Data statistics, error metrics and sharpness behave as their definitions say."""

import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from helpers import random_structure, tiny_model

from legato_ase import LegatoCalculator
from legato_ase.train import expected_sharpness, load_frames
from legato_ase.train.loss import evaluate_errors
from legato_ase.train.stats import average_num_neighbors, energy_shifts, force_rms


def _labelled(tmp_path, model, n=4, energies=None):
    frames = []
    for k in range(n):
        atoms = random_structure(n_atoms=10 + 2 * k, seed=k)
        atoms.calc = LegatoCalculator(model)
        results = {
            "energy": atoms.get_potential_energy(),
            "forces": atoms.get_forces(),
            "stress": atoms.get_stress(),
        }
        if energies is not None:
            results["energy"] = energies(atoms)
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    path = tmp_path / "labelled.extxyz"
    write(path, frames)
    return path


def test_energy_shifts_recover_per_species_energies_by_least_squares(tmp_path):
    model = tiny_model()
    true = {"H": -13.6, "N": -270.0}
    path = _labelled(
        tmp_path, model, energies=lambda a: sum(true[s] for s in a.get_chemical_symbols())
    )
    frames = load_frames([str(path)], model.species, model.r_max)
    fitted = energy_shifts(frames, model.species)
    assert fitted["H"] == pytest.approx(true["H"], abs=1e-6)
    assert fitted["N"] == pytest.approx(true["N"], abs=1e-6)


def test_average_neighbours_and_force_scale_match_direct_counts(tmp_path):
    model = tiny_model()
    frames = load_frames([str(_labelled(tmp_path, model))], model.species, model.r_max)
    n_edges = sum(f.graph.edge_index.shape[1] for f in frames)
    assert average_num_neighbors(frames) == pytest.approx(
        n_edges / sum(f.graph.n_atoms for f in frames)
    )
    forces = torch.cat([f.forces for f in frames])
    z = torch.cat([f.graph.species for f in frames])
    assert force_rms(frames, model.species)["N"] == pytest.approx(
        float(forces[z == 1].pow(2).mean().sqrt())
    )


def test_a_model_has_zero_error_on_its_own_labels(tmp_path):
    model = tiny_model()
    frames = load_frames([str(_labelled(tmp_path, model))], model.species, model.r_max)
    metrics = evaluate_errors(model, frames, batch_size=3)
    for key in ("energy_per_atom_rmse", "forces_rmse", "forces_H_mae", "stress_rmse", "loss"):
        assert metrics[key] < 1e-6, key  # extxyz stores 8 decimals


def test_errors_of_a_different_model_are_positive(tmp_path):
    frames = load_frames([str(_labelled(tmp_path, tiny_model()))], ["H", "N"], 3.5)
    metrics = evaluate_errors(tiny_model(seed=1), frames)
    assert metrics["forces_rmse"] > 1e-3 and metrics["forces_rmse"] >= metrics["forces_mae"]


def test_sharpness_is_positive_at_a_minimum_and_weights_are_restored(tmp_path):
    model = tiny_model()
    frames = load_frames([str(_labelled(tmp_path, model, n=2))], model.species, model.r_max)
    before = [p.detach().clone() for p in model.parameters()]
    result = expected_sharpness(model, frames, sigma=0.01, n_samples=4)
    # The model sits at the exact minimum (zero loss) of its own labels: noise can only raise it.
    assert result.base_loss < 1e-12
    assert result.sharpness > 0 and all(loss > 0 for loss in result.perturbed_losses)
    for p, w in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, w)


def test_larger_noise_gives_larger_sharpness(tmp_path):
    model = tiny_model()
    frames = load_frames([str(_labelled(tmp_path, model, n=2))], model.species, model.r_max)
    small = expected_sharpness(model, frames, sigma=0.003, n_samples=4).sharpness
    large = expected_sharpness(model, frames, sigma=0.03, n_samples=4).sharpness
    assert large > 10 * small


def test_block_split_holds_out_whole_contiguous_blocks_of_each_file():
    from legato_ase.train import DataConfig
    from legato_ase.train.dataset import split_indices

    cfg = DataConfig(train=("x",), split="blocks", val_fraction=0.2, block_size=5)
    train_idx, val_idx = split_indices([50, 30], cfg, seed=3)
    assert sorted(train_idx + val_idx) == list(range(80))
    assert not set(train_idx) & set(val_idx)
    blocks = {i // 5 for i in val_idx if i < 50} | {10 + (i - 50) // 5 for i in val_idx if i >= 50}
    assert len(val_idx) == 5 * len(blocks)  # only whole blocks
    assert len([i for i in val_idx if i < 50]) == 10 and len([i for i in val_idx if i >= 50]) == 5


def test_loss_uses_per_atom_energies_and_huber_is_linear_beyond_delta():
    from legato_ase.train import LossConfig
    from legato_ase.train.dataset import Batch
    from legato_ase.train.loss import loss_terms

    batch = Batch(
        graph=None,
        energy=torch.tensor([0.0, 0.0], dtype=torch.float64),
        forces=torch.zeros(3, 3, dtype=torch.float64),
        stress=None,
        volume=torch.ones(2, dtype=torch.float64),
        n_atoms=torch.tensor([1.0, 2.0], dtype=torch.float64),
    )
    pred = {
        "energy": torch.tensor([0.2, 0.4], dtype=torch.float64),
        "forces": torch.full((3, 3), 0.3, dtype=torch.float64),
    }
    mse = loss_terms(pred, batch, LossConfig(energy_weight=2.0))
    assert float(mse["energy"]) == pytest.approx(0.2**2)  # both frames 0.2 eV/atom off
    assert float(mse["loss"]) == pytest.approx(2 * 0.04 + 0.09)
    huber = loss_terms(pred, batch, LossConfig(kind="huber", huber_delta=0.1))
    assert float(huber["forces"]) == pytest.approx(0.1 * (0.3 - 0.05))
