"""Failure criteria of an MD run, checked every few steps on the current state."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import covalent_radii

from ..config import check_keys
from ..neighbors import neighbor_list


@dataclasses.dataclass(frozen=True, kw_only=True)
class FailureCriteria:
    """When a replica counts as failed (any one criterion suffices).

    Attributes:
        temperature_window_K: failure when the kinetic temperature leaves
            [T - window, T + window] around the protocol's target (Ibayashi et al. 2023: 100 K).
        min_distance_A: failure when two atoms come closer than this (Å); ``None`` disables it.
        bond_deviation_A: failure when a bond of the starting structure deviates from its
            running mean length by more than this (Å; Fu et al. 2022 use 0.5); ``None`` disables.
        bond_factor: pairs closer than ``bond_factor`` times the sum of their covalent radii
            in the starting structure are the bonds that are followed.
        temperature_grace_steps: the temperature window applies from this MD step on (the
            other criteria from the start). A run started from a perfect lattice shares its
            kinetic energy with the potential within tens of femtoseconds, so its temperature
            first drops to about T/2 whatever the model; a T/2 window then fails it at once.
    """

    temperature_window_K: float | None = 100.0
    min_distance_A: float | None = 0.5
    bond_deviation_A: float | None = 0.5
    bond_factor: float = 1.2
    temperature_grace_steps: int = 0

    def __post_init__(self) -> None:
        for name in ("temperature_window_K", "min_distance_A", "bond_deviation_A"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None (disabled), got {value}.")
        if not self.bond_factor > 0:
            raise ValueError(f"bond_factor must be positive, got {self.bond_factor}.")
        if self.temperature_grace_steps < 0:
            raise ValueError(
                f"temperature_grace_steps must be >= 0, got {self.temperature_grace_steps}."
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailureCriteria:
        check_keys(data, [f.name for f in dataclasses.fields(cls)], "the failure criteria")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def find_bonds(atoms: Atoms, bond_factor: float = 1.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covalent bonds of a structure: (i, j, Cartesian image shift [n_bonds, 3] Å), i < j."""
    radii = covalent_radii[atoms.numbers]
    cutoff = bond_factor * 2.0 * float(radii.max())
    i, j, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    vectors = atoms.positions[j] - atoms.positions[i] + shifts @ atoms.cell.array
    bonded = np.linalg.norm(vectors, axis=1) < bond_factor * (radii[i] + radii[j])
    keep = bonded & (i < j)
    return i[keep], j[keep], (shifts[keep] @ atoms.cell.array).astype(np.float64)


class FailureMonitor:
    """Checks one replica's state against the criteria; keeps running bond-length means.

    Positions must not be wrapped back into the cell during the run (ASE's integrators do
    not wrap), so the image shift of each bond found at the start stays valid.
    """

    def __init__(self, atoms: Atoms, criteria: FailureCriteria, temperature_K: float) -> None:
        self.criteria = criteria
        self.temperature_K = float(temperature_K)
        self.bonds = find_bonds(atoms, criteria.bond_factor)
        # Mean over the starting structure and every earlier check (the current one excluded,
        # so that a sudden stretch is not diluted by itself).
        self._bond_sum = self._bond_lengths(atoms)
        self._n_seen = 1

    def check(
        self, atoms: Atoms, forces: np.ndarray | None = None, step: int | None = None
    ) -> str | None:
        """The reason the state has failed, or None when it is still physical.

        Args:
            atoms: the current state.
            forces: [N, 3] its forces (eV/Å), checked for NaN when given.
            step: the MD step of the state; the temperature window is skipped before
                ``temperature_grace_steps`` (never when ``step`` is None).
        """
        if (reason := _non_finite(atoms, forces)) is not None:
            return reason
        settling = step is not None and step < self.criteria.temperature_grace_steps
        criteria = (self._min_distance, self._bond_deviation)
        for criterion in criteria if settling else (self._temperature, *criteria):
            if (reason := criterion(atoms)) is not None:
                return reason
        return None

    def _temperature(self, atoms: Atoms) -> str | None:
        window = self.criteria.temperature_window_K
        if window is None:
            return None
        temperature = float(atoms.get_temperature())
        if not np.isfinite(temperature):
            return "temperature is NaN or infinite"
        if abs(temperature - self.temperature_K) > window:
            low, high = self.temperature_K - window, self.temperature_K + window
            return f"temperature {temperature:.1f} K left [{low:.0f}, {high:.0f}] K"
        return None

    def _min_distance(self, atoms: Atoms) -> str | None:
        threshold = self.criteria.min_distance_A
        if threshold is None or len(atoms) < 2:
            return None
        i, j, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, threshold)
        if len(i) == 0:
            return None
        d = np.linalg.norm(
            atoms.positions[j] - atoms.positions[i] + shifts @ atoms.cell.array, axis=1
        )
        k = int(np.argmin(d))
        return f"atoms {i[k]} and {j[k]} are {d[k]:.3f} Å apart (< {threshold} Å)"

    def _bond_lengths(self, atoms: Atoms) -> np.ndarray:
        i, j, shifts = self.bonds
        return np.linalg.norm(atoms.positions[j] - atoms.positions[i] + shifts, axis=1)

    def _bond_deviation(self, atoms: Atoms) -> str | None:
        limit = self.criteria.bond_deviation_A
        i, j, shifts = self.bonds
        if limit is None or len(i) == 0:
            return None
        lengths = self._bond_lengths(atoms)
        deviation = np.abs(lengths - self._bond_sum / self._n_seen)
        self._bond_sum += lengths
        self._n_seen += 1
        k = int(np.argmax(deviation))
        if deviation[k] > limit:
            return (
                f"bond {i[k]}-{j[k]} is {lengths[k]:.3f} Å, {deviation[k]:.3f} Å from its mean "
                f"(> {limit} Å)"
            )
        return None


def _non_finite(atoms: Atoms, forces: np.ndarray | None) -> str | None:
    if not np.isfinite(atoms.positions).all():
        return "positions are NaN or infinite"
    if not np.isfinite(atoms.get_momenta()).all():
        return "velocities are NaN or infinite"
    if forces is not None and not np.isfinite(forces).all():
        return "forces are NaN or infinite"
    return None
