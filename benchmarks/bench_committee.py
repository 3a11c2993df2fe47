"""A committee's members one after the other (the default) or in one batched pass.

Milliseconds per committee evaluation (energy and dE/dr_ij of K = 4 members on one shared
graph, from which forces and virials follow) of ammonia crystals at the ``default`` and
``legato-paper`` presets, float32:

- ``loop``: ``legato_ase.calculator.evaluate_members``, what LegatoCalculator runs;
- ``vmap``: the members' weights stacked (``torch.func.stack_module_state``) and the
  network run once under ``torch.func.vmap``, gradients from ``torch.func.vjp``;
- ``loop-c``: the loop with every member compiled (``compile_model``, what
  ``LegatoCalculator([...], compile=True)`` runs);
- ``vmap-c``: the vmapped pass compiled as one graph (``torch.compile``, Inductor, dynamic).

Timed in alternation in one process after one warm-up call each (compile cost excluded and
reported apart); min and median of 5.

    python benchmarks/bench_committee.py [--threads N] [--no-compiled]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch.func import functional_call, stack_module_state, vjp, vmap

import legato_ase
from legato_ase.calculator import evaluate_members
from legato_ase.data import atoms_to_graph
from legato_ase.model.compiled import compile_model
from legato_ase.structures import ammonia_crystal


class VmapCommittee:
    """Energies and dE/dr_ij of every member in one vmapped pass (forces/virial follow).

    The members' weights are stacked once; ``compiled`` runs the pass through
    ``torch.compile`` as one graph.
    """

    def __init__(self, members, compiled: bool = False) -> None:
        self.params, self.buffers = stack_module_state([m.allegro for m in members])
        self.shell = copy.deepcopy(members[0].allegro).to("meta")
        self.dtype = members[0].dtype
        self.batched = torch.compile(self._pass, dynamic=True) if compiled else self._pass

    def _pass(self, params, buffers, vectors, species, edge_index, n_atoms: int):
        def one(p, b):
            def edge_energy(v):
                return functional_call(self.shell, (p, b), (v, species, edge_index, n_atoms))

            energy, pullback = vjp(edge_energy, vectors)
            return energy, pullback(torch.ones_like(energy))[0]

        return vmap(one)(params, buffers)

    def __call__(self, graph):
        centre, neighbour = graph.edge_index
        vectors = graph.positions[neighbour] - graph.positions[centre] + graph.edge_shifts
        args = (vectors.to(self.dtype), graph.species, graph.edge_index, graph.n_atoms)
        with torch.no_grad():
            return self.batched(self.params, self.buffers, *args)


def _runs(members, graph, compiled: bool) -> dict:
    eager_vmap = VmapCommittee(members)
    runs = {
        "loop": lambda: evaluate_members(members, graph, True),
        "vmap": lambda: eager_vmap(graph),
    }
    if compiled:
        copies = [compile_model(copy.deepcopy(m)) for m in members]
        batched = VmapCommittee(members, compiled=True)
        runs["loop-c"] = lambda: evaluate_members(copies, graph, True)
        runs["vmap-c"] = lambda: batched(graph)
    return runs


def time_runs(runs: dict, repeats: int = 5) -> tuple[dict, dict]:
    first, seconds = {}, {name: [] for name in runs}
    for name, fn in runs.items():
        start = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - start
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return seconds, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-compiled", dest="compiled", action="store_false")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = ["loop", "vmap"] + (["loop-c", "vmap-c"] if args.compiled else [])
    print(f"K = 4 members, float32, {args.threads} thread(s); ms per committee evaluation")
    print("min / median of 5; ratios of minima against the eager loop")
    heads = [f"{n} min/med" for n in names] + [f"{n}/loop" for n in names[1:]]
    print(f"{'preset':>13} {'atoms':>6} " + " ".join(f"{h:>17}" for h in heads))
    for preset in ("default", "legato-paper"):
        members = [legato_ase.build_model(preset, seed=s) for s in range(4)]
        for cells in (1, 2):
            atoms = ammonia_crystal(cells)
            graph = atoms_to_graph(atoms, members[0].species, members[0].r_max)
            seconds, first = time_runs(_runs(members, graph, args.compiled))
            lo = {n: 1e3 * min(seconds[n]) for n in names}
            med = {n: 1e3 * statistics.median(seconds[n]) for n in names}
            cells_ = [f"{lo[n]:.1f}/{med[n]:.1f}" for n in names]
            cells_ += [f"{lo[n] / lo['loop']:.2f}" for n in names[1:]]
            print(f"{preset:>13} {len(atoms):>6} " + " ".join(f"{c:>17}" for c in cells_))
            if args.compiled:
                print(
                    f"{'':>20} first calls (s): " + ", ".join(f"{n} {first[n]:.1f}" for n in names)
                )
            torch._dynamo.reset()


if __name__ == "__main__":
    main()
