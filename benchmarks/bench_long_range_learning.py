"""Does the long-range layer learn long-range physics? The LRC paper's kind of benchmark.

    python benchmarks/bench_long_range_learning.py --out benchmarks/results/long_range

Random periodic particles of one species (0.06 Å⁻³, no two closer than 1.3 Å) with a pair
energy V(r) that has a short and a long part, labelled by a direct real-space sum over all
pairs and periodic images within a cutoff (independent of the layer):

- ``yukawa``: V = 2 eV·exp(−r/0.3 Å) + 1 eV·Å · exp(−μr)/r with μ = 0.3 Å⁻¹: the long part is
  a kernel of the layer's family (up to the smearing, which is short-ranged);
- ``exponentials``: the LRC paper's mixture V = 0.5·(−e^{−10r}) + 0.5·(−e^{−r}) in eV, with r
  in units of λ = 4 Å (decay lengths 0.4 Å and 4 Å); its long part is outside the family.

For each case a local model (r_max 4 Å) and the same model with the layer are trained on small
boxes, then their force errors are measured on boxes of growing size. The two-level recipe
(the local model first, then only the layer, added at zero amplitude, on a few large boxes) is
run with growing numbers of large boxes. Prints markdown tables; writes them, the learning
curves and the learned kernels to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write
from ase.neighborlist import neighbor_list

DENSITY = 0.06  # particles per Å³
R_MAX = 4.0
LAMBDA = 4.0  # Å: the length unit of the paper's mixture of exponentials
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


def _yukawa(r):
    """V and dV/dr: 2·exp(−r/0.3) + exp(−0.3 r)/r."""
    short = 2.0 * np.exp(-r / 0.3)
    long = np.exp(-0.3 * r) / r
    return short + long, -short / 0.3 - (0.3 * r + 1) * long / r


def _exponentials(r):
    """V and dV/dr: 0.5·(−e^{−10 r/λ}) + 0.5·(−e^{−r/λ})."""
    fast, slow = np.exp(-10 * r / LAMBDA), np.exp(-r / LAMBDA)
    return -0.5 * (fast + slow), 0.5 * (10 * fast + slow) / LAMBDA


# cutoff: where the pair terms have fallen below ~1e-7 eV (yukawa) / 1e-10 eV (exponentials).
CASES = {"yukawa": (_yukawa, 45.0), "exponentials": (_exponentials, 90.0)}


def label(atoms: Atoms, case: str) -> Atoms:
    """Energy and forces by a direct sum over all pairs and images within the cutoff.

    Vectorised over lattice shifts (cubic boxes): the same sum as ``label_reference``.
    """
    pair, cutoff = CASES[case]
    length = float(atoms.cell[0, 0])
    assert np.allclose(atoms.cell.array, np.eye(3) * length), "cubic boxes only"
    d0 = atoms.positions[None, :, :] - atoms.positions[:, None, :]  # r_j − r_i, [N, N, 3]
    d0 -= length * np.round(d0 / length)
    reach = int(np.ceil(cutoff / length)) + 1
    shifts = np.array(list(itertools.product(range(-reach, reach + 1), repeat=3)), float)
    shifts = shifts[np.linalg.norm(shifts, axis=1) * length < cutoff + np.sqrt(3) * length]
    energy, forces = 0.0, np.zeros((len(atoms), 3))
    for chunk in np.array_split(shifts * length, max(1, len(shifts) // 32)):
        vec = d0[None] + chunk[:, None, None, :]  # [S, N, N, 3]
        r = np.linalg.norm(vec, axis=-1)
        keep = (r < cutoff) & (r > 0)
        v, dv = pair(np.where(keep, r, 1.0))
        energy += 0.5 * float(np.sum(v * keep))
        forces += np.einsum("snm,snmk->nk", np.where(keep, dv / np.where(keep, r, 1.0), 0), vec)
    out = atoms.copy()
    out.info["energy"] = energy
    out.arrays["forces"] = forces
    return out


def label_reference(atoms: Atoms, case: str) -> Atoms:
    """The same direct sum through ASE's neighbour list (slow; checks ``label``)."""
    pair, cutoff = CASES[case]
    i, j, d, vec = neighbor_list("ijdD", atoms, cutoff)
    v, dv = pair(d)
    forces = np.zeros((len(atoms), 3))
    np.add.at(forces, i, (dv / d)[:, None] * vec)  # −dE/dr_i = Σ_j V'(r)·(r_j − r_i)/r
    out = atoms.copy()
    out.info["energy"] = 0.5 * float(np.sum(v))
    out.arrays["forces"] = forces
    return out


def check_labels(case: str, length: float) -> dict:
    """Largest differences between the vectorised and the neighbour-list direct sums."""
    atoms = random_box(length, seed=99)
    fast, slow = label(atoms, case), label_reference(atoms, case)
    return {
        "box": length,
        "energy_diff": abs(fast.info["energy"] - slow.info["energy"]),
        "energy": slow.info["energy"],
        "max_force_diff": float(np.abs(fast.arrays["forces"] - slow.arrays["forces"]).max()),
    }


def random_box(length: float, seed: int, min_dist: float = 1.3) -> Atoms:
    """round(ρL³) particles in a cube resized to density ρ exactly (≈ L).

    The exact density keeps the mean-field (k = 0) energy per particle, ½ρ·∫V d³r, the same
    in every box: it differs by ~0.1 eV (yukawa) to ~0.5 eV (exponentials) per particle
    between 20 and 21 particles in a 7 Å box, which no model sees locally.
    """
    rng = np.random.default_rng(seed)
    n = max(2, round(DENSITY * length**3))
    length = (n / DENSITY) ** (1 / 3)
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


def train_model(frames, val, folder: Path, model: dict, args, epochs: int, **extra) -> Path:
    """Train in ``folder``, refine at each of ``args.refine_lrs`` (lr decay in stages), then
    take ``args.lbfgs_epochs`` full-batch L-BFGS epochs.

    A stage whose ``learning_curve.csv`` is already there (copied when it finished) is reused.
    """
    path = _train_stage(frames, val, folder, model, {"lr": args.lr}, epochs, args.patience, extra)
    stages = [
        (f"refine_{k + 1}", {"lr": lr}, args.refine_epochs) for k, lr in enumerate(args.refine_lrs)
    ]
    if getattr(args, "lbfgs_epochs", 0):
        lbfgs = {"name": "lbfgs", "lr": 1.0, "ema_decay": None}
        stages.append(
            ("lbfgs", {**lbfgs, "lbfgs_iterations": args.lbfgs_iterations}, args.lbfgs_epochs)
        )
    for name, optimizer, stage_epochs in stages:
        refine = {**extra, "init_from": str(path)}
        path = _train_stage(
            frames, val, folder / name, {}, optimizer, stage_epochs, args.patience, refine
        )
    return path


def _train_stage(
    frames, val, folder: Path, model: dict, optimizer: dict, epochs, patience, extra, batch_size=4
) -> Path:
    from legato_ase.train import TrainConfig, train

    if (folder / "learning_curve.csv").exists():
        return folder / "run" / "model.pt"
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
            "optimizer": optimizer,
            "schedule": {
                "epochs": epochs,
                "batch_size": batch_size,
                "plateau_patience": patience,
                "min_lr": 1e-5,
            },
            "output_dir": str(folder / "run"),
            "dtype": "float64",
            **extra,
        }
    )
    result = train(cfg, progress=False)
    shutil.copy(result.output_dir / "learning_curve.csv", folder / "learning_curve.csv")
    return result.model_path


def force_rmse(model_path: Path, frames) -> float:
    from legato_ase import LegatoCalculator

    calc = LegatoCalculator(model_path, max_edges=None)
    errors = []
    for atoms in frames:
        got = calc.calculate_batch([atoms])[0]["forces"]
        errors.append((got - atoms.arrays["forces"]).ravel())
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def learned_kernel(model_path: Path, frames) -> dict:
    """The layer's amplitudes a_c, screenings μ_c, and mean and spread of its charges."""
    import torch

    from legato_ase import load_model

    model = load_model(model_path)
    layer = model.long_range
    charges = []

    original = layer.charges

    def recording(features, species):
        q = original(features, species)
        charges.append(q.detach())
        return q

    layer.charges = recording  # this instance only
    force_rmse(model, frames)
    q = torch.cat(charges)
    return {
        "amplitude": layer.amplitude.detach().tolist(),
        "screening_per_A": layer.screening.detach().abs().tolist(),
        "charge_mean": q.mean(0).tolist(),
        "charge_std": q.std(0).tolist(),
    }


def training_set(case: str, args, seed: int) -> list[Atoms]:
    frames = []
    for k, (length, count) in enumerate(zip(args.train_sizes, args.n_train)):
        frames += dataset(case, length, count, seed=seed + 1000 * k)
    return frames


def run_case(case: str, out: Path, args) -> dict:
    small = training_set(case, args, seed=0)
    val = training_set(case, argparse.Namespace(**{**vars(args), "n_train": args.n_val}), 10_000)
    tests = {
        length: dataset(case, length, args.n_test, seed=20_000 + int(length))
        for length in args.test_sizes
    }
    models = {
        "local": train_model(small, val, out / case / "local", MODEL, args, args.epochs),
        "local + LRC": train_model(
            small, val, out / case / "lrc", {**MODEL, "long_range": LONG_RANGE}, args, args.epochs
        ),
    }
    rows = {
        name: {f"{length:g}": force_rmse(path, tests[length]) for length in args.test_sizes}
        for name, path in models.items()
    }
    kernel = learned_kernel(models["local + LRC"], tests[max(args.test_sizes)][:1])
    big_val = dataset(case, args.large, 2, seed=30_000)
    two_level, fine_tuned = {}, {}
    for count in args.large_counts:
        big = dataset(case, args.large, count, seed=40_000)
        layer, tuned = two_level_recipe(
            big, big_val, out / case / f"two_level_{count}", models, args
        )
        two_level[count] = force_rmse(layer, tests[max(args.test_sizes)])
        fine_tuned[count] = force_rmse(tuned, tests[max(args.test_sizes)])
    return {
        "force_rmse_by_box": rows,
        "two_level_by_large_cells": two_level,
        "two_level_fine_tuned_by_large_cells": fine_tuned,
        "kernel": kernel,
    }


def two_level_recipe(big, big_val, folder: Path, models: dict, args) -> tuple[Path, Path]:
    """The local model, then the layer alone, then all weights, on a few large boxes.

    Both stages take one box per optimizer step at a fixed learning rate (no plateau decay:
    with 1-8 boxes the plateau rule, fed by two validation boxes, drives the rate to its
    floor within a few dozen steps). The layer is added at zero amplitude.
    """
    fixed = args.two_level_epochs + args.finetune_epochs  # patience longer than the stage
    layer = _train_stage(
        big,
        big_val,
        folder,
        {"long_range": LONG_RANGE},
        {"lr": args.lr},
        args.two_level_epochs,
        fixed,
        {"init_from": str(models["local"]), "trainable": "long_range"},
        batch_size=1,
    )
    tuned = _train_stage(
        big,
        big_val,
        folder / "fine_tune",
        {},
        {"lr": args.finetune_lr},
        args.finetune_epochs,
        fixed,
        {"init_from": str(layer), "trainable": "all"},
        batch_size=1,
    )
    return layer, tuned


def collect_curves(folder: Path, target: Path) -> None:
    """All learning curves under ``folder`` (models × stages) in one CSV."""
    rows = []
    for curve in sorted(folder.glob("*/**/learning_curve.csv")):
        if curve.parent.name == "run":
            continue  # the copies next to the run folders are the finished stages
        stage = curve.relative_to(folder).parent
        model, step = stage.parts[0], "/".join(stage.parts[1:]) or "main"
        lines = curve.read_text().splitlines()
        header = "model,stage," + lines[0]
        rows += [f"{model},{step},{line}" for line in lines[1:]]
    target.write_text("\n".join([header, *rows]) + "\n")


def print_tables(results: dict, args) -> None:
    for case, res in results.items():
        sizes = "+".join(f"{n}×{s:g} Å" for s, n in zip(args.train_sizes, args.n_train))
        print(f"\n{case}: force RMSE (eV/Å) on test boxes of edge L (trained on {sizes})\n")
        names = list(next(iter(res["force_rmse_by_box"].values())))
        print("| model | " + " | ".join(f"L = {s} Å" for s in names) + " |")
        print("|---|" + "---|" * len(names))
        for name, row in res["force_rmse_by_box"].items():
            print(f"| {name} | " + " | ".join(f"{row[s]:.4f}" for s in names) + " |")
        print(
            f"\ntwo-level recipe ({case}): force RMSE at L = {max(args.test_sizes):g} Å "
            f"against the number of {args.large:g} Å boxes\n"
        )
        print("| large boxes | layer only | then all weights fine-tuned |\n|---|---|---|")
        tuned = res["two_level_fine_tuned_by_large_cells"]
        for count, err in res["two_level_by_large_cells"].items():
            print(f"| {count} | {err:.4f} | {tuned[count]:.4f} |")
        print(f"\nlearned kernel ({case}): {json.dumps(res['kernel'])}")
        print(f"label check ({case}): {json.dumps(res['label_check'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/long_range"))
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--train-sizes", type=float, nargs="+", default=[7.0, 10.0])
    parser.add_argument("--n-train", type=int, nargs="+", default=[40, 12])
    parser.add_argument("--n-val", type=int, nargs="+", default=[6, 2])
    parser.add_argument("--large", type=float, default=12.0, help="two-level large box edge, Å")
    parser.add_argument("--test-sizes", type=float, nargs="+", default=[7.0, 10.0, 14.0])
    parser.add_argument("--large-counts", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--n-test", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--two-level-epochs", type=int, default=60, help="layer-only stage")
    parser.add_argument("--finetune-epochs", type=int, default=30, help="then all weights")
    parser.add_argument("--finetune-lr", type=float, default=0.0005)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--refine-lrs", type=float, nargs="*", default=[0.001, 0.0002])
    parser.add_argument("--refine-epochs", type=int, default=40)
    parser.add_argument(
        "--lbfgs-epochs", type=int, default=0, help="final full-batch L-BFGS stage (0: none)"
    )
    parser.add_argument("--lbfgs-iterations", type=int, default=20, help="L-BFGS steps per epoch")
    parser.add_argument("--patience", type=int, default=3, help="plateau patience, epochs")
    parser.add_argument(
        "--channels", type=int, default=2, help="charge channels of the layer (1 or 2)"
    )
    parser.add_argument(
        "--exclude-short-range",
        action="store_true",
        help="range-separated layer: its kernel inside r_max is left to the local model",
    )
    args = parser.parse_args()
    if args.channels not in (1, 2):
        parser.error("--channels must be 1 or 2")
    LONG_RANGE.update(channels=args.channels, screening=LONG_RANGE["screening"][: args.channels])
    LONG_RANGE.update(exclude_short_range=args.exclude_short_range)
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for case in args.cases:
        results[case] = run_case(case, args.out, args)
        results[case]["label_check"] = check_labels(case, args.train_sizes[0])
        (args.out / f"learning_{case}.json").write_text(json.dumps(results[case], indent=1))
        collect_curves(args.out / case, args.out / f"curves_{case}.csv")
    print_tables(results, args)


if __name__ == "__main__":
    main()
