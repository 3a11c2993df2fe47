"""benchmarks/bench_pimd_stability.py: the per-bead bond and contact checker, and a real
i-PI TRPMD run in two segments (the second continuing from the first's RESTART)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_model

from legato_ase import save_model
from legato_ase.structures import ammonia_crystal

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pimd_stability.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_pimd_stability", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def _ring(atoms, n_beads=2):
    return np.stack([atoms.positions.copy() for _ in range(n_beads)])


def test_checker_flags_one_bead_stretching_a_bond_beyond_half_an_angstrom(bench):
    atoms = ammonia_crystal(1)
    checker = bench.BeadChecker(atoms, n_beads=2)
    assert len(checker.i) == 12  # 4 molecules, 3 N–H bonds each
    for _ in range(3):
        result = checker.check(_ring(atoms))
        assert result["max_excursion"].max() < 1e-9
        assert bench._failure(0, result, checker) is None
    n, h = int(checker.i[5]), int(checker.j[5])
    frame = _ring(atoms)
    unit = (atoms.positions[h] - atoms.positions[n]) / atoms.get_distance(n, h, mic=True)
    frame[1, h] += 0.6 * unit  # bead 1 only
    result = checker.check(frame)
    np.testing.assert_allclose(result["max_excursion"], [0.0, 0.6], atol=1e-9)
    assert result["centroid_excursion"] == pytest.approx(0.3)  # the mean of the two beads
    failure = bench._failure(7, result, checker)
    assert failure["criterion"] == "bond" and failure["bead"] == 1 and failure["step"] == 7
    assert sorted(failure["bond"]) == sorted([n, h])


def test_checker_finds_a_close_contact_between_molecules_and_ignores_wrapping(bench):
    atoms = ammonia_crystal(1)
    checker = bench.BeadChecker(atoms, n_beads=2)
    frame = _ring(atoms)
    frame[0] += atoms.cell.array[0]  # a whole lattice vector: the same structure
    intermolecular = checker.check(frame)["min_intermolecular"]
    assert intermolecular[0] == pytest.approx(intermolecular[1])
    assert 1.5 < intermolecular[0] < 3.0  # N–H···N hydrogen bonds of NH3-I
    h, other_n = int(checker.j[0]), int(np.flatnonzero(checker.molecule != checker.molecule[0])[0])
    assert atoms[other_n].symbol == "N"
    frame = _ring(atoms)
    frame[0, h] = frame[0, other_n] + [0.3, 0.0, 0.0]
    result = checker.check(frame)
    assert result["min_contact"][0] == pytest.approx(0.3, abs=1e-6)
    assert result["min_contact"][1] > 0.9
    assert bench._failure(1, result, checker)["criterion"] in ("bond", "contact")


def test_continued_input_sets_total_steps_even_where_ipi_left_it_out(bench, tmp_path):
    # i-PI writes no <total_steps> into a RESTART when it equals its default, 1000
    previous = tmp_path / "seg_000"
    previous.mkdir()
    (previous / "RESTART").write_text("<simulation><step>1000</step></simulation>")
    (previous / "init.extxyz").write_text("")
    path = bench.continued_input(previous / "RESTART", tmp_path / "seg_001", 1200)
    assert bench.ET.parse(path).getroot().find("total_steps").text.strip() == "1200"
    path = bench.continued_input(path, tmp_path / "seg_002", 1400)
    assert [e.text.strip() for e in bench.ET.parse(path).getroot().iter("total_steps")] == ["1400"]


@pytest.mark.slow  # ~25 s idle, a minute on a busy machine: four program starts
@pytest.mark.skipif(shutil.which("i-pi") is None, reason="i-PI is not installed")
def test_real_ipi_trpmd_in_two_segments_is_one_run_and_a_rerun_continues_not_repeats(tmp_path):
    model = tmp_path / "tiny.pt"
    save_model(tiny_model(), model)

    def command(out, segment_ps="0.002", seed="12345"):
        return [sys.executable, str(SCRIPT), "--model", str(model), "--beads", "2",
                "--structure", "nh3-crystal:1x1x1", "--time-ps", "0.004", "--timestep-fs",
                "0.5", "--segment-ps", segment_ps, "--seed", seed, "--out", str(out)]  # fmt: skip

    out = tmp_path / "run"
    done = subprocess.run(command(out), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["last_step"], summary["n_segments"], summary["survived"]) == (8, 2, True)
    with np.load(out / "checks.npz") as data:
        assert data["step"].tolist() == [0, 2, 4, 6, 8]  # both segments, no frame twice
        assert data["max_excursion"].shape == (5, 2)
        assert data["temperatures"][:, 0].tolist() == [0, 2, 4, 6, 8]
    assert (out / "pimd_stability.png").stat().st_size > 0
    assert not list(out.glob("work/seg_*/simulation.pos_*.xyz"))  # checked, then deleted
    again = subprocess.run(command(out), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and json.loads((out / "summary.json").read_text()) == summary
    other = subprocess.run(command(out, seed="3"), capture_output=True, text=True, timeout=600)
    assert other.returncode != 0 and "other settings" in other.stderr
    whole = tmp_path / "whole"
    assert subprocess.run(command(whole, "0.004"), capture_output=True, timeout=600).returncode == 0
    with np.load(out / "checks.npz") as split, np.load(whole / "checks.npz") as joined:
        # the RESTART carries positions, momenta, thermostat and random-number states
        np.testing.assert_allclose(split["temperatures"], joined["temperatures"], atol=1e-4)
        np.testing.assert_allclose(split["max_nh"], joined["max_nh"], atol=1e-5)
