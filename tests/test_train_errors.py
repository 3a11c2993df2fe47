"""Bad input gets a clear error: missing labels, unknown species, bad config keys."""

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write

from legato_ase.train import TrainConfig, load_frames, load_train_config, train


def _write_frames(path, with_forces=True, symbols="NH3"):
    frames = []
    for n in range(3):
        atoms = Atoms(symbols, cell=[6, 6, 6], pbc=True)
        atoms.positions = np.random.default_rng(n).random((len(atoms), 3)) * 2
        atoms.info["REF_energy"] = -10.0 - n
        if with_forces:
            atoms.arrays["REF_forces"] = np.zeros((len(atoms), 3))
        frames.append(atoms)
    write(path, frames, format="extxyz")
    return path


def _config(tmp_path, data, **top):
    return TrainConfig.from_dict({"data": data, "output_dir": str(tmp_path / "run"), **top})


def test_unknown_top_level_key_suggests_the_closest_name():
    with pytest.raises(ValueError, match="did you mean 'optimizer'"):
        TrainConfig.from_dict({"data": {"train": ["x"]}, "optimiser": {}})


def test_unknown_section_key_suggests_the_closest_name():
    with pytest.raises(
        ValueError, match="unknown key 'rh0' in section 'optimizer'.*did you mean 'rho'"
    ):
        TrainConfig.from_dict({"data": {"train": ["x"]}, "optimizer": {"rh0": 0.01}})


def test_unknown_model_key_is_rejected_when_training_starts(tmp_path):
    path = _write_frames(tmp_path / "d.extxyz")
    cfg = _config(
        tmp_path,
        {"train": [str(path)], "energy_key": "REF_energy", "forces_key": "REF_forces"},
        model={"n_layer": 1},
    )
    with pytest.raises(ValueError, match="did you mean 'n_layers'"):
        train(cfg, progress=False)


def test_bad_choices_are_named():
    with pytest.raises(ValueError, match="optimizer.sam must be one of"):
        TrainConfig.from_dict({"data": {"train": ["x"]}, "optimizer": {"sam": "yes"}})
    with pytest.raises(ValueError, match="data.split = 'files' needs data.validation"):
        TrainConfig.from_dict({"data": {"train": ["x"], "split": "files"}})


def test_missing_forces_label_names_the_key_and_the_fix(tmp_path):
    path = _write_frames(tmp_path / "d.extxyz", with_forces=False)
    with pytest.raises(ValueError, match="no label 'REF_forces'.*forces_key"):
        load_frames([str(path)], ["H", "N"], 3.0, energy_key="REF_energy", forces_key="REF_forces")


def test_custom_label_names_are_read(tmp_path):
    path = _write_frames(tmp_path / "d.extxyz")
    frames = load_frames(
        [str(path)], ["H", "N"], 3.0, energy_key="REF_energy", forces_key="REF_forces"
    )
    assert [f.energy for f in frames] == [-10.0, -11.0, -12.0]


def test_species_missing_from_the_config_are_reported(tmp_path):
    path = _write_frames(tmp_path / "d.extxyz")
    cfg = _config(
        tmp_path,
        {
            "train": [str(path)],
            "energy_key": "REF_energy",
            "forces_key": "REF_forces",
            "split": "random",
            "val_fraction": 0.34,
        },
        species=["H"],
    )
    with pytest.raises(ValueError, match=r"species \['N'\] missing"):
        train(cfg, progress=False)


def test_unknown_species_for_a_model_is_reported(tmp_path):
    path = _write_frames(tmp_path / "d.extxyz", symbols="OH2")
    with pytest.raises(ValueError, match=r"species \['O'\]"):
        load_frames([str(path)], ["H", "N"], 3.0, energy_key="REF_energy", forces_key="REF_forces")


def test_missing_data_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no data file matches"):
        load_frames([str(tmp_path / "nope.xyz")], ["H"], 3.0)


def test_missing_config_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_train_config(tmp_path / "none.yaml")


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("optimizer", {"lr": "fast"}, "optimizer.lr must be a number, got 'fast'"),
        ("schedule", {"epochs": 1.5}, "schedule.epochs must be a whole number"),
        ("schedule", {"batch_size": -2}, "schedule.batch_size must be positive"),
        ("data", {"train": ["x"], "block_size": 0}, "data.block_size must be positive"),
        ("loss", {"forces_weight": -1.0}, "loss.forces_weight must be ≥ 0"),
        ("optimizer", {"weight_decay": "none"}, "optimizer.weight_decay must be a number"),
        ("schedule", {"early_stopping_patience": 0}, "early_stopping_patience must be positive"),
        ("optimizer", {"name": "lbfgs"}, "does not support optimizer.ema_decay.*ema_decay: null"),
        (
            "optimizer",
            {"name": "lbfgs", "ema_decay": None, "sam": "sam"},
            "does not support optimizer.sam = 'sam'; set optimizer.sam: none",
        ),
        (
            "optimizer",
            {"name": "lbfgs", "ema_decay": None, "lbfgs_iterations": 0},
            "optimizer.lbfgs_iterations must be ≥ 1",
        ),
    ],
)
def test_config_values_are_checked_by_type_and_range_naming_the_key(section, values, message):
    config = {"data": {"train": ["x"]}, section: values}
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(config)


def test_a_number_that_yaml_reads_as_text_is_taken_as_the_number(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {train: [x]}\noptimizer: {lr: 5e-3}\nseed: 3\n")
    cfg = load_train_config(path)
    assert cfg.optimizer.lr == 0.005 and isinstance(cfg.optimizer.lr, float)
    with pytest.raises(ValueError, match="seed must be a whole number"):
        TrainConfig.from_dict({"data": {"train": ["x"]}, "seed": "3"})


def test_a_bad_frame_is_reported_by_its_index_in_the_file_also_with_a_stride(tmp_path):
    path = _write_frames(tmp_path / "d.extxyz")
    frames = list(read(path, ":"))
    del frames[2].arrays["REF_forces"]
    write(path, frames, format="extxyz")
    with pytest.raises(ValueError, match=r"d\.extxyz frame 2 has no label 'REF_forces'"):
        load_frames([str(path)], ["H", "N"], 3.0, "REF_energy", "REF_forces", stride=2)


def test_legato_test_finds_a_bundled_file_by_its_bare_name_and_counts_frames(capsys):
    from legato_ase.cli import main

    assert main(["test", "nh3-legato", "nh3_solid_060.extxyz.xz", "--stride", "25"]) == 0
    assert "evaluated 4 frames (256 atoms, stride 25)" in capsys.readouterr().out
