"""Candidate selection by DeePMD's trust levels, with a cap and diverse picks.

A frame is *accurate* when the committee's max force deviation is below ``trust_lo``,
a *candidate* for labelling when ``trust_lo <= deviation < trust_hi``, and *failed* above
(likely unphysical; not labelled). When there are more candidates than ``max_candidates``,
``pick: diverse`` takes them by farthest-point sampling of a structural fingerprint (pair
distance histograms per species pair), starting from the most uncertain frame, so that
many near-identical frames of one trajectory do not fill the quota.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ..neighbors import neighbor_list
from .config import SelectConfig

ACCURATE, CANDIDATE, FAILED = "accurate", "candidate", "failed"

_BINS = np.linspace(0.5, 5.0, 46)  # Å; pair distances that tell structures apart


def classify(deviation: np.ndarray, cfg: SelectConfig) -> np.ndarray:
    """Each frame's class from its max force deviation (eV/Å): an array of str."""
    deviation = np.asarray(deviation, dtype=float)
    out = np.full(deviation.shape, CANDIDATE, dtype=object)
    out[deviation < cfg.trust_lo] = ACCURATE
    out[~(deviation < cfg.trust_hi)] = FAILED  # NaN counts as failed
    return out


def fingerprint(atoms: Atoms, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Histograms of pair distances (per atom) for each species pair: [len(pairs) * bins]."""
    i, j, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, float(_BINS[-1]))
    distance = np.linalg.norm(
        atoms.positions[j] - atoms.positions[i] + shifts @ atoms.cell.array, axis=1
    )
    zi, zj = atoms.numbers[i], atoms.numbers[j]
    low, high = np.minimum(zi, zj), np.maximum(zi, zj)
    rows = []
    for a, b in pairs:
        mask = (low == a) & (high == b)
        rows.append(np.histogram(distance[mask], bins=_BINS)[0] / len(atoms))
    return np.concatenate(rows)


def _farthest_points(features: np.ndarray, first: int, n: int) -> list[int]:
    chosen = [first]
    distance = np.linalg.norm(features - features[first], axis=1)
    while len(chosen) < n:
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(features - features[nxt], axis=1))
    return chosen


def pick_candidates(frames: Sequence[Atoms], cfg: SelectConfig, seed: int = 0) -> list[int]:
    """Indices (into ``frames``) of the candidates to label, at most ``cfg.max_candidates``.

    Args:
        frames: explored frames with ``info["max_force_deviation"]`` (eV/Å).
        cfg: trust levels, cap and picking rule.
        seed: seed of ``pick: random``.
    """
    deviation = np.array([a.info["max_force_deviation"] for a in frames], dtype=float)
    candidates = np.flatnonzero(classify(deviation, cfg) == CANDIDATE)
    if len(candidates) <= cfg.max_candidates:
        return candidates.tolist()
    if cfg.pick == "random":
        rng = np.random.default_rng(seed)
        return sorted(rng.choice(candidates, cfg.max_candidates, replace=False).tolist())
    by_deviation = candidates[np.argsort(-deviation[candidates], kind="stable")]
    if cfg.pick == "highest":
        return sorted(by_deviation[: cfg.max_candidates].tolist())
    species = sorted({int(z) for k in candidates for z in frames[k].numbers})
    pairs = [(a, b) for n, a in enumerate(species) for b in species[n:]]
    features = np.stack([fingerprint(frames[k], pairs) for k in candidates])
    first = int(np.flatnonzero(candidates == by_deviation[0])[0])
    chosen = _farthest_points(features, first, cfg.max_candidates)
    return sorted(candidates[chosen].tolist())
