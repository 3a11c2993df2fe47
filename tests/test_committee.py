"""Committees: the mean of the members, DeePMD's model deviation, and the guard in MD."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase import units
from ase.md.verlet import VelocityVerlet
from helpers import random_structure, tiny_model

from legato_ase import LegatoCalculator, UncertaintyError, UncertaintyWarning

KEYS = ("energy", "free_energy", "energies", "forces", "stress")


@pytest.fixture(scope="module")
def members():
    return [tiny_model(seed=s) for s in range(4)]


def separate(members, atoms):
    """Each member on its own, stacked: the reference for the committee numbers."""
    runs = [LegatoCalculator(m).calculate_batch([atoms])[0] for m in members]
    return {k: np.stack([r[k] for r in runs]) for k in KEYS}


def numpy_deviation(ref):
    forces = ref["forces"]
    dev = np.sqrt(np.mean(np.sum((forces - forces.mean(0)) ** 2, axis=-1), axis=0))
    return dev, np.std(ref["energy"]) / forces.shape[1]


def test_identical_members_give_zero_deviation_and_the_single_model_results():
    atoms = random_structure(16, seed=1)
    single = LegatoCalculator(tiny_model()).calculate_batch([atoms])[0]
    committee = LegatoCalculator([tiny_model()] * 3).calculate_batch([atoms])[0]
    for key in KEYS:
        np.testing.assert_allclose(committee[key], single[key], rtol=1e-13, atol=1e-13)
    assert committee["max_force_deviation"] < 1e-13
    assert committee["energy_deviation"] < 1e-13
    assert committee["force_deviation"].shape == (len(atoms),)


def test_single_model_results_carry_no_deviation():
    res = LegatoCalculator(tiny_model()).calculate_batch([random_structure(8)])[0]
    assert "force_deviation" not in res and "max_force_deviation" not in res


def test_deviation_and_mean_equal_numpy_from_separate_evaluations(members):
    atoms = random_structure(16, seed=2)
    ref = separate(members, atoms)
    atoms.calc = LegatoCalculator(members)
    atoms.get_forces()
    res = atoms.calc.results
    dev, e_dev = numpy_deviation(ref)
    assert dev.max() > 1e-3  # different seeds really disagree
    np.testing.assert_allclose(res["force_deviation"], dev, rtol=1e-12, atol=1e-14)
    assert res["max_force_deviation"] == pytest.approx(dev.max(), rel=1e-12)
    assert res["energy_deviation"] == pytest.approx(e_dev, rel=1e-12)
    for key in KEYS:
        np.testing.assert_allclose(res[key], ref[key].mean(0), rtol=1e-12, atol=1e-12)
    assert atoms.get_potential_energy() == pytest.approx(ref["energy"].mean(), rel=1e-13)


def test_a_batch_of_structures_gives_each_its_own_committee_numbers(members):
    batch = [random_structure(12, seed=3), random_structure(10, pbc=False, seed=4)]
    results = LegatoCalculator(members).calculate_batch(batch)
    for atoms, res in zip(batch, results):
        ref_members = [LegatoCalculator(m).calculate_batch([atoms])[0] for m in members]
        forces = np.stack([r["forces"] for r in ref_members])
        dev = np.sqrt(np.mean(np.sum((forces - forces.mean(0)) ** 2, axis=-1), axis=0))
        np.testing.assert_allclose(res["force_deviation"], dev, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(res["forces"], forces.mean(0), rtol=1e-12, atol=1e-12)
    assert "stress" in results[0] and "stress" not in results[1]


def test_float32_committee_matches_float64_to_float32_precision(members):
    atoms = random_structure(16, seed=5)
    ref = LegatoCalculator(members).calculate_batch([atoms])[0]
    res = LegatoCalculator(members, dtype="float32").calculate_batch([atoms])[0]
    assert res["forces"].dtype == np.float64
    np.testing.assert_allclose(res["force_deviation"], ref["force_deviation"], atol=2e-4)
    assert members[0].dtype == torch.float64  # loading with a dtype copies, never mutates


def test_domain_split_committee_equals_one_piece(members):
    atoms = random_structure(24, seed=6).repeat((2, 1, 1))
    whole = LegatoCalculator(members, max_edges=None).calculate_batch([atoms])[0]
    split_calc = LegatoCalculator(members, max_edges=40)
    assert split_calc.evaluator.sub_domains(len(atoms)) > 1
    split = split_calc.calculate_batch([atoms])[0]
    for key in (*KEYS, "force_deviation"):
        np.testing.assert_allclose(split[key], whole[key], rtol=1e-10, atol=1e-10)
    assert split["energy_deviation"] == pytest.approx(whole["energy_deviation"], rel=1e-9)


def test_members_with_other_species_or_cutoff_are_refused():
    with pytest.raises(ValueError, match="share species and r_max.*member 1"):
        LegatoCalculator([tiny_model(), tiny_model(r_max=3.0)])
    with pytest.raises(ValueError, match="empty list"):
        LegatoCalculator([])


def test_guard_settings_are_checked():
    with pytest.raises(ValueError, match="needs a committee"):
        LegatoCalculator(tiny_model(), max_force_deviation=0.5)
    with pytest.raises(ValueError, match="positive number"):
        LegatoCalculator([tiny_model()] * 2, max_force_deviation=-1)
    with pytest.raises(ValueError, match="on_deviation must be one of"):
        LegatoCalculator([tiny_model()] * 2, max_force_deviation=0.5, on_deviation="stop")


def heating_run(members, threshold, on_deviation="raise", steps=40):
    """NVE from a compressed, hot start: the deviation grows as atoms collide."""
    atoms = random_structure(16, seed=7, min_dist=1.0)
    rng = np.random.default_rng(0)
    atoms.set_momenta(rng.normal(0, 4.0, (len(atoms), 3)) * atoms.get_masses()[:, None] ** 0.5)
    atoms.calc = LegatoCalculator(members, max_force_deviation=threshold, on_deviation=on_deviation)
    trace = []

    def record():
        dev = atoms.calc.results["force_deviation"]
        trace.append((float(dev.max()), int(dev.argmax())))

    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dyn.attach(record, interval=1)
    return atoms, dyn, trace


def test_guard_fires_at_the_first_step_over_the_threshold(members):
    _, dyn, trace = heating_run(members, threshold=None)
    dyn.run(30)
    largest = np.array([t[0] for t in trace])
    assert largest.max() > 1.5 * largest[0]  # the run drifts into disagreement
    threshold = 0.5 * (largest[0] + largest.max())
    first = int(np.argmax(largest > threshold))
    atoms, dyn, _ = heating_run(members, threshold)
    with pytest.raises(UncertaintyError) as caught:
        dyn.run(30)
    err = caught.value
    assert err.step == first and dyn.nsteps == first - 1  # raised inside step `first`
    assert (err.deviation, err.atom) == (pytest.approx(largest[first], rel=1e-9), trace[first][1])
    assert err.threshold == threshold
    assert f"atom {err.atom}" in str(err) and "max_force_deviation" in str(err)


def test_guard_in_warn_mode_warns_and_lets_the_run_go_on(members):
    _, dyn, trace = heating_run(members, threshold=None)
    dyn.run(10)
    lowest = min(t[0] for t in trace)
    _, dyn, _ = heating_run(members, threshold=lowest / 2, on_deviation="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dyn.run(10)
    assert dyn.nsteps == 10
    assert sum(issubclass(w.category, UncertaintyWarning) for w in caught) == 11


def test_model_devi_columns_equal_numpy_from_separate_evaluations(members, tmp_path):
    from legato_ase.model_devi import COLUMNS, model_devi, read_model_devi, write_model_devi

    frames = [random_structure(12, seed=s) for s in range(3)]
    table = model_devi(members, frames, steps=[0, 10, 20], batch_size=2)
    assert table.shape == (3, len(COLUMNS)) and list(table[:, 0]) == [0, 10, 20]
    for row, atoms in zip(table, frames):
        ref = separate(members, atoms)
        f_dev, e_dev = numpy_deviation(ref)
        atomic = np.std(ref["energies"], axis=0)
        expected = [atomic.max(), atomic.min(), atomic.mean()]
        expected += [f_dev.max(), f_dev.min(), f_dev.mean(), e_dev]
        np.testing.assert_allclose(row[1:], expected, rtol=1e-10, atol=1e-14)
    write_model_devi(tmp_path / "model_devi.out", table)
    text = (tmp_path / "model_devi.out").read_text().splitlines()
    assert text[0].split() == ["#", *COLUMNS]
    np.testing.assert_allclose(read_model_devi(tmp_path / "model_devi.out"), table, rtol=1e-6)


def test_model_devi_refuses_a_single_model():
    from legato_ase.model_devi import model_devi

    with pytest.raises(ValueError, match="at least two models"):
        model_devi([tiny_model()], [random_structure(8)])


def saved_committee(members, tmp_path):
    from legato_ase import save_model

    paths = []
    for n, model in enumerate(members[:3]):
        paths.append(str(tmp_path / f"m{n}.pt"))
        save_model(model, paths[-1])
    return paths


def test_model_devi_command_writes_the_table_of_a_trajectory(members, tmp_path, capsys):
    from ase.io import write

    from legato_ase.cli import main
    from legato_ase.model_devi import model_devi, read_model_devi

    paths = saved_committee(members, tmp_path)
    frames = [random_structure(12, seed=s) for s in range(4)]
    write(tmp_path / "traj.extxyz", frames)
    out = tmp_path / "devi.out"
    argv = ["model-devi", *paths, str(tmp_path / "traj.extxyz"), "-o", str(out)]
    assert main([*argv, "--frequency", "5"]) == 0
    table = read_model_devi(out)
    np.testing.assert_allclose(table[:, 0], [0, 5, 10, 15])
    np.testing.assert_allclose(table[:, 1:], model_devi(members[:3], frames)[:, 1:], rtol=1e-6)
    assert "largest force deviation" in capsys.readouterr().out
    assert main(["model-devi", paths[0], str(tmp_path / "traj.extxyz")]) == 2
    assert "at least two models" in capsys.readouterr().err
    assert main(["model-devi", *paths, str(tmp_path / "missing.traj")]) == 2
    assert "no trajectory file" in capsys.readouterr().err


def test_md_logs_the_committee_deviation_and_the_guard_stops_it(members, tmp_path, capsys):
    from ase.io import write

    from legato_ase.cli import main
    from legato_ase.md import run_nvt

    atoms = random_structure(16, seed=8, min_dist=1.0)
    atoms.calc = LegatoCalculator(members)
    rows = run_nvt(atoms, temperature_K=300, steps=4, trajectory=None, loginterval=2)
    assert len(rows) == 3 and all(r["max_devi_f_eV_A"] > 0 for r in rows)
    assert rows[-1]["max_devi_f_eV_A"] == atoms.calc.results["max_force_deviation"]
    assert "max_devi_f" in capsys.readouterr().out

    paths = saved_committee(members, tmp_path)
    write(tmp_path / "start.extxyz", atoms)
    argv = ["md", str(tmp_path / "start.extxyz"), "--model", *paths, "--steps", "4"]
    argv += ["--trajectory", str(tmp_path / "md.traj"), "--log-interval", "1"]
    assert main(argv) == 0
    assert main([*argv, "--max-force-deviation", "1e-6"]) == 3
    assert "stopped: committee force deviation" in capsys.readouterr().out
