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
