"""The ASE calculator contract, model files, bad input, and the paper's TorchScript models."""

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.md.verlet import VelocityVerlet
from helpers import random_structure, tiny_model

import legato_ase
from legato_ase import LegatoCalculator, load_model, save_model


def test_one_model_call_per_md_step():
    atoms = random_structure(10, seed=1)
    calc = LegatoCalculator(tiny_model())
    atoms.calc = calc
    (
        atoms.get_potential_energy(),
        atoms.get_forces(),
        atoms.get_stress(),
        atoms.get_potential_energies(),
    )
    assert calc.n_evaluations == 1
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dyn.attach(lambda: (atoms.get_potential_energy(), atoms.get_stress()), interval=1)
    dyn.run(5)
    assert calc.n_evaluations == 1 + 5


def test_results_follow_position_and_cell_changes():
    atoms = random_structure(10, seed=2)
    atoms.calc = LegatoCalculator(tiny_model())
    e0 = atoms.get_potential_energy()
    atoms.positions[0] += [0.1, 0.0, 0.0]
    e1 = atoms.get_potential_energy()
    atoms.set_cell(atoms.cell.array * 1.02, scale_atoms=True)
    e2 = atoms.get_potential_energy()
    fresh = atoms.copy()
    fresh.calc = LegatoCalculator(atoms.calc.model)
    assert fresh.get_potential_energy() == e2
    s2 = atoms.get_stress()
    atoms.set_cell(atoms.cell.array * 0.97, scale_atoms=False)  # only the periodic images move
    e3, s3 = atoms.get_potential_energy(), atoms.get_stress()
    assert len({e0, e1, e2, e3}) == 4 and not np.allclose(s2, s3)
    fresh = atoms.copy()  # a fresh calculator agrees: nothing stale was used
    fresh.calc = LegatoCalculator(atoms.calc.model)
    assert fresh.get_potential_energy() == e3


def test_unavailable_or_unknown_devices_are_refused_plainly():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            LegatoCalculator(tiny_model(), device="cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        LegatoCalculator(tiny_model(), device="gpu")


def test_stress_only_for_three_dimensional_periodic_cells():
    calc = LegatoCalculator(tiny_model())
    molecule = Atoms("NH3", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    molecule.calc = calc
    assert np.isfinite(molecule.get_forces()).all()
    with pytest.raises(PropertyNotImplementedError):
        molecule.get_stress()
    slab = random_structure(8, seed=3, pbc=[True, True, False])
    slab.calc = calc
    with pytest.raises(PropertyNotImplementedError):
        slab.get_stress()


def test_save_load_round_trip_is_bit_identical(tmp_path):
    model = tiny_model(dtype=torch.float32, seed=3)
    path = tmp_path / "m.pt"
    save_model(model, path, metadata={"note": "test", "rho": 0.005})
    loaded = load_model(path)
    assert loaded.config == model.config and loaded.species == model.species
    assert loaded.metadata["rho"] == 0.005 and loaded.dtype == torch.float32
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    atoms = random_structure(9, seed=4)
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = LegatoCalculator(model), LegatoCalculator(str(path))
    assert a.get_potential_energy() == b.get_potential_energy()
    assert np.array_equal(a.get_forces(), b.get_forces())
    payload = torch.load(path, weights_only=True)
    assert payload["format_version"] == 1 and payload["r_max"] == model.r_max


def test_presets_build_and_report_their_settings():
    paper = legato_ase.build_model("legato-paper")
    assert paper.r_max == 6.0 and paper.config.n_layers == 3 and paper.config.n_tensor == 32
    assert paper.config.cutoff_p == 7 and paper.config.l_max == 1
    with pytest.raises(ValueError, match="did you mean 'n_layers'"):
        legato_ase.build_model({"preset": "default", "n_layer": 3})
    with pytest.raises(ValueError, match="legato-paper"):
        legato_ase.build_model("legato-papr")


def test_unknown_species_names_both_lists():
    atoms = Atoms("NH2O", positions=np.random.default_rng(0).random((4, 3)) * 3)
    atoms.calc = LegatoCalculator(tiny_model())
    with pytest.raises(ValueError, match=r"\['O'\].*\['H', 'N'\]"):
        atoms.get_potential_energy()


def test_nan_positions_are_refused():
    atoms = random_structure(6, seed=5)
    atoms.positions[2, 1] = np.nan
    atoms.calc = LegatoCalculator(tiny_model())
    with pytest.raises(ValueError, match="NaN or infinite"):
        atoms.get_forces()


@pytest.mark.parametrize(
    "cell,pattern",
    [
        ([[4, 0, 0], [0, 0, 0], [0, 0, 4]], "cell vector 1 is zero"),
        ([[4, 0, 0], [8, 0, 0], [0, 0, 4]], "degenerate"),
    ],
)
def test_bad_periodic_cells_are_refused(cell, pattern):
    atoms = Atoms("NH", positions=[[0, 0, 0], [1, 0, 0]], cell=cell, pbc=True)
    atoms.calc = LegatoCalculator(tiny_model())
    with pytest.raises(ValueError, match=pattern):
        atoms.get_potential_energy()


def test_atoms_on_top_of_each_other_are_refused():
    atoms = Atoms("NHH", positions=[[0, 0, 0], [1, 0, 0], [1, 0, 1e-4]])
    atoms.calc = LegatoCalculator(tiny_model())
    with pytest.raises(ValueError, match="atoms 1 and 2 are"):
        atoms.get_potential_energy()


def test_wrong_and_corrupt_model_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundled models"):
        LegatoCalculator(tmp_path / "missing.pt")
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a readable legato-ase model"):
        LegatoCalculator(text)
    save_model(tiny_model(), tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        LegatoCalculator(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a legato-ase model file"):
        LegatoCalculator(tmp_path / "other.pt")
    payload = torch.load(tmp_path / "good.pt", weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="newer than this legato-ase"):
        LegatoCalculator(tmp_path / "future.pt")
    payload = torch.load(tmp_path / "good.pt", weights_only=True)
    payload["state_dict"].pop(next(iter(payload["state_dict"])))
    del payload["checksum"]  # as in a file from before checksums
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="do not fit the network"):
        LegatoCalculator(tmp_path / "mismatch.pt")
    with pytest.raises(TypeError, match="model must be"):
        LegatoCalculator(42)


def flip_bit_in_weights(path, name_part="data/0"):
    """Flip one bit of the first weight stored in a torch.save archive, in place."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(name_part))
    data = bytearray(path.read_bytes())
    name_length, extra_length = (
        int.from_bytes(data[info.header_offset + k : info.header_offset + k + 2], "little")
        for k in (26, 28)
    )
    start = info.header_offset + 30 + name_length + extra_length
    data[start + 3] ^= 0x40  # a high exponent bit of the first float32
    path.write_bytes(bytes(data))


def test_damaged_empty_and_random_files_are_refused_naming_the_file(tmp_path):
    model = tiny_model()
    good, flipped = tmp_path / "good.pt", tmp_path / "flipped.pt"
    save_model(model, good)
    flipped.write_bytes(good.read_bytes())
    flip_bit_in_weights(flipped)
    raw = torch.load(flipped, weights_only=True)  # torch itself reads the damaged file
    assert not all(torch.equal(raw["state_dict"][k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match=r"flipped\.pt is damaged.*checksum"):
        load_model(flipped)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.pt .*empty"):
        LegatoCalculator(tmp_path / "empty.pt")
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match=r"noise\.pt is not a readable") as err:
        load_model(tmp_path / "noise.pt")
    assert "weights_only" not in str(err.value)


def test_model_files_without_a_checksum_still_load(tmp_path):
    save_model(tiny_model(), tmp_path / "new.pt")
    payload = torch.load(tmp_path / "new.pt", weights_only=True)
    assert payload["checksum"].startswith("sha256:")
    del payload["checksum"]
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt").state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in payload["state_dict"].items())


def test_model_file_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "legato-ase model", "format_version": 1, "x": Evil()}, path)
    with pytest.raises(ValueError, match="not a readable"):
        load_model(path)


def test_calculator_is_registered_with_ase():
    from ase.calculators.calculator import get_calculator_class

    assert get_calculator_class("legato") is LegatoCalculator


# ---- the paper's released TorchScript models (read from ../shared, never shipped) ----

PAPER_ENERGIES = {"allegro_legato_nh3_rho0.005.pth": -1935.34, "allegro_nh3.pth": -1935.25}


@pytest.mark.parametrize(
    "name",
    ["allegro_legato_nh3_rho0.005.pth", pytest.param("allegro_nh3.pth", marks=pytest.mark.slow)],
)
def test_torchscript_model_reproduces_paper_energy_and_direct_forces(shared_dir, name):
    from ase.io import read

    from legato_ase.neighbors import neighbor_list

    path = shared_dir / "reference_models" / name
    with pytest.raises(ValueError, match="allow_torchscript=True"):
        LegatoCalculator(path)
    atoms = read(shared_dir / "reference_models" / "nh3_432_liquid_start.extxyz")
    atoms.calc = LegatoCalculator(path, allow_torchscript=True)
    assert atoms.get_potential_energy() == pytest.approx(PAPER_ENERGIES[name], abs=0.01)
    # Forces equal a direct call of the module with its own (cell, integer shift) convention.
    module = torch.jit.load(str(path))
    i, j, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, 6.0)
    out = module(
        {
            "pos": torch.tensor(atoms.positions, dtype=torch.float32),
            "edge_index": torch.tensor(np.stack([i, j])),
            "edge_cell_shift": torch.tensor(shifts, dtype=torch.float32),
            "cell": torch.tensor(atoms.cell.array, dtype=torch.float32),
            "atom_types": torch.tensor(
                [0 if s == "H" else 1 for s in atoms.get_chemical_symbols()]
            ),
        }
    )
    np.testing.assert_allclose(atoms.get_forces(), out["forces"].detach().numpy(), atol=2e-4)
    assert out["total_energy"].item() == pytest.approx(atoms.get_potential_energy(), abs=2e-3)


def _strings(value):
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("name", ["nh3-legato", "nh3-allegro"])
def test_bundled_models_carry_a_checksum_and_no_paths_of_the_build_machine(name):
    from pathlib import PurePosixPath, PureWindowsPath

    from legato_ase.io import read_model_file

    payload = read_model_file(name)  # verifies the checksum
    assert payload["checksum"].startswith("sha256:")
    for text in _strings(payload["metadata"]):
        assert not PurePosixPath(text).is_absolute() and not PureWindowsPath(text).drive, text
