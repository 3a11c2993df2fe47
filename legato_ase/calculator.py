"""LegatoCalculator: a thin ASE adapter that computes everything in one model call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

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
    """ASE calculator for Allegro(-Legato) potentials.

    Args:
        model: a model file path, a bundled model name (``"nh3-legato"``), or a model object.
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
            docs/speed.md): 1.3–2x faster on CPU (measured) after a one-off compile of
            a minute or more (cached on disk for later runs), same results to round-off, no
            recompilation as atom counts change. Falls back to eager with a warning where
            compiling is unavailable. For legato-ase models, not TorchScript files.

    Energies, per-atom energies, forces and (for 3-D periodic cells) the stress come from
    one model evaluation, in float64 whatever the model's dtype. Stress is Voigt
    (xx, yy, zz, yz, xz, xy) in eV/Å³ with ASE's sign.
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
        self.model = load_potential(model, str(self.device), allow_torchscript, dtype)
        if compile:
            from .model.compiled import compile_model

            compile_model(self.model)
        self.species = list(self.model.species)
        self.r_max = float(self.model.r_max)
        self.n_evaluations = 0
        self.evaluator, self._parallel = None, parallel
        config = getattr(self.model, "config", None)  # TorchScript models have none
        chunk_atoms = None
        if max_edges is not None and config is not None:
            chunk_atoms = max(1, int(max_edges / config.avg_num_neighbors))
        if parallel or chunk_atoms is not None:
            self.evaluator = ParallelEvaluator(
                self.model, comm if parallel else "serial", grid, chunk_atoms=chunk_atoms
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
        and, for 3-D periodic cells, stress, as float64 numpy values.
        """
        if self.evaluator is not None and (
            self._parallel or any(self.evaluator.sub_domains(len(a)) > 1 for a in structures)
        ):
            self.n_evaluations += 1
            return self.evaluator(structures)
        graphs = [atoms_to_graph(a, self.species, self.r_max) for a in structures]
        graph = (
            batch_graphs(graphs).to(self.device) if len(graphs) > 1 else graphs[0].to(self.device)
        )
        periodic = [bool(a.pbc.all()) for a in structures]
        out = self.model.evaluate(graph, forces=True, virial=any(periodic))
        self.n_evaluations += 1
        energy = out["energy"].detach().cpu().numpy()
        energies = out["energies"].detach().cpu().numpy()
        forces = out["forces"].detach().cpu().numpy()
        virial = out["virial"].detach().cpu().numpy() if any(periodic) else None
        results, start = [], 0
        for n, atoms in enumerate(structures):
            stop = start + len(atoms)
            res = {
                "energy": float(energy[n]),
                "free_energy": float(energy[n]),
                "energies": energies[start:stop].copy(),
                "forces": forces[start:stop].copy(),
            }
            if periodic[n]:
                stress = -virial[n] / atoms.get_volume()
                res["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]].copy()
            results.append(res)
            start = stop
        return results


class ParallelLegatoCalculator(LegatoCalculator):
    """``LegatoCalculator(model, parallel=True, ...)`` under its own name.

    Launch the ASE script with ``mpirun -n P python script.py``; see LegatoCalculator for
    the arguments (``comm``, ``grid``, ``device="auto"``).
    """

    def __init__(self, model: Any, **kwargs) -> None:
        super().__init__(model, parallel=True, **kwargs)
