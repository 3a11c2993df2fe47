"""Statistics of the training set that fix the model's normalisation before training."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import ModelConfig
from .dataset import Frame


def average_num_neighbors(frames: Sequence[Frame]) -> float:
    """Mean number of neighbours within r_max per atom."""
    n_edges = sum(f.graph.edge_index.shape[1] for f in frames)
    n_atoms = sum(f.graph.n_atoms for f in frames)
    return max(float(n_edges) / max(n_atoms, 1), 1.0)


def energy_shifts(frames: Sequence[Frame], species: Sequence[str]) -> dict[str, float]:
    """Per-species energies μ_Z (eV) from least squares E ≈ Σ_Z n_Z μ_Z.

    With a fixed stoichiometry (e.g. only NH3) the system is rank deficient: the
    minimum-norm solution still reproduces the mean energy per formula unit.
    """
    counts = np.zeros((len(frames), len(species)))
    for row, frame in enumerate(frames):
        counts[row] = np.bincount(frame.graph.species.numpy(), minlength=len(species))
    energies = np.array([f.energy for f in frames])
    mu, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return {s: float(m) for s, m in zip(species, mu, strict=True)}


def force_rms(frames: Sequence[Frame], species: Sequence[str]) -> dict[str, float]:
    """Per-species RMS of the force components (eV/Å): the energy scale σ_Z.

    A species without atoms (or with zero forces) gets the overall RMS.
    """
    z = np.concatenate([f.graph.species.numpy() for f in frames])
    forces = np.concatenate([f.forces.numpy() for f in frames])
    overall = float(np.sqrt(np.mean(forces**2))) or 1.0
    out = {}
    for n, s in enumerate(species):
        sel = forces[z == n]
        value = float(np.sqrt(np.mean(sel**2))) if sel.size else 0.0
        out[s] = value if value > 0 else overall
    return out


def fit_statistics(
    cfg: ModelConfig, frames: Sequence[Frame], species: Sequence[str]
) -> ModelConfig:
    """The model config with avg_num_neighbors, energy_shift and energy_scale from data."""
    if not frames:
        raise ValueError("the training set is empty: no frames to compute statistics from.")
    return cfg.replace(
        avg_num_neighbors=average_num_neighbors(frames),
        energy_shift=energy_shifts(frames, species),
        energy_scale=force_rms(frames, species),
    )
