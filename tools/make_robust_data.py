"""Off-equilibrium ammonia frames labelled with GFN1-xTB: stretched and compressed N–H bonds,
molecules pushed together, rattled (hot / path-integral-bead-like) geometries.

The bundled MD frames never stretch an N–H bond beyond ~1.13 Å, so models trained on them alone
invent a dissociation channel beyond 1.3 Å (benchmarks/results/bond_scan). These frames fill
that hole. Frame k is a deterministic function of (seed, k), and every labelled frame is appended
and flushed at once, so an interrupted run resumes where it stopped:

    python tools/make_robust_data.py -n 720 -o data/robust_gfn1.extxyz

Labels use the data set's settings: tblite ``TBLite(method="GFN1-xTB", verbosity=0)``, all other
settings at their defaults; energy (eV), forces (eV/Å), stress (eV/Å³, ASE sign).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from legato_ase.datasets import read_ammonia
from legato_ase.stability.scan import molecules

MODES = ("stretch", "contact", "rattle")
WEIGHTS = (0.5, 0.2, 0.3)


def _unit(atoms, i, j):
    v = atoms.get_distance(i, j, mic=True, vector=True)
    return v / np.linalg.norm(v), float(np.linalg.norm(v))


def stretch(atoms, mols, rng) -> str:
    picks = rng.choice(len(mols), size=int(rng.integers(1, 5)), replace=False)
    done = []
    for m in picks:
        n, h = mols[m][0], mols[m][1 + int(rng.integers(3))]
        u, d0 = _unit(atoms, n, h)
        d = rng.uniform(1.05, 2.3) if rng.random() < 0.85 else rng.uniform(0.82, 0.95)
        atoms.positions[h] += (d - d0) * u
        done.append(f"{h}:{d:.3f}")
    return "stretch " + " ".join(done)


def contact(atoms, mols, rng) -> str:
    firsts = [m[0] for m in mols]
    dist = atoms.get_all_distances(mic=True)[np.ix_(firsts, firsts)]
    np.fill_diagonal(dist, np.inf)
    a = int(rng.integers(len(mols)))
    b = int(np.argsort(dist[a])[int(rng.integers(3))])
    u, d0 = _unit(atoms, mols[a][0], mols[b][0])
    d = rng.uniform(2.2, 3.0)
    atoms.positions[mols[b]] += (d - d0) * u
    return f"contact {a}-{b}:{d:.3f}"


def rattle(atoms, mols, rng) -> str:
    sigma = rng.uniform(0.03, 0.08)
    scale = np.where(np.array(atoms.get_chemical_symbols()) == "H", 1.0, 0.5)[:, None]
    atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape) * scale
    return f"rattle {sigma:.3f}"


def make_frame(sources, seed: int, k: int):
    rng = np.random.default_rng([seed, k])
    source = int(rng.integers(len(sources)))
    atoms = sources[source].copy()
    mols = molecules(atoms)
    mode = MODES[int(rng.choice(len(MODES), p=WEIGHTS))]
    how = {"stretch": stretch, "contact": contact, "rattle": rattle}[mode](atoms, mols, rng)
    atoms.info = {"config": f"robust_{mode}", "perturbation": how, "source_frame": source}
    return atoms


def label(atoms):
    from tblite.ase import TBLite

    atoms.calc = TBLite(method="GFN1-xTB", verbosity=0)
    results = {
        "energy": atoms.get_potential_energy(),
        "forces": atoms.get_forces(),
        "stress": atoms.get_stress(),
    }
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info["reference"] = "GFN1-xTB (tblite)"
    return atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=720, help="frames wanted in the output")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    sources = read_ammonia()
    for a in sources:
        a.calc = None
    written = ase.io.read(args.output, ":") if args.output.exists() else []
    start = max((a.info["robust_index"] + 1 for a in written), default=0)
    t0 = time.time()
    for k in range(start, args.n):
        atoms = make_frame(sources, args.seed, k)
        atoms.info["robust_index"] = k
        try:
            atoms = label(atoms)
        except Exception as err:  # an SCF failure skips the frame, never writes it
            print(f"frame {k}: GFN1-xTB failed ({err}); skipped", file=sys.stderr)
            continue
        text = io.StringIO()
        ase.io.write(text, atoms, format="extxyz")
        with open(args.output, "a") as handle:  # one write per frame: a kill leaves whole frames
            handle.write(text.getvalue())
            handle.flush()
        print(f"{k + 1}/{args.n} {atoms.info['perturbation'][:40]} {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
