"""The driver with the real i-PI 3.3 (`i-pi` command): PIMD with 4 beads over a unix socket,
batching on and off, a failing driver, i-PI's own Python driver and <ffdirect> loading our
PES module. Every process runs under `timeout`; success is judged from the output files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

import numpy as np
import pytest
from helpers import tiny_model

from ipi_driver import PES_FILE, SimulationSettings, write_simulation
from ipi_driver.launch import read_properties, run_ipi
from ipi_driver.structures import nh3_crystal
from legato_ase import LegatoCalculator, save_model

pytestmark = pytest.mark.skipif(shutil.which("i-pi") is None, reason="i-PI is not installed")
STEPS = 3


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_model(tiny_model(), path)
    return str(path)


def _sheared_crystal():
    """NH3-I sheared to a triclinic cell in a general orientation: i-PI rotates it (a along
    x, b in the xy plane), so the driver must use the cell and positions i-PI sends."""
    atoms = nh3_crystal(repeat=(1, 1, 1))
    cell = atoms.cell.array.copy()
    cell[1] += [0.4, 0.0, 0.0]
    cell[2] += [-0.3, 0.25, 0.0]
    atoms.set_cell(cell, scale_atoms=True)
    atoms.rotate(30, "z", rotate_cell=True)
    atoms.rotate(20, "x", rotate_cell=True)
    return atoms


def _settings(**changes):
    base = dict(
        kind="pimd",
        n_beads=4,
        total_steps=STEPS,
        properties_stride=1,
        address=f"legato_{uuid.uuid4().hex[:10]}",
        temperature_K=150.0,
    )
    return SimulationSettings(**{**base, **changes})


def _same_trajectory(a, b):
    for key in ("potential", "conserved", "kinetic_cv", "pressure_cv"):
        np.testing.assert_allclose(a.properties[key], b.properties[key], rtol=1e-7, atol=1e-7)


def test_pimd_4_beads_batched_and_unbatched_runs_give_the_same_trajectory(tmp_path, model_file):
    atoms = _sheared_crystal()
    plain = run_ipi(
        atoms, _settings(batch_size=1), tmp_path / "plain", model_file, timeout_s=180, threads=1
    )
    batched = run_ipi(
        atoms, _settings(batch_size=4), tmp_path / "batch", model_file, timeout_s=180, threads=1
    )
    for run in (plain, batched):
        assert run.last_step == STEPS, (run.directory / "ipi.log").read_text()[-2000:]
        assert run.driver_returncode == 0
    assert "batch_size 4" in (tmp_path / "batch" / "driver.log").read_text()
    _same_trajectory(plain, batched)
    # step 0: every bead sits at the start structure, so i-PI's potential is its energy
    # (i-PI's 8-digit eV/Hartree factor differs from ASE's by 1e-7 relative)
    atoms.calc = LegatoCalculator(model_file)
    assert plain.properties["potential"][0] == pytest.approx(atoms.get_potential_energy(), rel=1e-6)
    # the stress reaches i-PI: a tiny random model is far from zero pressure
    assert np.all(np.abs(plain.properties["pressure_cv"]) > 1.0)


@pytest.mark.slow
def test_compiled_driver_gives_the_eager_pimd_trajectory(tmp_path, model_file):
    atoms, settings = _sheared_crystal(), _settings(batch_size=4)
    runs = [
        run_ipi(atoms, settings, tmp_path / name, model_file, timeout_s=400, threads=1, compile=c)
        for name, c in (("eager", False), ("compiled", True))
    ]
    for run in runs:
        assert run.last_step == STEPS, (run.directory / "ipi.log").read_text()[-2000:]
        assert run.driver_returncode == 0
    assert "running eager instead" not in (runs[1].directory / "driver.log").read_text()
    _same_trajectory(*runs)


def test_failing_driver_ends_the_ipi_run_instead_of_hanging(tmp_path, model_file):
    atoms = _sheared_crystal()
    settings = _settings(total_steps=1000)
    bad_template = tmp_path / "bad.extxyz"
    atoms[:-1].write(bad_template)  # one atom short: the driver fails on the first POSDATA
    write_simulation(atoms, settings, tmp_path)
    ipi = subprocess.Popen(
        ["timeout", "-k", "5", "60", "i-pi", "input.xml"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver = subprocess.run(
        [
            "timeout",
            "60",
            sys.executable,
            "-m",
            "ipi_driver.cli",
            "--model",
            model_file,
            "--template",
            str(bad_template),
            "--unix",
            settings.address,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert driver.returncode == 1
    assert "template has 15" in driver.stderr and "--template" in driver.stderr
    ipi.wait(timeout=90)
    assert ipi.returncode == 0  # i-PI stopped by itself (exit_on_disconnect), not by timeout
    assert len(read_properties(tmp_path / "simulation.out").get("step", [])) == 0  # no step done


def test_ipi_python_driver_loads_our_pes_module_and_matches_our_driver(tmp_path, model_file):
    atoms = _sheared_crystal()
    ours = run_ipi(
        atoms, _settings(batch_size=4), tmp_path / "ours", model_file, timeout_s=180, threads=1
    )
    settings = _settings(batch_size=4)
    directory = tmp_path / "py"
    write_simulation(atoms, settings, directory)
    ipi = subprocess.Popen(
        ["timeout", "-k", "5", "180", "i-pi", "input.xml"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver = subprocess.run(
        [
            "timeout",
            "180",
            "i-pi-py_driver",
            "-m",
            "custom",
            "-P",
            str(PES_FILE),
            "-u",
            "-a",
            settings.address,
            "-o",
            f"template=init.extxyz,model={model_file}",
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=200,
    )
    ipi.wait(timeout=60)
    assert driver.returncode == 0, driver.stderr[-2000:]
    theirs = read_properties(directory / "simulation.out")
    assert theirs["step"][-1] == STEPS
    np.testing.assert_allclose(theirs["potential"], ours.properties["potential"], rtol=1e-7)


@pytest.mark.slow
def test_ffdirect_runs_our_pes_inside_ipi(tmp_path, model_file):
    atoms = _sheared_crystal()
    ours = run_ipi(
        atoms, _settings(batch_size=4), tmp_path / "ours", model_file, timeout_s=180, threads=1
    )
    direct = run_ipi(
        atoms,
        _settings(batch_size=4, forcefield="direct", model=model_file),
        tmp_path / "direct",
        timeout_s=180,
        threads=1,
    )
    assert direct.last_step == STEPS, (direct.directory / "ipi.log").read_text()[-2000:]
    _same_trajectory(ours, direct)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["nvt", "trpmd", "npt"])
def test_every_shipped_input_runs_with_the_driver(tmp_path, model_file, kind):
    beads = 1 if kind == "nvt" else 2
    run = run_ipi(
        _sheared_crystal(),
        _settings(kind=kind, n_beads=beads, batch_size=beads),
        tmp_path,
        model_file,
        timeout_s=180,
        threads=1,
    )
    assert run.last_step == STEPS, (run.directory / "ipi.log").read_text()[-2000:]
    if kind == "npt":
        assert run.properties["volume"][-1] != run.properties["volume"][0]


def test_driver_stopped_by_sigterm_mid_run_lets_ipi_exit_cleanly(tmp_path, model_file):
    import signal
    import time

    settings = _settings(total_steps=100000)
    write_simulation(_sheared_crystal(), settings, tmp_path)
    limit = ["timeout", "-k", "5", "120"]
    ipi = subprocess.Popen([*limit, "i-pi", "input.xml"], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    driver = subprocess.Popen(
        [sys.executable, "-m", "ipi_driver.cli", "--model", model_file, "--template",
         "init.extxyz", "--unix", settings.address, "--quiet", "--threads", "1"],
        cwd=tmp_path,
    )  # fmt: skip
    out, deadline = tmp_path / "simulation.out", time.monotonic() + 90
    while time.monotonic() < deadline and _steps_written(out) < 3:
        time.sleep(0.2)  # wait until the run is under way
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=30) == 143
    assert ipi.wait(timeout=60) == 0  # no hang: i-PI saw a clean hang-up, not a reset
    assert 3 <= _steps_written(out) < 100000


def _steps_written(out) -> int:
    return len(read_properties(out).get("step", [])) if out.exists() else 0


def _wait_for_a_step(directory, limit_s=240.0):
    """Block until i-PI has written a step to its properties file (True), or limit_s."""
    import time

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        out = directory / "simulation.out"
        if out.exists() and len(read_properties(out).get("step", [])) > 0:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("batch_size", [1, 4])
def test_driver_killed_mid_run_ends_ipi_started_on_our_input(tmp_path, model_file, batch_size):
    """SIGKILL leaves no chance to close the socket cleanly: i-PI must stop by itself,
    also with batching (i-PI's consolidated messages, whose reader dies on a reset)."""
    import os
    import signal

    settings = _settings(total_steps=100_000, batch_size=batch_size)
    write_simulation(_sheared_crystal(), settings, tmp_path)
    ipi = subprocess.Popen(
        ["timeout", "-k", "5", "150", "i-pi", "input.xml"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    driver = subprocess.Popen(
        [sys.executable, "-m", "ipi_driver.cli", "--model", model_file, "--template",
         str(tmp_path / "init.extxyz"), "--unix", settings.address, "--threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert _wait_for_a_step(tmp_path)
    finally:
        os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    assert ipi.wait(timeout=180) == 0  # stopped by itself (exit_on_disconnect), not by timeout


def test_launcher_stops_ipi_when_the_driver_is_killed(tmp_path, model_file):
    """The launcher watches the driver: even an i-PI told to wait for another driver
    (exit_on_disconnect off) is stopped when ours dies."""
    import os
    import signal
    import threading

    settings = _settings(batch_size=4, total_steps=100_000, exit_on_disconnect=False)
    result = {}

    def launch():
        result["run"] = run_ipi(
            _sheared_crystal(), settings, tmp_path, model_file, timeout_s=500, threads=1
        )

    thread = threading.Thread(target=launch)
    thread.start()
    reached = _wait_for_a_step(tmp_path)
    for pid in _driver_pids(settings.address):
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=600)
    assert reached and not thread.is_alive()
    run = result["run"]
    assert run.driver_returncode != 0 and "the driver ended" in run.note
    assert run.last_step >= 0


def _driver_pids(address):
    """Python processes running our driver on ``address`` (not their `timeout` wrappers)."""
    from pathlib import Path

    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"ipi_driver.cli" in argv and address.encode() in argv and argv[0] != b"timeout":
            pids.append(int(entry.name))
    return pids
