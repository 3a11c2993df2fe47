"""A committee's members: one after the other (the default) or in one batched pass.

Milliseconds per committee evaluation (energy, forces, virial of K = 4 members, one shared
graph) of ammonia crystals at the ``default`` and ``legato-paper`` presets, float32:

- ``loop``: ``legato_ase.calculator.evaluate_members``, what LegatoCalculator runs;
- ``vmap``: the members' weights stacked (``torch.func.stack_module_state``) and the
  network run once under ``torch.func.vmap``, gradients from ``torch.func.vjp``.

vmap needs out-of-place scatter in the network: this script runs it on a copy of the
Allegro module with its one in-place ``index_add_`` made out-of-place (the product's
network is not changed). Timed in alternation in one process; min and median of 5.

    python benchmarks/bench_committee.py [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch.func import functional_call, stack_module_state, vjp, vmap

import legato_ase
import legato_ase.model.allegro as allegro_module
from legato_ase.calculator import evaluate_members
from legato_ase.data import atoms_to_graph
from legato_ase.structures import ammonia_crystal


def _out_of_place_allegro() -> None:
    source = open(allegro_module.__file__).read()
    patched = source.replace(
        "env.index_add_(1, centre, env_edge).mul_(", "env.index_add(1, centre, env_edge).mul("
    )
    assert patched != source, "the in-place scatter moved: update this benchmark"
    exec(compile(patched, allegro_module.__file__, "exec"), allegro_module.__dict__)


def vmap_members(members, graph):
    """Energies and dE/dr_ij of every member in one vmapped pass (forces/virial follow)."""
    params, buffers = stack_module_state([m.allegro for m in members])
    shell = copy.deepcopy(members[0].allegro).to("meta")
    centre, neighbour = graph.edge_index
    vectors = graph.positions[neighbour] - graph.positions[centre] + graph.edge_shifts
    vectors = vectors.to(members[0].dtype)

    def one(p, b):
        def edge_energy(v):
            return functional_call(
                shell, (p, b), (v, graph.species, graph.edge_index, graph.n_atoms)
            )

        energy, pullback = vjp(edge_energy, vectors)
        return energy, pullback(torch.ones_like(energy))[0]

    return vmap(one)(params, buffers)


def time_both(members, graph, repeats=5):
    runs = {
        "loop": lambda: evaluate_members(members, graph, True),
        "vmap": lambda: vmap_members(members, graph),
    }
    seconds = {name: [] for name in runs}
    for fn in runs.values():
        fn()
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    _out_of_place_allegro()
    print(f"K = 4 members, float32, {args.threads} thread(s); ms per committee evaluation")
    heads = ("loop min", "loop med", "vmap min", "vmap med", "vmap/loop")
    print(f"{'preset':>13} {'atoms':>6} " + " ".join(f"{h:>9}" for h in heads))
    for preset in ("default", "legato-paper"):
        members = [legato_ase.build_model(preset, seed=s) for s in range(4)]
        for cells in (1, 2):
            atoms = ammonia_crystal(cells)
            graph = atoms_to_graph(atoms, members[0].species, members[0].r_max)
            s = time_both(members, graph)
            lo, vm = [1e3 * min(s[k]) for k in ("loop", "vmap")]
            lm, vmed = [1e3 * statistics.median(s[k]) for k in ("loop", "vmap")]
            row = (lo, lm, vm, vmed)
            print(f"{preset:>13} {len(atoms):>6} " + " ".join(f"{v:9.1f}" for v in row), end="")
            print(f" {vm / lo:9.2f}")


if __name__ == "__main__":
    main()
