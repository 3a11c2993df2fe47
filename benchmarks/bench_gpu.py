"""GPU throughput in one go: eager vs compiled, float32 / TF32 / float64, 1k–100k atoms.

For each precision, path and size: energy+forces+stress of crystalline ammonia at the
legato-paper architecture, atom-steps per second (atoms / wall time of one calculator call,
neighbour list and host transfers included, best and median of the repeats) and the peak GPU
memory of the call. Large structures run as spatial domains in turn (``max_edges``), which
bounds memory; an out-of-memory cell is reported, not fatal. Compiled cells reuse one compile
per precision (symbolic shapes), and its cost is printed.

    python benchmarks/bench_gpu.py                     # on a machine with a GPU
    python benchmarks/bench_gpu.py --device cpu --sizes 1 --repeats 1   # smoke test, CPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import legato_ase
from legato_ase.model.compiled import compile_status
from legato_ase.structures import ammonia_crystal

PRECISIONS = {"float32": (torch.float32, False), "tf32": (torch.float32, True)}
PRECISIONS["float64"] = (torch.float64, False)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return None


def _time_call(calc, atoms, device, repeats: int) -> tuple[float, list[float]]:
    """(first call s, later calls s): energy+forces+stress per call."""
    times = []
    for _ in range(repeats + 1):
        calc.reset()
        _sync(device)
        start = time.perf_counter()
        atoms.get_stress(), atoms.get_forces()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times[0], times[1:]


def run_cell(model, atoms, device, compiled: bool, args) -> dict:
    calc = legato_ase.LegatoCalculator(
        model, device=str(device), compile=compiled, max_edges=args.max_edges
    )
    atoms.calc = calc
    _peak_reset(device)
    try:
        first, times = _time_call(calc, atoms, device, args.repeats)
    except torch.OutOfMemoryError:
        return {"error": "out of memory"}
    n = len(atoms)
    return {
        "atoms": n,
        "first_s": first,
        "min_ms": 1e3 * min(times),
        "median_ms": 1e3 * statistics.median(times),
        "atom_steps_per_s": n / min(times),
        "peak_gib": _peak_gib(device),
        "path": compile_status(calc.model) if compiled else "eager",
    }


def _set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[4, 8, 12, 19],
        help="NH3 supercell repeats n (16 n^3 atoms: 1024 ... 109744)",
    )
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-edges", type=int, default=4_000_000)
    parser.add_argument("--no-compiled", dest="compiled", action="store_false")
    parser.add_argument("--json", help="also write all cells to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run on a GPU machine, or pass --device cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# {name}, torch {torch.__version__}, legato-paper architecture, e+f+s per call")
    print(
        f"{'precision':>9} {'path':>8} {'atoms':>7} {'min ms':>9} {'median ms':>10}"
        f" {'atom-steps/s':>13} {'peak GiB':>9} {'first s':>8}"
    )
    cells = []
    for precision in args.precisions:
        dtype, tf32 = PRECISIONS[precision]
        _set_tf32(tf32)
        for compiled in (False, True) if args.compiled else (False,):
            model = legato_ase.build_model("legato-paper", dtype=dtype, seed=0)
            for size in args.sizes:
                cell = run_cell(model, ammonia_crystal(size), device, compiled, args)
                cell.update(precision=precision, compiled=compiled, size=size)
                cells.append(cell)
                _print(cell)
    _set_tf32(False)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(cells, fh, indent=1)


def _print(c: dict) -> None:
    path = "compiled" if c["compiled"] else "eager"
    if "error" in c:
        print(f"{c['precision']:>9} {path:>8} {16 * c['size'] ** 3:>7} {c['error']}", flush=True)
        return
    peak = "-" if c["peak_gib"] is None else f"{c['peak_gib']:.2f}"
    print(
        f"{c['precision']:>9} {path:>8} {c['atoms']:>7} {c['min_ms']:9.1f} {c['median_ms']:10.1f}"
        f" {c['atom_steps_per_s']:13.3g} {peak:>9} {c['first_s']:8.1f}",
        flush=True,
    )
    if c["compiled"] and c["path"] != "compiled":
        print(f"#   compiled path not in use: {c['path']}", flush=True)


if __name__ == "__main__":
    main()
