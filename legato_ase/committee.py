"""Committees of models: the mean prediction, the model deviation and its guard.

The members' spread estimates the error where no reference is at hand (DeePMD-kit's model
deviation; Zhang et al., Phys. Rev. Materials 3, 023804 (2019)). For atom i and K members

    force deviation  ε_F,i = sqrt( (1/K) Σ_k |F_k,i − ⟨F_i⟩|² )          (eV/Å)
    energy deviation ε_E   = std_k(E_k) / N                               (eV/atom)
    atomic energy deviation ε_e,i = std_k(e_k,i)                          (eV)

with population standard deviations (1/K), as in DeePMD-kit.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

ON_DEVIATION = ("raise", "warn")
_VOIGT = [0, 4, 8, 5, 2, 1]


class UncertaintyError(RuntimeError):
    """The committee disagrees beyond the threshold: the model is outside its training data.

    Attributes:
        step: index of the calculator call (0 = its first calculation; in an ASE MD run
            with a fresh calculator this is the MD step).
        atom: index of the atom with the largest force deviation.
        deviation: that atom's force deviation, eV/Å.
        threshold: the ``max_force_deviation`` that was exceeded, eV/Å.
        structure: index of the structure within a batch (0 for a single structure).
    """

    def __init__(
        self, step: int, atom: int, deviation: float, threshold: float, structure: int = 0
    ) -> None:
        self.step, self.atom, self.deviation = step, atom, deviation
        self.threshold, self.structure = threshold, structure
        where = f"structure {structure}, " if structure else ""
        super().__init__(
            f"committee force deviation {deviation:.4g} eV/Å at {where}atom {atom} exceeds "
            f"max_force_deviation={threshold:g} eV/Å (calculation step {step}): the models "
            "disagree, so the structure is outside what they were trained on. Label such "
            "structures and retrain (docs/learning.md), or raise the threshold."
        )


class UncertaintyWarning(UserWarning):
    """Warning counterpart of :class:`UncertaintyError` (``on_deviation="warn"``)."""


def combine_members(
    energy: np.ndarray,
    energies: np.ndarray,
    forces: np.ndarray,
    virial: np.ndarray | None = None,
    volume: float | None = None,
) -> dict[str, Any]:
    """One structure's result dictionary from its K members' predictions.

    Args:
        energy: [K] total energies, eV.
        energies: [K, N] per-atom energies, eV.
        forces: [K, N, 3] forces, eV/Å.
        virial: [K, 3, 3] virials W = −V·σ, eV; None for no stress.
        volume: cell volume, Å³ (needed with ``virial``).

    Returns:
        energy, free_energy, energies, forces and (with a virial) Voigt stress in eV/Å³, the
        committee mean; with K > 1 also force_deviation [N] (eV/Å), max_force_deviation,
        energy_deviation (eV/atom), energies_deviation [N] (eV) and the members' own
        committee_energy [K] (eV), committee_forces [K, N, 3] (eV/Å) and, with a virial,
        committee_stress [K, 6] (Voigt, eV/Å³).
    """
    n_members, n_atoms = energies.shape
    mean_energy = float(np.mean(energy))
    res = {
        "energy": mean_energy,
        "free_energy": mean_energy,
        "energies": np.mean(energies, axis=0),
        "forces": np.mean(forces, axis=0),
    }
    if virial is not None:
        res["stress"] = (-np.mean(virial, axis=0) / volume).flat[_VOIGT].copy()
    if n_members > 1:
        spread = np.sum((forces - res["forces"]) ** 2, axis=-1)
        res["force_deviation"] = np.sqrt(np.mean(spread, axis=0))
        res["max_force_deviation"] = float(np.max(res["force_deviation"], initial=0.0))
        res["energy_deviation"] = float(np.std(energy)) / max(n_atoms, 1)
        res["energies_deviation"] = np.std(energies, axis=0)
        res["committee_energy"] = np.array(energy, dtype=np.float64)
        res["committee_forces"] = np.array(forces, dtype=np.float64)
        if virial is not None:
            res["committee_stress"] = (-virial / volume).reshape(n_members, 9)[:, _VOIGT]
    return res


def check_deviation(
    results: dict[str, Any],
    threshold: float | None,
    on_deviation: str,
    step: int,
    structure: int = 0,
) -> None:
    """Raise :class:`UncertaintyError` (or warn) when the force deviation exceeds threshold."""
    if threshold is None or results.get("max_force_deviation", 0.0) <= threshold:
        return
    atom = int(np.argmax(results["force_deviation"]))
    error = UncertaintyError(
        step, atom, float(results["force_deviation"][atom]), threshold, structure
    )
    if on_deviation == "raise":
        raise error
    warnings.warn(str(error), UncertaintyWarning, stacklevel=4)


def check_guard_settings(threshold: float | None, on_deviation: str, n_members: int) -> None:
    """Clear errors for a bad ``max_force_deviation``/``on_deviation`` pair."""
    if on_deviation not in ON_DEVIATION:
        raise ValueError(f"on_deviation must be one of {ON_DEVIATION}, got {on_deviation!r}")
    if threshold is None:
        return
    if not isinstance(threshold, (int, float)) or not threshold > 0:
        raise ValueError(
            f"max_force_deviation must be a positive number of eV/Å, got {threshold!r}"
        )
    if n_members < 2:
        raise ValueError(
            "max_force_deviation needs a committee: pass several models, e.g. "
            "LegatoCalculator(['a.pt', 'b.pt', 'c.pt', 'd.pt'], max_force_deviation=0.5)"
        )
