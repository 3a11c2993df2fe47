"""Harmonic frequencies of crystalline ammonia (NH3-I): bundled models against GFN1-xTB.

    python benchmarks/bench_lattice_frequencies.py --models nh3-legato nh3-legato-lr.pt \\
        --out benchmarks/results/lattice_frequencies

For GFN1-xTB (tblite, the settings of the bundled training data) and each model: the 64-atom
NH3-I cell the training data were made in (2×2×1 unit cells, a = 5.1305 Å, cell fixed), atoms
relaxed (BFGS to ``--fmax``), then ASE ``Phonons`` on that 2×2×1 supercell (the 16 atoms of one
unit cell displaced by ±``--delta`` Å, acoustic sum rule imposed): the 48 Γ-point frequencies
of the unit cell. Modes are matched by rank after sorting; the intermolecular (lattice) modes
are the lowest 24 (4 molecules × 6; the 3 acoustic ones, ≈ 0, are left out of the errors),
all below ~400 cm⁻¹; the other 24 are intramolecular. Optional parts: validation errors of
the models on the held-out blocks of a training config (``--validation``), and time per MD
step of the 432-atom crystal (``--md-steps``), as ratios against the first model in the same
process.
Prints markdown tables; writes them and the frequencies (JSON) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS
from ase.phonons import Phonons
from ase.units import fs, invcm

REFERENCE = "GFN1-xTB"
SUPERCELL = (2, 2, 1)  # the 64-atom cell of the training data
LATTICE_MODES = 24  # 6 rigid-molecule modes × 4 molecules per unit cell


def label(name: str) -> str:
    """A model's name in the tables: a file's stem, or the bundled name."""
    return Path(name).stem


def calculator(name: str):
    """GFN1-xTB (tblite) for ``REFERENCE``, else a LegatoCalculator of a model file/name."""
    if name == REFERENCE:
        from tblite.ase import TBLite

        return TBLite(method="GFN1-xTB", verbosity=0)
    from legato_ase import LegatoCalculator

    return LegatoCalculator(name)


def frequencies(name: str, work: Path, fmax: float, delta: float) -> dict:
    """Γ-point frequencies in cm⁻¹ (imaginary ones negative) after relaxation, and timings."""
    from legato_ase.structures import ammonia_crystal

    atoms = ammonia_crystal(SUPERCELL)
    atoms.calc = calculator(name)
    start = time.perf_counter()
    steps = BFGS(atoms, logfile=None).run(fmax=fmax, steps=500)
    relaxed = time.perf_counter()
    unit = ammonia_crystal(1)  # the relaxed supercell's first image (ASE repeat order)
    unit.positions = atoms.positions[: len(unit)]
    spread = np.abs(atoms.positions - (unit * SUPERCELL).positions).max()
    folder = work / Path(name).stem
    phonons = Phonons(unit, calculator(name), supercell=SUPERCELL, delta=delta, name=str(folder))
    phonons.run()
    phonons.read(acoustic=True)
    omega = phonons.band_structure([[0.0, 0.0, 0.0]], verbose=False)[0] / invcm
    return {
        "frequencies_cm1": sorted(float(w) for w in omega),
        "relaxation_converged": bool(steps),
        "max_force_after_relaxation": float(np.abs(atoms.get_forces()).max()),
        "relaxed_images_max_deviation_A": float(spread),
        "relax_s": relaxed - start,
        "phonons_s": time.perf_counter() - relaxed,
    }


def frequency_tables(results: dict) -> str:
    """A summary table of the errors against the reference and the lattice-mode table."""
    ref = np.array(results[REFERENCE]["frequencies_cm1"])
    models = [m for m in results if m != REFERENCE]
    lattice, intra = np.arange(3, LATTICE_MODES), np.arange(LATTICE_MODES, len(ref))
    lines = [
        "| model | lattice modes: MAE (cm⁻¹) | RMSE | mean signed | max abs | "
        "intramolecular: MAE | RMSE |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in models:
        diff = np.array(results[m]["frequencies_cm1"]) - ref
        low, high = diff[lattice], diff[intra]
        lines.append(
            f"| {m} | {np.abs(low).mean():.1f} | {np.sqrt((low**2).mean()):.1f} | "
            f"{low.mean():+.1f} | {np.abs(low).max():.1f} | {np.abs(high).mean():.1f} | "
            f"{np.sqrt((high**2).mean()):.1f} |"
        )
    lines += ["", "| mode | " + " | ".join([REFERENCE, *models]) + " |"]
    lines.append("|---" * (len(models) + 2) + "|")
    for k in range(LATTICE_MODES):
        values = [results[n]["frequencies_cm1"][k] for n in [REFERENCE, *models]]
        lines.append(f"| {k} | " + " | ".join(f"{v:.1f}" for v in values) + " |")
    return "\n".join(lines)


def validation_errors(config: Path, models: list[str]) -> str:
    """Force/energy errors of each model on the validation frames of a training config."""
    from legato_ase import load_model
    from legato_ase.train.config import load_train_config
    from legato_ase.train.loss import evaluate_errors
    from legato_ase.train.prepare import load_training_data

    cfg = load_train_config(config)
    loaded = [load_model(m) for m in models]
    data = load_training_data(cfg, loaded[0].config.r_max)
    lines = [
        f"validation: {len(data.validation)} frames held out by {config}",
        "",
        "| model | energy MAE (meV/atom) | energy RMSE (meV/atom) | force MAE (meV/Å) | "
        "force RMSE (meV/Å) |",
        "|---|---|---|---|---|",
    ]
    for name, model in zip(models, loaded):
        assert model.config.r_max == loaded[0].config.r_max, "same r_max, same graphs"
        e = evaluate_errors(model, data.validation)
        lines.append(
            f"| {label(name)} | {1e3 * e['energy_per_atom_mae']:.3f} | "
            f"{1e3 * e['energy_per_atom_rmse']:.3f} | {1e3 * e['forces_mae']:.2f} | "
            f"{1e3 * e['forces_rmse']:.2f} |"
        )
    return "\n".join(lines)


def md_step_times(models: list[str], steps: int, rounds: int) -> str:
    """Seconds per velocity-Verlet step on the 432-atom crystal, alternating the models."""
    from legato_ase.structures import ammonia_crystal

    times = {m: [] for m in models}
    systems = {}
    for m in models:
        atoms = ammonia_crystal(3)
        MaxwellBoltzmannDistribution(atoms, temperature_K=100, rng=np.random.default_rng(0))
        atoms.calc = calculator(m)
        systems[m] = VelocityVerlet(atoms, timestep=0.5 * fs)
        systems[m].run(1)  # warm-up: neighbour lists, first allocation
    for _ in range(rounds):
        for m in models:
            start = time.perf_counter()
            systems[m].run(steps)
            times[m].append((time.perf_counter() - start) / steps)
    base = min(times[models[0]])
    lines = ["| model | s/step min | s/step median | ratio (min) |", "|---|---|---|---|"]
    for m in models:
        t = times[m]
        lines.append(
            f"| {label(m)} | {min(t):.3f} | {statistics.median(t):.3f} | {min(t) / base:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["nh3-legato"])
    parser.add_argument("--out", type=Path, default=Path("lattice_frequencies"))
    parser.add_argument("--fmax", type=float, default=1e-3, help="relaxation, eV/Å")
    parser.add_argument("--delta", type=float, default=0.01, help="displacement, Å")
    parser.add_argument("--work", type=Path, default=Path("phonon_cache"), help="ASE cache")
    parser.add_argument("--skip-reference", action="store_true", help="reuse out/freqs JSON")
    parser.add_argument("--validation", type=Path, help="training config: its held-out frames")
    parser.add_argument("--md-steps", type=int, default=0, help="MD steps per timing round")
    parser.add_argument("--md-rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "frequencies.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    names = args.models if args.skip_reference else [REFERENCE, *args.models]
    for name in names:
        results[label(name)] = frequencies(name, args.work, args.fmax, args.delta)
        store.write_text(json.dumps(results, indent=1))
    report = [frequency_tables({label(n): results[label(n)] for n in [REFERENCE, *args.models]})]
    if args.validation:
        report.append(validation_errors(args.validation, args.models))
    if args.md_steps:
        report.append(md_step_times(args.models, args.md_steps, args.md_rounds))
    text = "\n\n".join(report)
    (args.out / "tables.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
