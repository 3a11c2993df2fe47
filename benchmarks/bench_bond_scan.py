"""N–H bond and contact scans of the bundled models (and the paper's) against GFN1-xTB.

For each frame (last frame of the bundled liquid at 200 K and crystal at 120 K), three
hydrogens are moved rigidly along their N–H bond from 1.0 to 2.0 Å, and the two closest
molecules are pushed together. Goal per bond (robust bundled models): the force restores the
bond by ≥ 0.5 eV/Å from 1.2 Å to 2.0 Å, and ΔE(d) − ΔE(1.0 Å) stays within 0.25 eV of GFN1-xTB
up to 1.5 Å.

    python benchmarks/bench_bond_scan.py --out benchmarks/results/bond_scan \
        --torchscript ../shared/reference_models/allegro_legato_nh3_rho0.005.pth \
                      ../shared/reference_models/allegro_nh3.pth
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from legato_ase import LegatoCalculator
from legato_ase.datasets import read_ammonia
from legato_ase.stability.scan import (
    bond_scan,
    closest_pair,
    contact_scan,
    energy_gap,
    molecules,
    restoring_ok,
)

BOND_D = np.round(np.arange(1.0, 2.001, 0.1), 3)
CONTACT_D = np.round(np.arange(3.2, 1.999, -0.1), 3)


def calculators(torchscript: list[str], models: list[str]) -> dict:
    """GFN1-xTB, our models (``NAME=PATH`` or a bundled name) and deployed TorchScript files."""
    from tblite.ase import TBLite

    calcs = {"GFN1-xTB": TBLite(method="GFN1-xTB", verbosity=0)}
    for spec in models:
        name, _, path = spec.rpartition("=")
        calcs[name or path] = LegatoCalculator(path, dtype="float64")
    for path in torchscript:
        calcs[f"paper:{Path(path).stem}"] = LegatoCalculator(path, allow_torchscript=True)
    return calcs


def scans_for(frame_name, atoms, calcs, n_bonds) -> list[dict]:
    mols = molecules(atoms)
    picks = np.linspace(0, len(mols) - 1, n_bonds).astype(int)
    rows = []
    for k in picks:
        n, h = mols[k][0], mols[k][1]
        for name, calc in calcs.items():
            s = bond_scan(atoms, calc, n, h, BOND_D)
            rows.append(_row(frame_name, f"N{n}-H{h}", "bond", name, s))
    a, b = closest_pair(atoms, mols)
    for name, calc in calcs.items():
        s = contact_scan(atoms, calc, mols[a], mols[b], CONTACT_D)
        rows.append(_row(frame_name, f"mol{a}<-mol{b}", "contact", name, s))
    return rows


def _row(frame, target, kind, model, scan) -> dict:
    return {
        "frame": frame,
        "target": target,
        "kind": kind,
        "model": model,
        "distances": scan.distances.tolist(),
        "energy": scan.energy.tolist(),
        "force_along": scan.force_along.tolist(),
    }


def summarize(rows) -> str:
    from legato_ase.stability.scan import Scan

    ref = {(r["frame"], r["target"]): r for r in rows if r["model"] == "GFN1-xTB"}
    lines = [
        "| frame | bond | model | ΔE 1.3 / 1.5 / 2.0 Å (eV) | min restoring F, 1.2–2.0 Å (eV/Å) "
        "| max abs(ΔE − ΔE_xTB) ≤ 1.5 Å (eV) | goal met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["kind"] != "bond":
            continue
        s = Scan(*(np.asarray(r[k]) for k in ("distances", "energy", "force_along")))
        x = ref[(r["frame"], r["target"])]
        xs = Scan(*(np.asarray(x[k]) for k in ("distances", "energy", "force_along")))
        at = {round(d, 3): e for d, e in zip(s.distances, s.energy)}
        restoring = float(np.min(-s.force_along[s.distances >= 1.2 - 1e-9]))
        gap = energy_gap(s, xs)
        ok = restoring_ok(s) and gap <= 0.25
        lines.append(
            f"| {r['frame']} | {r['target']} | {r['model']} | {at[1.3]:.2f} / {at[1.5]:.2f} / "
            f"{at[2.0]:.2f} | {restoring:+.2f} | {gap:.2f} | {'yes' if ok else 'no'} |"
        )
    lines += ["", "Contacts (two closest molecules pushed together; ΔE relative to N–N 3.2 Å, eV):"]
    lines += [
        "",
        "| frame | pair | model | ΔE at N–N 2.8 / 2.5 / 2.2 / 2.0 Å |",
        "|---|---|---|---|",
    ]
    for r in rows:
        if r["kind"] == "contact":
            at = {round(d, 3): e for d, e in zip(r["distances"], r["energy"])}
            vals = " / ".join(f"{at[d]:.2f}" for d in (2.8, 2.5, 2.2, 2.0))
            lines.append(f"| {r['frame']} | {r['target']} | {r['model']} | {vals} |")
    return "\n".join(lines)


def plot(rows, path: Path) -> None:
    import matplotlib.pyplot as plt

    bonds = sorted({(r["frame"], r["target"]) for r in rows if r["kind"] == "bond"})
    fig, axes = plt.subplots(2, len(bonds), figsize=(3.2 * len(bonds), 6), squeeze=False)
    for col, key in enumerate(bonds):
        for r in rows:
            if (r["frame"], r["target"]) != key:
                continue
            style = {"color": "k", "lw": 2.5} if r["model"] == "GFN1-xTB" else {}
            axes[0, col].plot(r["distances"], r["energy"], label=r["model"], **style)
            axes[1, col].plot(r["distances"], -np.asarray(r["force_along"]), **style)
        axes[0, col].set_title(f"{key[0]} {key[1]}", fontsize=8)
        axes[1, col].axhline(0.5, ls=":", c="gray")
        axes[1, col].set_xlabel("N–H distance (Å)")
    axes[0, 0].set_ylabel("ΔE (eV)")
    axes[1, 0].set_ylabel("restoring force (eV/Å)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bond_scan"))
    parser.add_argument("--torchscript", nargs="*", default=[])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["nh3-legato", "nh3-allegro"],
        help="our models: bundled names or NAME=PATH of model files",
    )
    parser.add_argument("--bonds", type=int, default=3, help="bonds scanned per frame")
    args = parser.parse_args()
    torch.set_num_threads(1)
    calcs = calculators(args.torchscript, args.models)
    frames = {
        "liquid_200": read_ammonia("liquid_200", "-1")[0],
        "solid_120": read_ammonia("solid_120", "-1")[0],
    }
    rows = []
    for name, atoms in frames.items():
        atoms.calc = None
        rows += scans_for(name, atoms, calcs, args.bonds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scans.json").write_text(json.dumps(rows, indent=1))
    table = summarize(rows)
    (args.out / "summary.md").write_text(table + "\n")
    plot(rows, args.out / "bond_scan.png")
    print(table)


if __name__ == "__main__":
    main()
