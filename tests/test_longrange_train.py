"""Training with the long-range layer: jointly, and the two-level recipe (init_from)."""

import csv

import pytest
import torch
from helpers import TINY_TRAIN_MODEL

from legato_ase import load_model
from legato_ase.train import TrainConfig, train

LONG_RANGE = {"channels": 2, "sigma": 1.6, "grid_spacing": 1.0, "head_mlp": [4]}


def _config(tmp_path, name, model, epochs=2, **extra):
    return TrainConfig.from_dict(
        {
            "data": {
                "train": ["bundled:nh3_liquid_300.extxyz.xz"],
                "stride": 50,
                "split": "random",
                "val_fraction": 0.25,
            },
            "model": model,
            "optimizer": {"lr": 0.01},
            "schedule": {"epochs": epochs, "batch_size": 2},
            "output_dir": str(tmp_path / name),
            "seed": 1,
            **extra,
        }
    )


@pytest.fixture(scope="module")
def short_range(tmp_path_factory):
    """Stage 1 of the two-level recipe: the local model alone."""
    tmp = tmp_path_factory.mktemp("stage1")
    return train(_config(tmp, "sr", TINY_TRAIN_MODEL, epochs=1), progress=False).model_path


def test_joint_training_lowers_the_loss_and_saves_the_layer(tmp_path):
    model = {**TINY_TRAIN_MODEL, "long_range": LONG_RANGE}
    result = train(_config(tmp_path, "joint", model, epochs=3), progress=False)
    with open(result.output_dir / "learning_curve.csv") as handle:
        history = [float(row["train_loss"]) for row in csv.DictReader(handle)]
    assert history[-1] < history[0]
    assert load_model(result.model_path).config.long_range.channels == 2


def test_second_stage_trains_only_the_long_range_layer(tmp_path, short_range):
    cfg = _config(
        tmp_path,
        "lr",
        {"long_range": LONG_RANGE},
        epochs=1,
        init_from=str(short_range),
        trainable="long_range",
    )
    trained = load_model(train(cfg, progress=False).model_path)
    start = load_model(short_range)
    for name, value in start.state_dict().items():
        torch.testing.assert_close(trained.state_dict()[name], value, rtol=0, atol=0)
    assert trained.config.r_max == start.config.r_max
    assert trained.long_range is not None


def test_init_from_rejects_changes_to_the_local_network(tmp_path, short_range):
    cfg = _config(tmp_path, "bad", {"r_max": 4.0}, init_from=str(short_range))
    with pytest.raises(ValueError, match="may only add 'long_range'"):
        train(cfg, progress=False)


def test_unknown_trainable_choice_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="trainable"):
        _config(tmp_path, "x", {}, trainable="allegro")


def test_layer_only_training_accepts_the_default_layer_section(tmp_path):
    cfg = _config(tmp_path, "x", {"long_range": {}}, trainable="long_range")
    assert cfg.trainable == "long_range"
    with pytest.raises(ValueError, match="model.long_range is null"):
        _config(tmp_path, "y", {"long_range": None}, trainable="long_range")


def _added_layer(tmp_path, short_range):
    """The second stage's model before training: the local file plus a fresh layer."""
    from legato_ase.train.prepare import build_from_file, load_training_data, model_config

    cfg = _config(tmp_path, "zero", {"long_range": LONG_RANGE}, init_from=str(short_range))
    base = model_config(cfg)
    data = load_training_data(cfg, base.r_max)
    return build_from_file(cfg, data, base)


def _energy(model, atoms):
    from legato_ase import LegatoCalculator

    return LegatoCalculator(model, max_edges=None).calculate_batch([atoms])[0]["energy"]


def test_layer_added_to_a_trained_model_starts_with_its_energy(tmp_path, short_range):
    from legato_ase.structures import ammonia_crystal

    atoms = ammonia_crystal()
    added = _added_layer(tmp_path, short_range)
    assert float(added.long_range.amplitude.detach().abs().max()) == 0.0
    assert _energy(added, atoms) == pytest.approx(_energy(load_model(short_range), atoms), abs=0)


def test_layer_started_at_zero_amplitude_still_learns(tmp_path, short_range):
    from legato_ase.data import atoms_to_graph
    from legato_ase.structures import ammonia_crystal

    atoms = ammonia_crystal()
    added = _added_layer(tmp_path, short_range)
    before = _energy(added, atoms)
    graph = atoms_to_graph(atoms, added.species, added.config.r_max)
    energy = added.evaluate(graph, forces=False, virial=False)["energy"].sum()
    energy.backward()
    grad = added.long_range.amplitude.grad
    assert float(grad.abs().min()) > 1e-6
    with torch.no_grad():
        added.long_range.amplitude -= 0.1 * grad / grad.abs().max()
    assert abs(_energy(added, atoms) - before) > 1e-6
