"""A ready-made ASE molecular dynamics run: Langevin NVT with a trajectory and a log."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TextIO

import numpy as np
from ase import Atoms, units
from ase.io.trajectory import Trajectory
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary

try:  # ASE ≥ 3.29
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover - older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta


def check_nvt_settings(
    temperature_K: float,
    steps: int,
    timestep_fs: float,
    friction_per_fs: float = 0.01,
    loginterval: int = 1,
) -> None:
    """Refuse settings no MD run can use, naming the setting (before any work is done)."""
    finite = all(map(math.isfinite, (temperature_K, timestep_fs, friction_per_fs)))
    if not finite or temperature_K < 0:
        raise ValueError(f"the temperature must be ≥ 0 K, got {temperature_K} K")
    if timestep_fs <= 0:
        raise ValueError(f"the time step must be positive, got {timestep_fs} fs")
    if friction_per_fs < 0:
        raise ValueError(f"the friction must be ≥ 0, got {friction_per_fs} 1/fs")
    if steps < 0 or loginterval < 1:
        raise ValueError(f"steps must be ≥ 0 and loginterval ≥ 1, got {steps} and {loginterval}")


def run_nvt(
    atoms: Atoms,
    temperature_K: float = 150.0,
    steps: int = 200,
    timestep_fs: float = 1.0,
    friction_per_fs: float = 0.01,
    trajectory: str | Path | None = "md.traj",
    loginterval: int = 10,
    seed: int = 0,
    out: TextIO = sys.stdout,
) -> list[dict[str, float]]:
    """Langevin NVT from Maxwell–Boltzmann velocities; prints and returns a log table.

    The atoms must carry a calculator. Returns one row per logged step with time (fs),
    potential, kinetic and total energy (eV) and temperature (K); with a committee
    calculator also the largest per-atom force deviation (``max_devi_f_eV_A``, eV/Å).
    """
    if atoms.calc is None:
        raise ValueError("the atoms have no calculator; set atoms.calc = LegatoCalculator(...)")
    check_nvt_settings(temperature_K, steps, timestep_fs, friction_per_fs, loginterval)
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    dyn = Langevin(
        atoms,
        timestep=timestep_fs * units.fs,
        temperature_K=temperature_K,
        friction=friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )
    rows: list[dict[str, float]] = []
    committee = len(getattr(atoms.calc, "members", ())) > 1
    deviation_head = f" {'max_devi_f/(eV/Å)':>17}" if committee else ""
    print(f"{'time/fs':>9} {'Epot/eV':>14} {'Etot/eV':>14} {'T/K':>8}{deviation_head}", file=out)

    def log() -> None:
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        row = {
            "time_fs": dyn.get_time() / units.fs,
            "epot_eV": epot,
            "ekin_eV": ekin,
            "etot_eV": epot + ekin,
            "temperature_K": atoms.get_temperature(),
        }
        line = f"{row['time_fs']:9.1f} {epot:14.4f} {epot + ekin:14.4f} {row['temperature_K']:8.1f}"
        if committee:
            row["max_devi_f_eV_A"] = atoms.calc.results["max_force_deviation"]
            line += f" {row['max_devi_f_eV_A']:17.4f}"
        rows.append(row)
        print(line, file=out, flush=True)

    dyn.attach(log, interval=loginterval)
    if trajectory is not None:
        traj = Trajectory(str(trajectory), "w", atoms)
        dyn.attach(traj.write, interval=loginterval)
    try:
        dyn.run(steps)
    finally:
        if trajectory is not None:
            traj.close()
    return rows
