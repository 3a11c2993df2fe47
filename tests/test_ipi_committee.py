"""A committee through the real i-PI 3.3: one driver, the members in the extras JSON, and
i-PI's own <ffcommittee parse_json> turning them into the mean and its uncertainty."""

from __future__ import annotations

import shutil
import uuid

import numpy as np
import pytest
from ase.io import read
from helpers import tiny_model

from ipi_driver import SimulationSettings
from ipi_driver.adapter import HARTREE_EV
from ipi_driver.launch import run_ipi
from ipi_driver.structures import nh3_crystal
from legato_ase import LegatoCalculator, save_model

pytestmark = pytest.mark.skipif(shutil.which("i-pi") is None, reason="i-PI is not installed")
STEPS = 4


@pytest.fixture(scope="module")
def committee_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("committee")
    paths = [str(folder / f"m{seed}.pt") for seed in range(3)]
    for seed, path in enumerate(paths):
        save_model(tiny_model(seed=seed), path)
    return paths


def _settings(forcefield):
    return SimulationSettings(
        kind="npt",  # the barostat makes the virials matter
        n_beads=1,
        total_steps=STEPS,
        properties_stride=1,
        trajectory_stride=1,
        address=f"legato_{uuid.uuid4().hex[:10]}",
        temperature_K=150.0,
        forcefield=forcefield,
    )


def _read_committee_extras(path):
    """{step: [committee_pot (K values, Hartree)..., uncertainty]} from i-PI's extras file."""
    rows, step = {}, None
    for line in path.read_text().splitlines():
        if "Step:" in line:
            step = int(line.split("Step:")[1].split()[0])
        elif line.strip():
            rows[step] = [float(x) for x in line.split()]
    return rows


def test_ipi_ffcommittee_reads_the_members_from_one_driver(tmp_path, committee_files):
    atoms = nh3_crystal(repeat=(1, 1, 1))
    runs = {}
    for forcefield in ("socket", "committee"):
        runs[forcefield] = run_ipi(
            atoms,
            _settings(forcefield),
            tmp_path / forcefield,
            committee_files,
            timeout_s=240,
            threads=1,
        )
        log = (tmp_path / forcefield / "ipi.log").read_text()[-2000:]
        assert runs[forcefield].last_step == STEPS, log
    plain, committee = runs["socket"], runs["committee"]
    # i-PI's committee mean of the members' energies, forces and virials (from the JSON)
    # drives the same NPT trajectory as the driver's own mean: units and layout agree.
    for key in ("potential", "conserved", "pressure_cv", "volume"):
        np.testing.assert_allclose(
            committee.properties[key], plain.properties[key], rtol=1e-7, atol=1e-7
        )
    # the members' energies, as i-PI recorded them, are our members' energies
    extras = _read_committee_extras(tmp_path / "committee" / "simulation.committee_0")
    assert sorted(extras) == list(range(STEPS + 1))
    members = [LegatoCalculator(path) for path in committee_files]
    frames = [atoms] + _read_ipi_xyz(tmp_path / "committee" / "simulation.xc.xyz")[1:3]
    for step, frame in enumerate(frames):
        ours = np.array([m.calculate_batch([frame])[0]["energy"] for m in members])
        *pots, uncertainty = extras[step]
        # step 0 is the start structure exactly; later frames are i-PI's 5-decimal xyz
        tolerance = 1e-6 * np.abs(ours).max() if step == 0 else 2e-3
        np.testing.assert_allclose(np.array(pots) * HARTREE_EV, ours, atol=tolerance)
        # i-PI's uncertainty is the members' sample standard deviation (alpha = 1)
        assert uncertainty * HARTREE_EV == pytest.approx(np.std(ours, ddof=1), abs=tolerance)


def _read_ipi_xyz(path):
    """Frames of an i-PI xyz trajectory, its cell taken from the CELL(abcABC) comment."""
    frames = read(path, ":")
    comments = [line for line in path.read_text().splitlines() if "CELL(abcABC)" in line]
    for frame, comment in zip(frames, comments, strict=True):
        frame.set_cell([float(x) for x in comment.split()[2:8]], scale_atoms=False)
        frame.pbc = True
    return frames
