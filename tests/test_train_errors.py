"""Bad input gets a clear error: missing labels, unknown species, bad config keys."""

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

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
