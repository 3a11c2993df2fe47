"""The `legato md` main job and `legato info`, run as a user would."""

import subprocess
import sys
from pathlib import Path

import pytest
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


@pytest.mark.slow
def test_md_command_compiled_follows_the_eager_trajectory(tmp_path):
    write(tmp_path / "cell.extxyz", ammonia_crystal(1))
    paths = {}
    for name, extra in (("eager", []), ("compiled", ["--compile"])):
        argv = ["md", "cell.extxyz", "--steps", "6", "--log-interval", "3", *extra]
        run = _legato(*argv, "--trajectory", f"{name}.traj", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        paths[name] = tmp_path / f"{name}.traj"
    eager, compiled = read(paths["eager"], ":"), read(paths["compiled"], ":")
    assert len(eager) == len(compiled) == 3
    for a, b in zip(eager, compiled):  # float32 model: round-off only, over 6 steps
        assert abs(a.positions - b.positions).max() < 1e-4
        assert abs(a.get_potential_energy() - b.get_potential_energy()) < 1e-3


def test_md_command_reports_a_missing_model_clearly(tmp_path):
    run = _legato("md", "--model", "no-such-model", "--steps", "1", cwd=tmp_path)
    assert run.returncode == 2
    assert "bundled models" in run.stderr and "Traceback" not in run.stderr


def test_info_shows_species_and_cutoff(tmp_path):
    run = _legato("info", "nh3-legato", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert '"species"' in run.stdout and '"r_max"' in run.stdout


def test_info_into_a_closed_pipe_ends_without_a_traceback(tmp_path):
    run = subprocess.Popen(
        [sys.executable, "-m", "legato_ase.cli", "info", "nh3-legato"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    run.stdout.close()  # like `| head` that has read enough
    err = run.stderr.read().decode()
    assert run.wait(timeout=600) == 0 and "Traceback" not in err and "BrokenPipe" not in err


def test_md_refuses_impossible_settings_and_unavailable_devices_up_front(tmp_path, capsys):
    from legato_ase.cli import main

    for args, message in (
        (["--temperature", "-5"], "temperature must be ≥ 0 K"),
        (["--timestep", "0"], "time step must be positive"),
        (["--device", "gpu"], "unknown device 'gpu'"),
    ):
        assert main(["md", "--steps", "1", "--trajectory", str(tmp_path / "t"), *args]) == 2
        assert message in capsys.readouterr().err


def test_malformed_structure_file_is_named_with_its_line(tmp_path, capsys):
    from legato_ase.cli import main
    from legato_ase.datasets import read_frames

    write(tmp_path / "good.extxyz", [ammonia_crystal(1)] * 2)  # frames of 18 lines
    lines = (tmp_path / "good.extxyz").read_text().splitlines()
    fields = lines[5].split()
    fields[2] = "1.2.3"
    (tmp_path / "bad.extxyz").write_text("\n".join([*lines[:5], " ".join(fields), *lines[6:]]))
    with pytest.raises(ValueError, match=r"bad\.extxyz .*line 6: '1\.2\.3'.*not a number"):
        read_frames(tmp_path / "bad.extxyz")
    (tmp_path / "short.extxyz").write_text("\n".join(lines[:20] + lines[21:]))  # one atom less
    assert main(["md", str(tmp_path / "short.extxyz"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "short.extxyz" in err and "line 36: expected an atom line" in err


def test_readme_quickstart_runs_without_warnings(tmp_path):
    """The README's quickstart block, on a 16-atom crystal for 2 steps, warnings as errors."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = readme.split("## Quickstart")[1].split("```python")[1].split("```")[0]
    code = code.replace("ammonia_crystal(3)", "ammonia_crystal(1)").replace("run(100)", "run(2)")
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr


def test_help_texts_and_docstrings_cite_only_documents_that_ship():
    root = Path(__file__).parents[1]
    files = [*root.glob("legato_ase/**/*.py"), *root.glob("ipi_driver/**/*.py")]
    files += [*root.glob("ipi_driver/templates/*.xml"), *root.glob("docs/*.md")]
    assert not [str(f) for f in files if "REFERENCE" in f.read_text()]
