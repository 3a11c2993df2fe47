"""The `legato md` main job and `legato info`, run as a user would."""

import subprocess
import sys

from ase.io import read, write

from legato_ase.structures import ammonia_crystal


def _legato(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "legato_ase.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _numbers(row):
    try:
        return [float(x) for x in row]
    except ValueError:
        return None


def test_md_command_writes_trajectory_and_prints_energy_and_temperature(tmp_path):
    write(tmp_path / "cell.extxyz", ammonia_crystal(1))
    run = _legato(
        "md",
        "cell.extxyz",
        "--steps",
        "6",
        "--log-interval",
        "3",
        "--trajectory",
        "t.traj",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    table = [
        row for row in map(str.split, run.stdout.splitlines()) if len(row) == 4 and _numbers(row)
    ]
    assert [float(row[0]) for row in table] == [0.0, 3.0, 6.0]
    assert all(50 < float(row[3]) < 400 for row in table)  # temperature column, around 150 K
    frames = read(tmp_path / "t.traj", ":")
    assert len(frames) == 3
    assert abs(frames[-1].get_potential_energy() - float(table[-1][1])) < 1e-3


def test_md_command_reports_a_missing_model_clearly(tmp_path):
    run = _legato("md", "--model", "no-such-model", "--steps", "1", cwd=tmp_path)
    assert run.returncode == 2
    assert "bundled models" in run.stderr and "Traceback" not in run.stderr


def test_info_shows_species_and_cutoff(tmp_path):
    run = _legato("info", "nh3-legato", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert '"species"' in run.stdout and '"r_max"' in run.stdout
