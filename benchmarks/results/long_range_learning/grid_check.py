"""Is the layer exact at the benchmark's settings and test boxes? Fixed charges, one kernel.

    python benchmarks/results/long_range_learning/grid_check.py

Unit charges on the Yukawa case's first test box of each size, one channel with a = 1 and
μ = 0.3 Å⁻¹ at the benchmark's σ, grid spacing and truncation: the layer's potentials against
a direct sum of the same smeared kernel over all images within 60 Å, minus the k = 0
(mean-field) term the layer leaves out, 4π/μ² · N/V.
"""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench_long_range_learning import LONG_RANGE, random_box  # noqa: E402

from legato_ase.config import LongRangeConfig  # noqa: E402
from legato_ase.model.longrange import LongRange, real_space_kernel  # noqa: E402

MU = 0.3


def direct(positions: torch.Tensor, length: float, sigma: float, reach_A: float = 60.0):
    """[N] Σ_j Σ_n' K(|r_i − r_j − n|) over images within ``reach_A``."""
    d0 = positions[None] - positions[:, None]
    reach = math.ceil(reach_A / length) + 1
    mu = torch.tensor([MU], dtype=torch.float64)
    total = torch.zeros(positions.shape[0], dtype=torch.float64)
    for shift in itertools.product(range(-reach, reach + 1), repeat=3):
        r = (d0 + torch.tensor(shift, dtype=torch.float64) * length).norm(dim=-1)
        k = real_space_kernel(r.clamp(min=1e-9).unsqueeze(-1), mu, sigma)[..., 0]
        total += torch.where(r > 0, k, torch.zeros(())).sum(1)
    return total


def main() -> None:
    settings = {key: LONG_RANGE[key] for key in ("sigma", "grid_spacing", "truncation")}
    cfg = LongRangeConfig(channels=1, screening=[MU], head_mlp=[], **settings)
    layer = LongRange(cfg, 4, 1).double()
    with torch.no_grad():
        layer.amplitude.fill_(1.0)
    print("| L (Å) | max error of φ (layer − direct) | largest φ |\n|---|---|---|")
    for length in (7.0, 10.0, 14.0):
        atoms = random_box(length, seed=20_000 + int(length))
        edge = float(atoms.cell[0, 0])
        positions = torch.tensor(atoms.positions)
        cell = torch.tensor(atoms.cell.array)
        with torch.no_grad():
            phi = layer.periodic_potentials(
                positions, torch.ones(len(atoms), 1, dtype=torch.float64), cell
            )[:, 0]
        background = 4 * math.pi / MU**2 * len(atoms) / edge**3
        reference = direct(positions, edge, cfg.sigma) - background
        error, scale = float((phi - reference).abs().max()), float(phi.abs().max())
        print(f"| {length:g} | {error:.1e} | {scale:.3f} |")


if __name__ == "__main__":
    main()
