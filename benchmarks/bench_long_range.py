"""The long-range layer: accuracy against cost, and time per step against atom count.

    python benchmarks/bench_long_range.py accuracy      # the grid_spacing / truncation knob
    python benchmarks/bench_long_range.py scaling --max-atoms 100000

``accuracy``: for several (grid_spacing, truncation) settings at σ = 1 Å, the relative
extensivity error of a 2×1×1 supercell of the 16-atom ammonia cell (tiny model, float64), the
rock-salt Madelung error of fixed ±1 charges (σ = 0.6 Å, spacing and truncation scaled alike),
stencil points per atom, and the time of energy + forces of the layer on 432 atoms.

``scaling``: random positions at the number density of NH3-I (0.118 Å⁻³), 4 channels of fixed
random charges, energy + forces of the layer (default settings, float32, one thread), against
a direct all-pairs sum with the same kernel (the pair energies ½ q_i K(r_ij) q_j, in row blocks
that are differentiated one at a time; run up to ``--max-direct`` atoms; beyond, the measured
O(N²) cost is extrapolated and marked so). Times are CPU seconds of this process with one
torch thread (robust against other load on a shared machine), min of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from ase.build import bulk

from legato_ase import build_model
from legato_ase.calculator import LegatoCalculator
from legato_ase.config import LongRangeConfig
from legato_ase.model.longrange import LongRange, _stencil, grid_shape, real_space_kernel
from legato_ase.structures import ammonia_crystal

DENSITY = 16 / 5.1305**3  # atoms per Å³ in NH3-I
TINY = {"r_max": 3.5, "n_layers": 1, "n_scalar": 16, "n_tensor": 4, "two_body_mlp": [16]}
MADELUNG = 1.747564594633182


def _layer(cfg: LongRangeConfig, dtype) -> LongRange:
    torch.manual_seed(0)
    return LongRange(cfg, n_features=1, n_species=1).to(dtype)


def _energy_forces(layer, positions, charges, cell):
    pos = positions.clone().requires_grad_()
    energy = layer.energies(charges, layer.periodic_potentials(pos, charges, cell)).sum()
    (grad,) = torch.autograd.grad(energy, pos)
    return float(energy.detach()), grad


def _direct_energy_forces(layer, positions, charges, block=256):
    """½ Σ_ij q_i K(r_ij) q_j by row blocks, each differentiated at once (bounded memory)."""
    mu, grad, energy = layer._mu().detach(), torch.zeros_like(positions), 0.0
    n = len(positions)
    for start in range(0, n, block):
        pos = positions.clone().requires_grad_()
        rows = slice(start, min(start + block, n))
        d = pos[rows].unsqueeze(1) - pos.unsqueeze(0)
        same = torch.arange(n)[rows].unsqueeze(1) == torch.arange(n)
        r = torch.linalg.vector_norm(d + same.unsqueeze(-1).to(d.dtype), dim=-1)
        kernel = real_space_kernel(r.unsqueeze(-1), mu, layer.sigma).masked_fill(
            same.unsqueeze(-1), 0.0
        )
        e = 0.5 * (charges[rows].unsqueeze(1) * kernel * charges.unsqueeze(0)).sum()
        grad += torch.autograd.grad(e, pos)[0]
        energy += float(e.detach())
    return energy, grad


def _best(fn, repeats):
    """Smallest CPU time of this (single-threaded) process: robust on a shared machine."""
    best = math.inf
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def accuracy(repeats: int) -> None:
    cell16 = ammonia_crystal(1)
    salt = bulk("NaCl", "rocksalt", a=5.64)  # primitive: a triclinic cell
    q_salt = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
    big = ammonia_crystal(3)
    rng = np.random.default_rng(0)
    q_big = torch.tensor(rng.normal(size=(len(big), 4)))
    print(
        "| grid_spacing / (σ/√2) | truncation | stencil points | 2×1×1 rel. error "
        "| Madelung rel. error | energy+forces, 432 atoms (s) |"
    )
    print("|---|---|---|---|---|---|")
    for ratio, trunc in [(1.0, 4.0), (1.0, 5.5), (0.707, 5.5), (0.707, 7.0), (0.5, 7.0)]:
        spacing = ratio / math.sqrt(2)
        settings = {"grid_spacing": spacing, "truncation": trunc}
        model = build_model({**TINY, "long_range": settings}, dtype=torch.float64)
        e1 = _energy(model, cell16)
        e2 = _energy(model, cell16.repeat((2, 1, 1)))
        sigma = 0.6
        salt_cfg = LongRangeConfig(
            channels=1,
            sigma=sigma,
            grid_spacing=spacing * sigma,
            truncation=trunc,
            screening=[0.0],
        )
        layer = _layer(salt_cfg, torch.float64)
        layer.amplitude.data.fill_(1.0)
        with torch.no_grad():
            pos, c = torch.tensor(salt.positions), torch.tensor(salt.cell.array)
            e_salt = 0.5 * float((q_salt * layer.periodic_potentials(pos, q_salt, c)).sum())
        e_salt += _erfc_part(salt, np.array([1.0, -1.0]), sigma)
        madelung = -MADELUNG / (5.64 / 2)
        cfg = LongRangeConfig(grid_spacing=spacing, truncation=trunc)
        lay = _layer(cfg, torch.float64)
        cell = torch.tensor(big.cell.array)
        shape = grid_shape(cell, spacing)
        points = len(_stencil(cell, shape, trunc / math.sqrt(2)))
        seconds = _best(
            lambda lay=lay, cell=cell: _energy_forces(
                lay, torch.tensor(big.positions), q_big, cell
            ),
            repeats,
        )
        print(
            f"| {ratio:.3g} | {trunc} | {points} | {abs(e2 - 2 * e1) / abs(e2):.1e} | "
            f"{abs(e_salt / madelung - 1):.1e} | {seconds:.3f} |"
        )


def _energy(model, atoms) -> float:
    atoms = atoms.copy()
    atoms.calc = LegatoCalculator(model, max_edges=None)
    return atoms.get_potential_energy()


def _erfc_part(atoms, charges, sigma) -> float:
    from ase.neighborlist import neighbor_list
    from scipy.special import erfc

    i, j, d = neighbor_list("ijd", atoms, 14 * sigma)
    return 0.5 * float(np.sum(charges[i] * charges[j] * erfc(d / (2 * sigma)) / d))


def scaling(max_atoms: int, max_direct: int, repeats: int) -> None:
    layer = _layer(LongRangeConfig(), torch.float32)
    sizes = [n for n in (1_000, 3_000, 10_000, 30_000, 100_000, 300_000) if n <= max_atoms]
    print(
        "| atoms | grid points | LRC energy+forces (s) | per atom (µs) "
        "| direct all-pairs (s) | direct / LRC |"
    )
    print("|---|---|---|---|---|---|")
    direct_rate = None
    for n in sizes:
        box = (n / DENSITY) ** (1 / 3)
        rng = np.random.default_rng(n)
        pos = torch.tensor(rng.random((n, 3)) * box, dtype=torch.float32)
        q = torch.tensor(rng.normal(size=(n, 4)), dtype=torch.float32)
        cell = torch.eye(3) * box
        shape = grid_shape(cell, layer.cfg.grid_spacing)
        lrc = _best(lambda pos=pos, q=q, cell=cell: _energy_forces(layer, pos, q, cell), repeats)
        if n <= max_direct:
            direct = _best(lambda pos=pos, q=q: _direct_energy_forces(layer, pos, q), repeats)
            direct_rate = direct / n**2
            direct_text = f"{direct:.3g}"
        else:
            direct = direct_rate * n**2
            direct_text = f"~{direct:.3g} (extrapolated N²)"
        print(
            f"| {n} | {shape[0]}×{shape[1]}×{shape[2]} | {lrc:.3g} | {1e6 * lrc / n:.0f} | "
            f"{direct_text} | {direct / lrc:.2g} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["accuracy", "scaling"])
    parser.add_argument("--max-atoms", type=int, default=100_000)
    parser.add_argument("--max-direct", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.part == "accuracy":
        accuracy(args.repeats)
    else:
        scaling(args.max_atoms, args.max_direct, args.repeats)


if __name__ == "__main__":
    main()
