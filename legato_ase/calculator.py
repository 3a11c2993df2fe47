"""LegatoCalculator: a thin ASE adapter that computes everything in one model call."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from .committee import check_deviation, check_guard_settings, combine_members
from .data import atoms_to_graph, batch_graphs
from .io import load_potential
from .parallel import (
    ParallelEvaluator,
    get_comm,
    install_abort_hook,
    select_device,
    warn_if_ase_world_differs,
)
from .parallel.device import check_device


class LegatoCalculator(Calculator):
    """ASE calculator for Allegro(-Legato) potentials, single models and committees.

    Args:
        model: a model file path, a bundled model name (``"nh3-legato"``), or a model
            object; or a list of these: a committee (same species and r_max), evaluated on
            one neighbour list, whose mean is the result and whose spread is the model
            deviation (see below).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; with ``parallel=True`` also
            ``"auto"``: one GPU per rank chosen from the node-local rank, else the CPU.
        allow_torchscript: also accept nequip-0.5 deployed TorchScript files (these run code).
        dtype: run the network in ``"float32"`` or ``"float64"`` instead of the model's own
            precision (results are float64 either way).
        parallel: split every evaluation over MPI ranks by spatial domains. Launch the ASE
            script with ``mpirun -n P python script.py``; every rank runs the same dynamics
            and ASE writes output on rank 0 only (see docs/parallel.md). On more than one
            rank, an uncaught error on any rank prints its traceback with the rank number
            and ends all ranks (MPI_Abort) instead of leaving the others waiting.
        comm: with ``parallel``: None (MPI world under mpirun), ``"serial"``, ``"mpi"`` or
            an mpi4py communicator.
        grid: with ``parallel``: domains along the three cell axes (product = ranks);
            chosen for the thickest domains when None.
        max_edges: bound on memory. A structure with more than about this many edges
            (atoms × the model's avg_num_neighbors) is evaluated as spatial domains one
            after the other, each with its halo of ghost atoms, so that at most about this
            many edges are held at once (≈ 20 kB per edge in float32, about twice in float64).
            Results are the same to round-off. None: never split.
        compile: run the network through ``torch.compile`` (Inductor; see
            docs/speed.md): 1.4–2.2x faster on CPU (measured) after a one-off compile of
            a minute or more (cached on disk for later runs), same results to round-off, no
            recompilation as atom counts change. Falls back to eager with a warning where
            compiling is unavailable. For legato-ase models, not TorchScript files. Also
            makes glibc keep freed memory for the next call
            (:func:`legato_ase.memory.reuse_freed_memory`; process-wide).
        max_force_deviation: committees only: a threshold in eV/Å. A calculation whose
            largest per-atom force deviation exceeds it raises
            :class:`legato_ase.UncertaintyError` (naming the step, the atom and its
            deviation), which stops an ASE MD run or optimisation. None: no guard.
        on_deviation: ``"raise"`` (default) or ``"warn"`` (an ``UncertaintyWarning``
            instead, and the run goes on).

    Energies, per-atom energies, forces and (for 3-D periodic cells) the stress come from
    one model evaluation, in float64 whatever the model's dtype. Stress is Voigt
    (xx, yy, zz, yz, xz, xy) in eV/Å³ with ASE's sign. A committee of K models returns the
    mean of these plus ``force_deviation`` [N] (eV/Å, per atom: sqrt of the mean over
    members of |F_k,i − ⟨F_i⟩|², DeePMD-kit's definition), ``max_force_deviation`` (eV/Å),
    ``energy_deviation`` (eV/atom: std of the members' energies / N) and
    ``energies_deviation`` [N] (eV: std of each atom's energy), in ``calc.results``.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        model: Any,
        device: str = "cpu",
        allow_torchscript: bool = False,
        dtype: str | torch.dtype | None = None,
        parallel: bool = False,
        comm: Any = None,
        grid: Sequence[int] | None = None,
        max_edges: int | None = 100_000,
        max_force_deviation: float | None = None,
        on_deviation: str = "raise",
        compile: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if parallel:
            comm = get_comm(comm)
            install_abort_hook(comm)  # an uncaught error on one rank must not hang the others
            device = select_device(device, comm.local_rank)
        elif comm is not None or grid is not None:
            raise ValueError("comm and grid apply to parallel runs: pass parallel=True as well")
        self.comm = comm if parallel else None
        self.device = check_device(device)
        self.members = _load_members(model, str(self.device), allow_torchscript, dtype)
        check_guard_settings(max_force_deviation, on_deviation, len(self.members))
        self.max_force_deviation, self.on_deviation = max_force_deviation, on_deviation
        self.model = self.members[0]
        if compile:
            from .memory import reuse_freed_memory
            from .model.compiled import compile_model

            reuse_freed_memory()
            for member in {id(m): m for m in self.members}.values():
                compile_model(member)
        self.species = list(self.model.species)
        self.r_max = float(self.model.r_max)
        self.n_evaluations = self.n_calculations = 0
        self.evaluator, self._parallel = None, parallel
        chunk_atoms = _chunk_atoms(self.model, max_edges)
        if parallel or chunk_atoms is not None:
            self.evaluator = ParallelEvaluator(
                self.members, comm if parallel else "serial", grid, chunk_atoms=chunk_atoms
            )
            if parallel:
                warn_if_ase_world_differs(comm)

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        (self.results,) = self.calculate_batch([self.atoms])

    def calculate_batch(self, structures: Sequence[Atoms]) -> list[dict[str, Any]]:
        """Evaluate several structures in one model call (e.g. the beads of a ring polymer).

        Returns one dictionary per structure with energy, free_energy, energies, forces
        and, for 3-D periodic cells, stress, as float64 numpy values (for a committee: the
        means, and the deviations described in the class docstring).
        """
        step = self.n_calculations
        self.n_calculations += 1
        if self.evaluator is not None and (
            self._parallel or any(self.evaluator.sub_domains(len(a)) > 1 for a in structures)
        ):
            results = self.evaluator(structures)
        else:
            results = self._evaluate(structures)
        self.n_evaluations += 1
        for index, res in enumerate(results):
            check_deviation(res, self.max_force_deviation, self.on_deviation, step, index)
        return results

    def _evaluate(self, structures: Sequence[Atoms]) -> list[dict[str, Any]]:
        graphs = [atoms_to_graph(a, self.species, self.r_max) for a in structures]
        graph = batch_graphs(graphs) if len(graphs) > 1 else graphs[0]
        periodic = [bool(a.pbc.all()) for a in structures]
        stacked = evaluate_members(self.members, graph.to(self.device), any(periodic))
        results, start = [], 0
        for n, atoms in enumerate(structures):
            stop = start + len(atoms)
            results.append(
                combine_members(
                    energy=stacked["energy"][:, n],
                    energies=stacked["energies"][:, start:stop],
                    forces=stacked["forces"][:, start:stop],
                    virial=stacked["virial"][:, n] if periodic[n] else None,
                    volume=atoms.get_volume() if periodic[n] else None,
                )
            )
            start = stop
        return results


def evaluate_members(members: Sequence[Any], graph: Any, virial: bool) -> dict[str, np.ndarray]:
    """Every member's energy [K, B], energies [K, N], forces [K, N, 3] and virial
    [K, B, 3, 3] (when asked for) on one graph, as float64 numpy arrays."""
    keys = ("energy", "energies", "forces") + (("virial",) if virial else ())
    outs = [model.evaluate(graph, forces=True, virial=virial) for model in members]
    return {k: np.stack([out[k].detach().cpu().numpy() for out in outs]) for k in keys}


def _load_members(model: Any, device: str, allow_torchscript: bool, dtype: Any) -> list[Any]:
    """The committee's models (one for a single model), checked to share species and r_max."""
    given = list(model) if isinstance(model, (list, tuple)) else [model]
    if not given:
        raise ValueError("model is an empty list: give a model, or several for a committee")
    members = [load_potential(m, device, allow_torchscript, dtype) for m in given]
    first = members[0]
    for n, member in enumerate(members[1:], start=1):
        if list(member.species) != list(first.species) or member.r_max != first.r_max:
            raise ValueError(
                f"committee members must share species and r_max: member 0 has species "
                f"{list(first.species)}, r_max {first.r_max} Å; member {n} ({_name(given[n])}) "
                f"has {list(member.species)}, r_max {member.r_max} Å. Train the members on "
                "the same data with the same model settings (different seeds)."
            )
    return members


def _name(model: Any) -> str:
    return str(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__


def _chunk_atoms(model: Any, max_edges: int | None) -> int | None:
    config = getattr(model, "config", None)  # TorchScript models have none
    if max_edges is None or config is None:
        return None
    return max(1, int(max_edges / config.avg_num_neighbors))


class ParallelLegatoCalculator(LegatoCalculator):
    """``LegatoCalculator(model, parallel=True, ...)`` under its own name.

    Launch the ASE script with ``mpirun -n P python script.py``; see LegatoCalculator for
    the arguments (``comm``, ``grid``, ``device="auto"``).
    """

    def __init__(self, model: Any, **kwargs) -> None:
        super().__init__(model, parallel=True, **kwargs)
