"""Does the long-range layer learn long-range physics? The LRC paper's kind of benchmark.

    python benchmarks/bench_long_range_learning.py --out benchmarks/results/long_range

Random periodic particles of one species with a pair energy that has a short and a long part,
labelled by a direct real-space sum over periodic images (independent of the layer):

- ``yukawa``: 2·exp(−r/0.3 Å) + 1 eV·Å · exp(−μr)/r with μ = 0.3 Å⁻¹: the long part is a
  kernel of the layer's family (up to the smearing, which is short-ranged);
- ``exponentials``: 2·exp(−r/0.3 Å) − 0.5 eV · exp(−r/4 Å): a mixture of exponentials whose
  long part is outside the family.

For each case a local model (r_max 4 Å) and the same model with the layer are trained on
small boxes, then their force errors are measured on boxes of growing size. The two-level
recipe (the local model first, then only the layer on a few large boxes) is run with growing
numbers of large boxes. Prints markdown tables; writes them and a plot to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write
from ase.neighborlist import neighbor_list

DENSITY = 0.06  # particles per Å³
R_MAX = 4.0
MODEL = {
    "r_max": R_MAX,
    "n_layers": 1,
    "n_scalar": 16,
    "n_tensor": 4,
    "num_bessel": 6,
    "two_body_mlp": [16],
    "edge_energy_mlp": [16],
    "l_max": 1,
}
LONG_RANGE = {
    "channels": 2,
    "sigma": 0.8,
    "grid_spacing": 0.55,
    "truncation": 5.0,
    "screening": [0.1, 0.5],
    "head_mlp": [8],
}
CASES = {
    "yukawa": {
        "long": lambda r: np.exp(-0.3 * r) / r,
        "dlong": lambda r: -(0.3 * r + 1) * np.exp(-0.3 * r) / r**2,
        "cutoff": 45.0,
    },
    "exponentials": {
        "long": lambda r: -0.5 * np.exp(-r / 4.0),
        "dlong": lambda r: 0.125 * np.exp(-r / 4.0),
        "cutoff": 60.0,
    },
}


def _short(r):
    return 2.0 * np.exp(-r / 0.3), -2.0 / 0.3 * np.exp(-r / 0.3)


def label(atoms: Atoms, case: str) -> Atoms:
    """Energy and forces by a direct sum over all pairs and images within the cutoff."""
    spec = CASES[case]
    i, j, d, vec = neighbor_list("ijdD", atoms, spec["cutoff"])
    s, ds = _short(d)
    energy = 0.5 * float(np.sum(s + spec["long"](d)))
    dv = ds + spec["dlong"](d)
    forces = np.zeros((len(atoms), 3))
    np.add.at(forces, i, (dv / d)[:, None] * vec)  # −dE/dr_i = Σ_j V'(r)·(r_j − r_i)/r
    out = atoms.copy()
    out.info["energy"] = energy
    out.arrays["forces"] = forces
    return out


def random_box(length: float, seed: int, min_dist: float = 1.3) -> Atoms:
    rng = np.random.default_rng(seed)
    n = max(2, round(DENSITY * length**3))
    positions = []
    while len(positions) < n:
        trial = rng.random(3) * length
        cand = Atoms(
            "H" * (len(positions) + 1), positions=[*positions, trial], cell=[length] * 3, pbc=True
        )
        if (
            not positions
            or cand.get_distances(len(positions), range(len(positions)), mic=True).min() > min_dist
        ):
            positions.append(trial)
    return Atoms("H" * n, positions=positions, cell=[length] * 3, pbc=True)


def dataset(case: str, length: float, count: int, seed: int) -> list[Atoms]:
    return [label(random_box(length, seed + k), case) for k in range(count)]


def train_model(frames, val, folder: Path, model: dict, epochs: int, **extra) -> Path:
    from legato_ase.train import TrainConfig, train

    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "train.extxyz", frames)
    write(folder / "val.extxyz", val)
    cfg = TrainConfig.from_dict(
        {
            "data": {
                "train": [str(folder / "train.extxyz")],
                "validation": [str(folder / "val.extxyz")],
                "split": "files",
            },
            "model": model,
            "species": ["H"],
            "optimizer": {"lr": 0.005},
            "schedule": {"epochs": epochs, "batch_size": 4, "plateau_patience": 5},
            "output_dir": str(folder / "run"),
            "dtype": "float64",
            **extra,
        }
    )
    return train(cfg, progress=False).model_path


def force_rmse(model_path: Path, frames) -> float:
    from legato_ase import LegatoCalculator

    calc = LegatoCalculator(model_path, max_edges=None)
    errors = []
    for atoms in frames:
        got = calc.calculate_batch([atoms])[0]["forces"]
        errors.append((got - atoms.arrays["forces"]).ravel())
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def run_case(case: str, out: Path, args) -> dict:
    small = dataset(case, args.small, args.n_train, seed=0)
    val = dataset(case, args.small, 8, seed=10_000)
    tests = {
        length: dataset(case, length, args.n_test, seed=20_000 + int(length))
        for length in args.test_sizes
    }
    models = {
        "local": train_model(small, val, out / case / "local", MODEL, args.epochs),
        "local + LRC": train_model(
            small, val, out / case / "lrc", {**MODEL, "long_range": LONG_RANGE}, args.epochs
        ),
    }
    rows = {
        name: {f"{length:g}": force_rmse(path, tests[length]) for length in args.test_sizes}
        for name, path in models.items()
    }
    big_val = dataset(case, args.large, 2, seed=30_000)
    two_level = {}
    for count in args.large_counts:
        big = dataset(case, args.large, count, seed=40_000)
        path = train_model(
            big,
            big_val,
            out / case / f"two_level_{count}",
            {"long_range": LONG_RANGE},
            args.epochs,
            init_from=str(models["local"]),
            trainable="long_range",
        )
        two_level[count] = force_rmse(path, tests[max(args.test_sizes)])
    return {"force_rmse_by_box": rows, "two_level_by_large_cells": two_level}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/long_range"))
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--small", type=float, default=7.0, help="training box edge, Å")
    parser.add_argument("--large", type=float, default=12.0, help="two-level large box edge, Å")
    parser.add_argument("--test-sizes", type=float, nargs="+", default=[7.0, 10.0, 14.0])
    parser.add_argument("--large-counts", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--n-train", type=int, default=32)
    parser.add_argument("--n-test", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    results = {case: run_case(case, args.out, args) for case in args.cases}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning.json").write_text(json.dumps(results, indent=1))
    for case, res in results.items():
        print(
            f"\n{case}: force RMSE (eV/Å) on test boxes of edge L "
            f"(trained on L = {args.small:g} Å)\n"
        )
        sizes = list(next(iter(res["force_rmse_by_box"].values())))
        print("| model | " + " | ".join(f"L = {s} Å" for s in sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for name, row in res["force_rmse_by_box"].items():
            print(f"| {name} | " + " | ".join(f"{row[s]:.4f}" for s in sizes) + " |")
        print(
            f"\ntwo-level recipe ({case}): force RMSE at L = {max(args.test_sizes):g} Å "
            "against the number of large-box samples\n"
        )
        print("| large boxes | force RMSE (eV/Å) |\n|---|---|")
        for count, err in res["two_level_by_large_cells"].items():
            print(f"| {count} | {err:.4f} |")


if __name__ == "__main__":
    main()
