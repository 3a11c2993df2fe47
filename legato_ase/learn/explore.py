"""Exploration: MD with a committee, recording its deviation, stopped at a failure criterion.

Each run is one start structure × size × temperature × pressure × time step. Every
``record_every`` steps the current frame is kept with the committee's
``max_force_deviation`` (eV/Å) and ``energy_deviation`` (eV/atom) in ``atoms.info``, and the
state is checked against the failure criteria of ``legato stability`` (temperature window,
close contacts, stretched bonds, NaN); a failing run stops there.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
from ase import Atoms, units

from ..stability.criteria import FailureMonitor
from ..stability.md import prepare_structure
from ..stability.protocol import MDProtocol
from .config import ExploreConfig

GPA = 1e9 * units.Pascal  # ASE pressure units per GPa


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunSpec:
    """One exploration run's conditions."""

    name: str
    structure: int
    replicate: tuple[int, int, int]
    temperature_K: float
    pressure_GPa: float | None
    timestep_fs: float
    seed: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """What one run did: steps, failure, wall time; its frames are stored beside it."""

    steps: int
    time_ps: float
    failed: bool
    reason: str
    wall_s: float
    n_frames: int


def run_specs(cfg: ExploreConfig, n_structures: int, seed: int) -> list[RunSpec]:
    """Every combination of the explored conditions, each with its own velocity seed."""
    pressures = cfg.pressures_GPa or (None,)
    specs = []
    for s in range(n_structures):
        for rep in cfg.replicate:
            for t in cfg.temperatures_K:
                for p in pressures:
                    for dt in cfg.timesteps_fs:
                        name = f"run_{len(specs):03d}"
                        specs.append(RunSpec(
                            name=name, structure=s, replicate=rep, temperature_K=t,
                            pressure_GPa=p, timestep_fs=dt, seed=seed + len(specs),
                        ))  # fmt: skip
    return specs


def _dynamics(atoms: Atoms, spec: RunSpec, cfg: ExploreConfig):
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import IsotropicMTKNPT, NoseHooverChainNVT

    dt = spec.timestep_fs * units.fs
    if spec.pressure_GPa is not None:
        return IsotropicMTKNPT(
            atoms, timestep=dt, temperature_K=spec.temperature_K,
            pressure_au=spec.pressure_GPa * GPA, tdamp=cfg.tdamp_fs * units.fs,
            pdamp=cfg.pdamp_fs * units.fs,
        )  # fmt: skip
    if cfg.thermostat == "nose-hoover":
        return NoseHooverChainNVT(
            atoms, timestep=dt, temperature_K=spec.temperature_K, tdamp=cfg.tdamp_fs * units.fs
        )
    rng = np.random.default_rng(spec.seed)
    return Langevin(
        atoms, timestep=dt, temperature_K=spec.temperature_K,
        friction=cfg.friction_per_fs / units.fs, fixcm=False, rng=rng,
    )  # fmt: skip


def _record(atoms: Atoms, spec: RunSpec, step: int) -> Atoms:
    """The current frame with the committee's deviation (no labels: they come later)."""
    forces = atoms.get_forces()  # makes sure the results belong to these positions
    results: dict[str, Any] = atoms.calc.results
    frame = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    frame.info.update(
        run=spec.name,
        step=int(step),
        temperature_K=float(atoms.get_temperature()),
        target_temperature_K=spec.temperature_K,
        max_force_deviation=float(results["max_force_deviation"]),
        energy_deviation=float(results["energy_deviation"]),
        max_force=float(np.linalg.norm(forces, axis=1).max()),
    )
    return frame


def explore_run(
    calculator, start: Atoms, spec: RunSpec, cfg: ExploreConfig
) -> tuple[RunOutcome, list[Atoms]]:
    """Run one exploration MD with a committee calculator; its outcome and recorded frames.

    Args:
        calculator: a committee ``LegatoCalculator`` (it must set ``max_force_deviation``).
        start: the start structure (not modified).
        spec: the conditions of this run.
        cfg: the explore section (steps, record interval, thermostat, failure criteria).
    """
    protocol = MDProtocol(
        temperature_K=spec.temperature_K, timestep_fs=spec.timestep_fs, nvt_steps=None,
        hydrogen_mass=cfg.hydrogen_mass, max_steps=cfg.steps, check_every=cfg.record_every,
    )  # fmt: skip
    atoms = prepare_structure(start, spec.replicate, protocol, spec.seed)
    atoms.calc = calculator
    monitor = FailureMonitor(atoms, cfg.criteria, spec.temperature_K)
    dyn = _dynamics(atoms, spec, cfg)
    begin, frames, steps, reason = time.perf_counter(), [], 0, None
    try:
        while steps < cfg.steps and reason is None:
            dyn.run(cfg.record_every)
            steps += cfg.record_every
            frames.append(_record(atoms, spec, steps))
            reason = monitor.check(atoms, atoms.get_forces(), step=steps)
    except Exception as err:  # noqa: BLE001 - a model blowing up is a failure of the run
        reason = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
    outcome = RunOutcome(
        steps=steps, time_ps=steps * spec.timestep_fs / 1000.0, failed=reason is not None,
        reason=reason or "reached the step cap", wall_s=round(time.perf_counter() - begin, 3),
        n_frames=len(frames),
    )  # fmt: skip
    return outcome, frames
