"""Speed and memory of LegatoCalculator vs the paper's deployed TorchScript model.

Milliseconds per energy+forces+stress call (neighbour list included) for 128-, 432- and
3456-atom crystalline ammonia at the legato-paper preset, float32 and float64, and the
paper's deployed Allegro-Legato model (same hyperparameters) on the 432-atom cell,
measured in alternation in the same process. Peak memory from fresh processes.

    python benchmarks/bench_calculator.py [--threads N] [--no-large] [--reference PATH]

With ``--compiled`` the 432-atom comparison also runs ``LegatoCalculator(compile=True)``
(float32 and float64; the 128-atom cell is left out); ``--no-memory`` skips the peak-memory
processes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _timing import interleaved, peak_rss_mib, print_table

import legato_ase
from legato_ase.structures import ammonia_crystal

REFERENCE = (
    Path(__file__).resolve().parents[2] / "shared/reference_models/allegro_legato_nh3_rho0.005.pth"
)


def _call(calc, atoms, stress=True):
    def run():
        calc.reset()
        atoms.calc = calc
        if stress:
            atoms.get_stress()
        atoms.get_potential_energy(), atoms.get_forces()

    return run


def _deployed_forces_only(path, atoms):
    """The deployed model as it runs natively: energy and forces, no stress."""
    from legato_ase.data import atoms_to_graph

    calc = legato_ase.LegatoCalculator(path, allow_torchscript=True)

    def run():
        graph = atoms_to_graph(atoms, calc.species, calc.r_max)
        calc.model.evaluate(graph, virial=False)

    return run


def _memory(size: int, dtype: str, reference: Path | None, stress: bool = True) -> float:
    model = (
        f"'{reference}', allow_torchscript=True"
        if reference
        else (f"legato_ase.build_model('legato-paper', dtype=torch.{dtype})")
    )
    code = (
        f"import torch, legato_ase; torch.set_num_threads(1)\n"
        f"from legato_ase.structures import ammonia_crystal\n"
        f"a = ammonia_crystal({size}); a.calc = legato_ase.LegatoCalculator({model})\n"
        + (
            "a.get_stress()\n"
            if stress
            else "from legato_ase.data import atoms_to_graph\n"
            "a.calc.model.evaluate(atoms_to_graph(a, a.calc.species, a.calc.r_max), virial=False)\n"
        )
    )
    return peak_rss_mib(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-large", action="store_true", help="skip the 3456-atom cell")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory processes")
    parser.add_argument(
        "--compiled", action="store_true", help="add LegatoCalculator(compile=True), 432 atoms"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = ([2] if not args.compiled else []) + [3] + ([] if args.no_large else [6])
    models = {
        d: legato_ase.build_model("legato-paper", dtype=getattr(torch, d))
        for d in ("float32", "float64")
    }
    rows = []
    for size in sizes:
        atoms = ammonia_crystal(size)
        fns = {d: _call(legato_ase.LegatoCalculator(m), atoms.copy()) for d, m in models.items()}
        if size == 3 and args.reference.exists():
            fns["paper deployed, e+f only"] = _deployed_forces_only(args.reference, atoms.copy())
            fns["paper deployed, e+f+s"] = _call(
                legato_ase.LegatoCalculator(args.reference, allow_torchscript=True), atoms.copy()
            )
        if size == 3 and args.compiled:
            for d in ("float32", "float64"):
                model = legato_ase.build_model("legato-paper", dtype=getattr(torch, d))
                calc = legato_ase.LegatoCalculator(model, compile=True)
                fns[f"{d} compiled"] = _call(calc, atoms.copy())
        times = interleaved(fns, repeats=args.repeats if size < 6 else 1)
        for name, t in times.items():
            dtype = name.split()[0] if name.startswith("float") else "float32"
            ref = args.reference if "paper" in name else None
            compiled = name.endswith("compiled")
            skip = compiled or args.no_memory
            mem = "-" if skip else _memory(size, dtype, ref, stress="e+f only" not in name)
            rows.append([len(atoms), name, 1e3 * t, mem])
        for name in [n for n in times if n.startswith("paper")]:
            for ours in [n for n in times if n.startswith("float32")]:
                ratio = times[name] / times[ours]
                print(f"432 atoms: legato-ase {ours} (e+f+s) is {ratio:.2f}x faster than {name}")
    print(f"\nenergy+forces+stress per call, legato-paper preset, {args.threads} thread(s)")
    print_table(["atoms", "model", "ms/call", "peak MiB"], rows)


if __name__ == "__main__":
    main()
