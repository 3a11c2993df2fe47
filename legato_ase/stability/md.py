"""One MD replica run until it fails or reaches the step cap (right-censored)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.md.nose_hoover_chain import NoseHooverChainNVT
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

from .criteria import FailureCriteria, FailureMonitor
from .protocol import MDProtocol

CENSORED = "reached the step cap"
WALL_LIMIT = "reached the wall-clock limit"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReplicaResult:
    """Outcome of one replica.

    Attributes:
        n_atoms: atoms in the replicated structure.
        replicate: the (a, b, c) replication of the input structure.
        seed: seed of the initial velocities.
        steps: MD steps done when the failure was detected or the run stopped.
        time_ps: ``steps`` times the time step, in ps.
        failed: True for a failure, False for a right-censored run.
        reason: why the run failed or stopped.
        wall_s: wall-clock time the run took.
    """

    n_atoms: int
    replicate: tuple[int, int, int]
    seed: int
    steps: int
    time_ps: float
    failed: bool
    reason: str
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["replicate"] = list(self.replicate)
        return out


def prepare_structure(
    atoms: Atoms, replicate: Sequence[int], protocol: MDProtocol, seed: int
) -> Atoms:
    """The replicated structure with the protocol's masses and seeded thermal velocities."""
    replicate = tuple(int(r) for r in replicate)
    if len(replicate) != 3 or min(replicate) < 1:
        raise ValueError(
            f"replicate must be three positive integers like (2, 2, 1), got {replicate}."
        )
    structure = atoms.repeat(replicate)
    structure.calc = None
    if protocol.hydrogen_mass is not None:
        masses = structure.get_masses()
        masses[structure.numbers == 1] = protocol.hydrogen_mass
        structure.set_masses(masses)
    _thermalize(structure, protocol.temperature_K, np.random.default_rng(seed))
    Stationary(structure)
    return structure


def _thermalize(atoms: Atoms, temperature_K: float, rng: np.random.Generator) -> None:
    try:  # ASE >= 3.29 deprecates MaxwellBoltzmannDistribution in favour of this
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # pragma: no cover - older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as _mb

        _mb(atoms, temperature_K=temperature_K, rng=rng)
        return
    thermalize_momenta(atoms, temperature_K, rng=rng)


def _dynamics(atoms: Atoms, protocol: MDProtocol, thermostat: bool, progress: list[int]):
    """The integrator of the current phase; it keeps ``progress[0]`` = total steps done."""
    dt = protocol.timestep_fs * units.fs
    if thermostat:
        dyn = NoseHooverChainNVT(
            atoms,
            timestep=dt,
            temperature_K=protocol.temperature_K,
            tdamp=protocol.tdamp_steps * dt,
        )
    else:
        dyn = VelocityVerlet(atoms, timestep=dt)
    offset = progress[0]
    dyn.attach(lambda: progress.__setitem__(0, offset + dyn.nsteps), interval=1)
    return dyn


def run_replica(
    calculator: Calculator,
    atoms: Atoms,
    protocol: MDProtocol,
    criteria: FailureCriteria | None = None,
    *,
    seed: int = 0,
    replicate: Sequence[int] = (1, 1, 1),
    max_wall_s: float | None = None,
    on_check: Callable[[int, Atoms], None] | None = None,
) -> ReplicaResult:
    """Run one replica of ``atoms`` replicated ``replicate`` times until it fails or hits the cap.

    Args:
        calculator: the ASE calculator (e.g. a LegatoCalculator); it is attached to a copy.
        atoms: the input structure (not modified).
        protocol: time step, thermostat phases, step cap and check interval.
        criteria: failure criteria (defaults: ±100 K, 0.5 Å distance, 0.5 Å bond deviation).
        seed: seed of the initial velocities; distinct replicas need distinct seeds.
        replicate: (a, b, c) copies of the cell along each lattice vector.
        max_wall_s: stop (right-censored) after this much wall-clock time; None for no limit.
        on_check: called as ``on_check(step, atoms)`` at every check (e.g. to record frames).

    An exception raised by the calculator (e.g. atoms on top of each other, NaN positions)
    counts as a failure, with its message as the reason.
    """
    criteria = criteria or FailureCriteria()
    structure = prepare_structure(atoms, replicate, protocol, seed)
    structure.calc = calculator
    monitor = FailureMonitor(structure, criteria, protocol.temperature_K)
    start = time.perf_counter()
    progress = [0]  # steps done, kept up to date so that an exception knows where it happened
    try:
        failed, reason = _integrate(structure, protocol, monitor, progress, max_wall_s, on_check)
    except Exception as err:  # noqa: BLE001 - any calculator error is a failure of the model
        failed, reason = True, f"{type(err).__name__}: {str(err).splitlines()[0]}"
        progress[0] += 1  # it happened during the step after the last completed one
    return ReplicaResult(
        n_atoms=len(structure),
        replicate=tuple(int(r) for r in replicate),
        seed=int(seed),
        steps=int(progress[0]),
        time_ps=progress[0] * protocol.timestep_fs / 1000.0,
        failed=failed,
        reason=reason,
        wall_s=round(time.perf_counter() - start, 3),
    )


def _integrate(structure, protocol, monitor, progress, max_wall_s, on_check) -> tuple[bool, str]:
    """Advance in chunks of up to ``check_every`` steps, checking after each; (failed, reason)."""
    start = time.perf_counter()
    thermostat = protocol.nvt_steps is None or protocol.nvt_steps > 0
    dyn = _dynamics(structure, protocol, thermostat, progress)
    while progress[0] < protocol.max_steps:
        if max_wall_s is not None and time.perf_counter() - start > max_wall_s:
            return False, WALL_LIMIT
        if thermostat and protocol.nvt_steps is not None and progress[0] >= protocol.nvt_steps:
            thermostat = False
            dyn = _dynamics(structure, protocol, thermostat, progress)
        dyn.run(_chunk(progress[0], protocol, thermostat))
        if on_check is not None:
            on_check(progress[0], structure)
        problem = monitor.check(structure, structure.get_forces(), step=progress[0])
        if problem is not None:
            return True, problem
    return False, CENSORED


def _chunk(step: int, protocol: MDProtocol, thermostat: bool) -> int:
    """Steps to the next check, the end of the NVT phase, or the cap, whichever comes first."""
    n = min(protocol.check_every - step % protocol.check_every, protocol.max_steps - step)
    if thermostat and protocol.nvt_steps is not None:
        n = min(n, protocol.nvt_steps - step)
    return n
