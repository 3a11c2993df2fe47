"""Vibrational spectra, the molecular split, ammonia structures and the i-PI input writer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms

from ipi_driver.inputs import (
    KINDS,
    SimulationSettings,
    default_beads,
    render_input,
    write_simulation,
)
from ipi_driver.spectra import (
    AMU_A2_PER_FS2_IN_EV,
    C_CM_PER_FS,
    KB_EV_PER_K,
    autocorrelation,
    read_ipi_xyz,
    split_molecular,
    vdos,
)
from ipi_driver.structures import molecule_index, nh3_crystal, nh3_liquid


def _spring_trajectory(k_eV_A2=30.0, masses=(1.008, 14.007), dt_fs=0.25, n_steps=4000):
    """Velocity Verlet of a diatomic spring (rest length 1 Å): velocities [T, 2, 3] in Å/fs."""
    m = np.array(masses)[:, None] * AMU_A2_PER_FS2_IN_EV  # eV fs²/Å²
    x = np.array([[0.0, 0.0, 0.0], [1.08, 0.0, 0.0]])
    v = np.zeros((2, 3))

    def force(x):
        d = x[1] - x[0]
        r = np.linalg.norm(d)
        f = -k_eV_A2 * (r - 1.0) * d / r
        return np.array([-f, f])

    a, out = force(x) / m, []
    for _ in range(n_steps):
        v += 0.5 * dt_fs * a
        x += dt_fs * v
        a = force(x) / m
        v += 0.5 * dt_fs * a
        out.append(v.copy())
    return np.array(out)


def test_spectrum_of_a_harmonic_bond_peaks_at_its_frequency():
    k, masses, dt = 30.0, (1.008, 14.007), 0.25
    mu = masses[0] * masses[1] / sum(masses)
    expected = np.sqrt(k / (mu * AMU_A2_PER_FS2_IN_EV)) / (2 * np.pi) / C_CM_PER_FS
    spectrum = vdos(_spring_trajectory(k, masses, dt), dt, np.array(masses), resolution_cm1=10.0)
    # Verlet shifts the frequency by (ωΔt)²/24 ≈ 1e-3 relative: within the resolution
    assert spectrum.peak_cm1() == pytest.approx(expected, abs=10.0)
    assert spectrum.integral(expected - 100, expected + 100) > 0.95


def test_two_oscillators_give_two_peaks_weighted_by_their_kinetic_energy():
    t = np.arange(8000) * 0.5
    v = np.zeros((len(t), 2, 3))
    for atom, nu_cm1 in enumerate((1000.0, 3000.0)):
        v[:, atom, 0] = np.cos(2 * np.pi * nu_cm1 * C_CM_PER_FS * t)
    s = vdos(v, 0.5, masses_amu=np.array([1.0, 3.0]), resolution_cm1=20.0)
    assert s.peak_cm1(0, 2000) == pytest.approx(1000.0, abs=5)
    assert s.peak_cm1(2000, 4000) == pytest.approx(3000.0, abs=5)
    assert s.integral(2000, 4000) / s.integral(0, 2000) == pytest.approx(3.0, rel=0.02)


def test_thermal_normalisation_counts_degrees_of_freedom():
    rng = np.random.default_rng(0)
    masses, temperature = np.array([1.0, 14.0, 2.0]), 300.0
    sigma = np.sqrt(KB_EV_PER_K * temperature / (masses * AMU_A2_PER_FS2_IN_EV))
    v = rng.normal(size=(20000, 3, 3)) * sigma[None, :, None]
    s = vdos(v, 1.0, masses, temperature_K=temperature)
    assert s.integral() == pytest.approx(9.0, rel=0.02)


def test_autocorrelation_of_a_constant_is_flat():
    np.testing.assert_allclose(autocorrelation(np.full((50, 2), 3.0), 10), 18.0)


def _rigid_motion(v_com, omega, n_frames=5, seed=0):
    """An NH3 molecule (NH3-I geometry) moving rigidly: positions and velocities [T, 4, 3]."""
    mol = nh3_crystal(repeat=(1, 1, 1))
    idx = np.flatnonzero(molecule_index(mol) == 0)
    m = mol.get_masses()[idx]
    r = mol.get_distances(idx[0], idx, mic=True, vector=True)
    r -= m @ r / m.sum()  # about the centre of mass
    x = np.repeat(r[None], n_frames, axis=0)
    v = np.repeat((v_com + np.cross(omega, r))[None], n_frames, axis=0)
    return x, v, m


def test_rigid_motion_splits_into_translation_and_rotation_with_no_internal_part():
    x, v, m = _rigid_motion(np.array([0.01, -0.02, 0.005]), np.array([0.03, 0.01, -0.02]))
    parts = split_molecular(x, v, m, np.zeros(4, dtype=int))
    np.testing.assert_allclose(parts["internal"], 0.0, atol=1e-12)
    np.testing.assert_allclose(parts["translational"][0, 0], [0.01, -0.02, 0.005], atol=1e-12)
    np.testing.assert_allclose(parts["translational"] + parts["rotational"], v, atol=1e-12)


def test_molecular_parts_are_mass_orthogonal_so_kinetic_energies_add():
    rng = np.random.default_rng(1)
    atoms = nh3_crystal(repeat=(1, 1, 1))
    owner = molecule_index(atoms)
    x = atoms.positions[None] + rng.normal(scale=0.05, size=(3, len(atoms), 3))
    v = rng.normal(size=(3, len(atoms), 3))
    m = atoms.get_masses()
    parts = split_molecular(x, v, m, owner, cell_A=atoms.cell.array)

    def kinetic(u):
        return np.einsum("i,tij,tij->t", m, u, u)

    total = sum(kinetic(p) for p in parts.values())
    np.testing.assert_allclose(total, kinetic(v), rtol=1e-10)


def test_nh3_I_crystal_has_the_reference_bond_lengths():
    atoms = nh3_crystal()
    assert atoms.get_chemical_formula() == "H96N32"
    n = np.flatnonzero(atoms.numbers == 7)
    h = np.flatnonzero(atoms.numbers == 1)
    d = atoms.get_all_distances(mic=True)[np.ix_(n, h)]
    assert np.sort(d, axis=1)[:, :3] == pytest.approx(0.99, abs=0.01)  # N–H
    assert np.sort(d, axis=1)[:, 3] == pytest.approx(2.43, abs=0.01)  # H···N


def test_liquid_start_has_the_density_and_intact_molecules():
    atoms = nh3_liquid(density_g_cm3=0.68, seed=1)
    density = atoms.get_masses().sum() * 1.66053907e-24 / (atoms.get_volume() * 1e-24)
    assert density == pytest.approx(0.68, rel=1e-3)
    owner = molecule_index(atoms)
    n = np.flatnonzero(atoms.numbers == 7)
    for mol, centre in enumerate(n):
        members = np.flatnonzero((owner == mol) & (atoms.numbers == 1))
        assert len(members) == 3
        assert atoms.get_distances(centre, members, mic=True) == pytest.approx(0.99, abs=0.01)


def test_default_beads_follow_hbar_omega_over_kT():
    assert default_beads(200.0) == 26 and default_beads(150.0) == 34


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_input_is_accepted_by_the_ipi_input_parser(tmp_path, kind):
    pytest.importorskip("ipi")
    from ipi.inputs.simulation import InputSimulation
    from ipi.utils.io.inputs.io_xml import xml_parse_string

    settings = SimulationSettings(
        kind=kind, temperature_K=120.0, n_beads=None if kind != "nvt" else 1
    )
    parsed = InputSimulation()
    parsed.parse(xml_parse_string(render_input(settings)).fields[0][1])
    system = dict(parsed.extra)["system"]
    assert system.initialize.nbeads.fetch() == settings.beads
    assert parsed.total_steps.fetch() == settings.total_steps


def test_write_simulation_writes_a_periodic_start_structure(tmp_path):
    from ase.io import read

    path = write_simulation(
        nh3_crystal(repeat=(1, 1, 1)), SimulationSettings(kind="trpmd"), tmp_path
    )
    assert "pile_lambda> 0.5 <" in path.read_text()
    start = read(tmp_path / "init.extxyz")
    assert start.pbc.all() and len(start) == 16
    with pytest.raises(ValueError, match="3-D periodic"):
        write_simulation(Atoms("NH3"), SimulationSettings(), tmp_path)


def test_bad_settings_are_rejected_with_the_valid_choices():
    with pytest.raises(ValueError, match="valid"):
        SimulationSettings(kind="rpmd")
    with pytest.raises(ValueError, match="classical"):
        SimulationSettings(kind="nvt", n_beads=8)
    with pytest.raises(ValueError, match="model="):
        SimulationSettings(forcefield="direct")


def test_input_command_writes_files(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ipi_driver",
            "ipi-input",
            "nh3-solid",
            str(tmp_path),
            "--kind",
            "pimd",
            "--temperature-K",
            "150",
            "--beads",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "nbeads='8'" in (tmp_path / "input.xml").read_text()


def test_ipi_trajectory_reader_reads_frames_and_symbols(tmp_path):
    text = "".join(
        f"2\n# CELL(abcABC): 5 5 5 90 90 90 Step: {t} Bead: 0 v_centroid{{atomic_unit}}\n"
        f"N {t} 0 0\nH 0 {t} 0\n"
        for t in range(3)
    )
    (tmp_path / "vc.xyz").write_text(text)
    frames, symbols, comments = read_ipi_xyz(tmp_path / "vc.xyz")
    assert frames.shape == (3, 2, 3) and symbols == ["N", "H"] and frames[2, 1, 1] == 2.0


def test_vdos_peak_agrees_with_ipi_getacf(tmp_path):
    import shutil

    from ipi_driver.spectra import ATOMIC_VELOCITY_A_PER_FS

    if shutil.which("i-pi-getacf") is None:
        pytest.skip("i-pi-getacf (i-PI) is not installed")
    dt, masses = 0.25, np.array([1.008, 14.007])
    v = _spring_trajectory(30.0, tuple(masses), dt)
    lines = []
    for t, frame in enumerate(v / ATOMIC_VELOCITY_A_PER_FS):
        lines.append(f"2\n# CELL(abcABC): 10 10 10 90 90 90 Step: {t} v_centroid{{atomic_unit}}")
        lines += [f"{s} {x:.12e} {y:.12e} {z:.12e}" for s, (x, y, z) in zip("HN", frame)]
    (tmp_path / "vc.xyz").write_text("\n".join(lines) + "\n")
    subprocess.run(
        ["i-pi-getacf", "-ifile", "vc.xyz", "-mlag", "1000", "-ftwin", "cosine-hanning",
         "-ftpad", "3000", "-dt", f"{dt} femtosecond", "-oprefix", "acf"],
        cwd=tmp_path, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    theirs = np.loadtxt(tmp_path / "acf_facf.data")
    their_peak = theirs[np.argmax(theirs[:, 1]), 0] * 219474.63  # a.u. -> cm^-1
    ours = vdos(v, dt, masses, resolution_cm1=10.0).peak_cm1()
    assert ours == pytest.approx(their_peak, abs=20.0)  # i-PI's grid is 16.7 cm^-1 here
