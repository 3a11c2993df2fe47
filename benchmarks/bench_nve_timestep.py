"""Which MD time step does deuterated liquid ammonia tolerate? NVE drift of GFN1-xTB and models.

Velocity Verlet, no thermostat, hydrogen given the deuterium mass (as in the authors' stability
protocol), starting from the last frame of the 200 K liquid with Maxwell–Boltzmann velocities at
200 K (same seed for every run). For each method and time step: the total-energy change per atom
every ``--report`` steps and the final temperature. A time step at which the reference method
itself does not conserve energy cannot be a test of a model fitted to it.

    python benchmarks/bench_nve_timestep.py --out benchmarks/results/nve_timestep \
        --methods gfn1-xtb nh3-allegro nh3-legato --timesteps 1.0 1.5 2.0 2.5 --steps 240
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet

from legato_ase import LegatoCalculator
from legato_ase.datasets import read_ammonia

DEUTERIUM_MASS = 2.014


def calculator(method: str):
    """GFN1-xTB (tblite, the bundled data's settings), or a model: bundled name or NAME=PATH."""
    if method == "gfn1-xtb":
        from tblite.ase import TBLite

        return TBLite(method="GFN1-xTB", verbosity=0)
    _, _, path = method.rpartition("=")
    return LegatoCalculator(path)


def nve_drift(atoms, calc, timestep_fs: float, steps: int, report: int, seed: int) -> dict:
    atoms = atoms.copy()
    masses = atoms.get_masses()
    masses[atoms.numbers == 1] = DEUTERIUM_MASS
    atoms.set_masses(masses)
    MaxwellBoltzmannDistribution(atoms, temperature_K=200, rng=np.random.default_rng(seed))
    Stationary(atoms)
    atoms.calc = calc
    md = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    e0 = atoms.get_total_energy()
    rows = []
    for k in range(steps // report):
        md.run(report)
        de = (atoms.get_total_energy() - e0) / len(atoms)
        rows.append(
            {"step": (k + 1) * report, "dE_meV_atom": 1e3 * de, "T_K": atoms.get_temperature()}
        )
        if not np.isfinite(de) or abs(de) > 1.0:  # 1 eV/atom: blown up, stop
            break
    return {"timestep_fs": timestep_fs, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/nve_timestep"))
    parser.add_argument("--methods", nargs="+", default=["gfn1-xtb", "nh3-allegro"])
    parser.add_argument("--timesteps", type=float, nargs="+", default=[1.0, 1.5, 2.0, 2.5])
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--report", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    atoms = read_ammonia("liquid_200", "-1")[0]
    atoms.calc = None
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "nve.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    for method in args.methods:
        calc = calculator(method)
        for dt in args.timesteps:
            key = f"{method}|{dt}"
            if key not in results:  # resumable: finished runs are kept
                results[key] = nve_drift(atoms, calc, dt, args.steps, args.report, args.seed)
                store.write_text(json.dumps(results, indent=1))
            last = results[key]["rows"][-1]
            name = method.rpartition("=")[0] or method
            print(
                f"{name:>14} dt {dt:3.1f} fs: after {last['step']:4d} steps "
                f"({last['step'] * dt / 1000:.2f} ps) dE {last['dE_meV_atom']:+12.1f} meV/atom, "
                f"T {last['T_K']:10.0f} K"
            )
    plot(results, args.out / "nve_drift.png")


def plot(results: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, res in sorted(results.items()):
        method, dt = key.split("|")
        t = [r["step"] * float(dt) / 1000 for r in res["rows"]]
        de = [max(abs(r["dE_meV_atom"]), 1e-3) for r in res["rows"]]
        ax.semilogy(
            t, de, marker="o", ms=3, label=f"{method.rpartition('=')[0] or method}, {dt} fs"
        )
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("|E_total − E_0| (meV/atom)")
    ax.set_title("NVE, deuterated liquid NH3 from 200 K")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
