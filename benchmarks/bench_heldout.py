"""Errors of models on the validation frames of a training config's split.

The frames a training run held back (``data.split`` of the config, same seed) are frames none
of the models trained on, provided every model's own config put the same files first with the
same seed and split (true of the bundled configs and of ``configs/nh3-*-robust*.yaml``).

    python benchmarks/bench_heldout.py configs/nh3-allegro.yaml nh3-allegro nh3-legato \
        runs/nh3-allegro-robust-v2/best.pt
"""

from __future__ import annotations

import argparse

import numpy as np

from legato_ase import LegatoCalculator
from legato_ase.train.config import load_train_config
from legato_ase.train.dataset import read_files, resolve_paths, split_indices


def heldout_frames(config_path: str) -> list:
    cfg = load_train_config(config_path)
    if cfg.data.split == "files":
        paths = resolve_paths(cfg.data.validation, cfg.base_dir)
        return [a for _, group in read_files(paths, cfg.data.stride) for a in group]
    groups = read_files(resolve_paths(cfg.data.train, cfg.base_dir), cfg.data.stride)
    frames = [atoms for _, group in groups for atoms in group]
    _, val = split_indices([len(g) for _, g in groups], cfg.data, cfg.seed)
    return [frames[i] for i in val]


def errors(model: str, frames: list) -> dict[str, float]:
    calc = LegatoCalculator(model, dtype="float64")
    de, df = [], []
    for atoms in frames:
        ref_e, ref_f = atoms.get_potential_energy(), atoms.get_forces()
        probe = atoms.copy()
        probe.calc = calc
        de.append((probe.get_potential_energy() - ref_e) / len(atoms))
        df.append((probe.get_forces() - ref_f).ravel())
    de, df = np.asarray(de), np.concatenate(df)
    return {
        "energy_mae_meV_atom": 1e3 * np.abs(de).mean(),
        "forces_mae_meV_A": 1e3 * np.abs(df).mean(),
        "forces_rmse_meV_A": 1e3 * np.sqrt((df**2).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="training YAML whose validation split is used")
    parser.add_argument("models", nargs="+", help="model files or bundled names")
    args = parser.parse_args()
    frames = heldout_frames(args.config)
    print(f"{len(frames)} held-out frames of {args.config}")
    print(f"{'model':>40} {'E MAE meV/atom':>15} {'F MAE meV/Å':>12} {'F RMSE meV/Å':>13}")
    for model in args.models:
        e = errors(model, frames)
        print(
            f"{model:>40} {e['energy_mae_meV_atom']:15.3f} {e['forces_mae_meV_A']:12.2f} "
            f"{e['forces_rmse_meV_A']:13.2f}"
        )


if __name__ == "__main__":
    main()
