"""Do the benchmark's boxes determine the Yukawa kernel? A linear least-squares check.

    python benchmarks/results/long_range_learning/kernel_fit.py

The Yukawa case of ``bench_long_range_learning.py`` with the networks replaced by the best
linear model of the same structure: a local pair part (10 exponentials e^{−b·r}, b = 0.5 to
8 Å⁻¹, times the smooth cutoff (1 − r/r_max)³, r_max = 4 Å: anything inside the cutoff) plus
A·e^{−μr}/r summed over all pairs and images (the layer's kernel family). For each μ the
coefficients are fitted to the forces of the benchmark's training boxes (40 of 7 Å, 8 of
10 Å); the fit's force RMSE on the training and on the test boxes (3 each of 7, 10, 14 Å)
shows how sharply the data pin μ, and what a given error in μ costs as the box grows.

Second table, the two-level recipe: the local part alone fitted on the small boxes, then
(a) only A and μ fitted on n large (12 Å) boxes with the local part frozen, or (b) the local
part refitted together with them on the large boxes. Force RMSE on the 14 Å test boxes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench_long_range_learning import CASES, dataset, label  # noqa: E402

R_MAX = 4.0
DECAYS = np.geomspace(0.5, 8.0, 10)  # 1/Å
TRUE_MU = 0.3


def _local(b: float):
    """V and dV/dr of e^{−b·r}·(1 − r/r_max)³ inside r_max."""

    def pair(r):
        inside = r < R_MAX
        x = np.clip(r / R_MAX, 0.0, 1.0)
        env, denv = (1 - x) ** 3, -3 * (1 - x) ** 2 / R_MAX
        v = np.exp(-b * r)
        return np.where(inside, v * env, 0.0), np.where(inside, v * (denv - b * env), 0.0)

    return pair, R_MAX


def _yukawa(mu: float):
    """V and dV/dr of e^{−μr}/r (cut at 45 Å, like the labels)."""

    def pair(r):
        v = np.exp(-mu * r) / r
        return v, -(mu * r + 1) * v / r

    return pair, 45.0


def _forces(frames, term) -> np.ndarray:
    """Flattened forces of a pair term over all frames."""
    CASES["_term"] = term
    return np.concatenate([label(a, "_term").arrays["forces"].ravel() for a in frames])


def _targets(frames) -> np.ndarray:
    return np.concatenate([a.arrays["forces"].ravel() for a in frames])


def _rmse(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def joint_fit(train, tests) -> None:
    """Table: μ against train/test force RMSE of the best (local, A) at that μ."""
    y = _targets(train)
    local = np.stack([_forces(train, _local(b)) for b in DECAYS], 1)
    test_local = {L: np.stack([_forces(f, _local(b)) for b in DECAYS], 1) for L, f in tests.items()}
    print("| μ (1/Å) | A (eV·Å) | train | " + " | ".join(f"L = {L:g} Å" for L in tests) + " |")
    print("|---|---|---|" + "---|" * len(tests))
    for mu in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
        x = np.concatenate([local, _forces(train, _yukawa(mu))[:, None]], 1)
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        cells = [f"{mu:.2f}", f"{coef[-1]:.3f}", f"{_rmse(x @ coef - y):.5f}"]
        for L, frames in tests.items():
            xt = np.concatenate([test_local[L], _forces(frames, _yukawa(mu))[:, None]], 1)
            cells.append(f"{_rmse(xt @ coef - _targets(frames)):.5f}")
        print("| " + " | ".join(cells) + " |")


def two_level_fit(train, test, counts=(1, 4, 8)) -> None:
    """Table: the two-level recipe with the local part frozen or refitted, at the best μ."""
    local = np.stack([_forces(train, _local(b)) for b in DECAYS], 1)
    frozen = np.linalg.lstsq(local, _targets(train), rcond=None)[0]
    test_local, y_test = np.stack([_forces(test, _local(b)) for b in DECAYS], 1), _targets(test)
    print(
        f"\nlocal part alone, fitted on the small boxes: {_rmse(test_local @ frozen - y_test):.4f}"
    )
    print("\n| large boxes | layer only: μ, A, RMSE | all refitted at μ = 0.3: RMSE |")
    print("|---|---|---|")
    for n in counts:
        big = dataset("yukawa", 12.0, n, seed=40_000)
        y, big_local = _targets(big), np.stack([_forces(big, _local(b)) for b in DECAYS], 1)
        best = None
        for mu in np.arange(0.05, 0.61, 0.05):
            yuk = _forces(big, _yukawa(mu))
            rest = y - big_local @ frozen
            amp = float(yuk @ rest / (yuk @ yuk))
            if best is None or _rmse(rest - amp * yuk) < best[0]:
                best = (_rmse(rest - amp * yuk), mu, amp)
        _, mu, amp = best
        layer_only = _rmse(test_local @ frozen + amp * _forces(test, _yukawa(mu)) - y_test)
        x = np.concatenate([big_local, _forces(big, _yukawa(TRUE_MU))[:, None]], 1)
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        xt = np.concatenate([test_local, _forces(test, _yukawa(TRUE_MU))[:, None]], 1)
        refit = _rmse(xt @ coef - y_test)
        print(f"| {n} | {mu:.2f}, {amp:.3f}, {layer_only:.4f} | {refit:.5f} |")


def main() -> None:
    small = dataset("yukawa", 7.0, 40, seed=0) + dataset("yukawa", 10.0, 8, seed=1000)
    tests = {L: dataset("yukawa", L, 3, seed=20_000 + int(L)) for L in (7.0, 10.0, 14.0)}
    joint_fit(small, tests)
    two_level_fit(small, tests[14.0])


if __name__ == "__main__":
    main()
