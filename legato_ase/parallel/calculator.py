"""ASE mode: every rank runs the same ASE script; each evaluates its own spatial domain.

``LegatoCalculator(model, parallel=True)`` drives the :class:`ParallelEvaluator` here.

Results (energy, per-atom energies, forces incl. ghost contributions, virial) are summed
over ranks in one collective, so every rank holds the same numbers and the replicated
dynamics stay in lock step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms

from ..committee import combine_members
from ..data import species_indices
from .comm import MPIComm, SerialComm, get_comm
from .domains import choose_grid, decompose, make_frame
from .evaluate import evaluate_local, local_charges
from .longrange import (
    LongRangeShare,
    NearPairs,
    domain_pairs,
    long_range_share,
    needs_pairs,
    scatter_pairs,
)


class ParallelError(RuntimeError):
    """Raised on every rank when the evaluation failed on one or more ranks."""


_SHARED_ERRORS = {"ValueError": ValueError, "TypeError": TypeError}


def _raise_if_any_failed(comm, error: BaseException | None) -> None:
    """Collective: when any rank failed, every rank raises the first failure's message.

    Input errors (ValueError, TypeError) keep their type so callers can catch them.
    """
    if comm.max_to_all(error is not None) == 0:
        return
    mine = None if error is None else (type(error).__name__, str(error))
    reports = [(r, m) for r, m in enumerate(comm.allgather(mine)) if m]
    kind, message = reports[0][1]
    ranks = ", ".join(str(r) for r, _ in reports)
    text = f"{message} [raised on rank(s) {ranks} of {comm.size}]"
    raise _SHARED_ERRORS.get(kind, ParallelError)(text) from error


class ParallelEvaluator:
    """Evaluates structures with one spatial domain per rank.

    Args:
        model: a LegatoPotential.
        comm: see :func:`legato_ase.parallel.get_comm`.
        grid: domains along the three cell axes (product = number of ranks); chosen
            per structure for the thickest domains when None.

    ``model`` may be a list of models (a committee sharing species and r_max): each member
    is evaluated on the same domains, and the result holds the committee mean and the
    deviations of :func:`legato_ase.committee.combine_members`.

    Calling it with a list of ASE Atoms returns one result dictionary per structure
    (energy, free_energy, energies, forces, stress for 3-D periodic cells), like
    :meth:`LegatoCalculator.calculate_batch`. ``seconds`` holds the last call's time split
    and ``last_n_owned``/``last_n_ghost`` this rank's atoms in the last structure.
    """

    def __init__(
        self,
        model,
        comm: Any = None,
        grid: Sequence[int] | None = None,
        chunk_atoms: int | None = None,
    ) -> None:
        if chunk_atoms is not None and chunk_atoms < 1:
            raise ValueError(f"chunk_atoms must be a positive number of atoms, got {chunk_atoms}")
        self.chunk_atoms = chunk_atoms
        self.members = list(model) if isinstance(model, (list, tuple)) else [model]
        self.model = self.members[0]
        self.comm: SerialComm | MPIComm = get_comm(comm)
        if grid is not None and int(np.prod(grid)) != self.comm.size:
            raise ValueError(
                f"grid {tuple(grid)} has {int(np.prod(grid))} domains but there are "
                f"{self.comm.size} ranks; give a grid whose product is the number of ranks."
            )
        self.grid = None if grid is None else tuple(int(g) for g in grid)
        self.species = list(self.model.species)
        self.seconds: dict[str, float] = {}
        self.last_n_owned = self.last_n_ghost = 0

    def sub_domains(self, n_atoms: int) -> int:
        """Domains each rank evaluates one after the other (memory bound by chunk_atoms)."""
        if self.grid is not None or self.chunk_atoms is None:
            return 1
        return max(1, -(-n_atoms // (self.comm.size * self.chunk_atoms)))

    def local_share(self, atoms: Atoms) -> tuple[np.ndarray, dict]:
        """This rank's contribution K × [1 + 9 + N + 3N] = energy, virial, energies, forces
        of each of the K members (K = 1 for a single model)."""
        positions = np.asarray(atoms.positions, dtype=np.float64)
        start = time.perf_counter()
        frame = make_frame(positions, atoms.cell.array, atoms.pbc)
        n_sub = self.sub_domains(len(atoms))
        grid = self.grid or choose_grid(self.comm.size * n_sub, frame.spacings)
        symbols = np.array(atoms.get_chemical_symbols(), dtype=object)
        domains = []
        for sub in range(n_sub):
            domain = decompose(
                frame, positions, self.model.r_max, grid, self.comm.rank * n_sub + sub
            )
            domains.append((domain, species_indices(list(symbols[domain.indices]), self.species)))
        seconds = {"halo": time.perf_counter() - start, "neighbors": 0.0, "inference": 0.0}
        shares = [self._member_share(m, atoms, domains, seconds) for m in self.members]
        return np.concatenate(shares), seconds

    def _member_share(self, model, atoms: Atoms, domains: list, seconds: dict) -> np.ndarray:
        """One model's [1 + 9 + N + 3N] over this rank's domains; adds to ``seconds``."""
        n = len(atoms)
        energy, virial = 0.0, np.zeros((3, 3))
        energies, forces = np.zeros(n), np.zeros((n, 3))
        adjoints = [None] * len(domains)
        if getattr(model, "long_range", None) is not None:
            start = time.perf_counter()
            share, adjoints, near_forces = self._long_range(model, atoms, domains)
            owned = np.concatenate([d.owned for d, _ in domains])
            energies[owned] += share.energies
            forces[owned] += share.forces
            forces += near_forces
            energy, virial = float(share.energies.sum()), virial + share.virial
            seconds["long_range"] = seconds.get("long_range", 0.0) + time.perf_counter() - start
        for (domain, species), adjoint in zip(domains, adjoints):
            self.last_n_owned, self.last_n_ghost = len(domain.owned), len(domain.ghosts)
            res = evaluate_local(
                model, domain.positions, species, len(domain.owned), charge_adjoint=adjoint
            )
            energy += res.energy
            virial += res.virial
            energies[domain.owned] += res.energies
            np.add.at(forces, domain.indices, res.forces)
            for key, value in res.seconds.items():
                seconds[key] = seconds.get(key, 0.0) + value
        return np.concatenate([[energy], virial.ravel(), energies, forces.ravel()])

    def _long_range(self, model, atoms: Atoms, domains: list) -> tuple[LongRangeShare, list, Any]:
        """Pass 1 of a long-range model: charges of the owned atoms, then the layer.

        Returns this rank's long-range share, per domain dE/dq of its owned atoms (pass 2
        turns them into forces through the local environments), and the forces [N, 3] of
        the near pairs of a range-separated layer (zero otherwise).
        """
        charges = [
            local_charges(model, d.positions, species, len(d.owned)) for d, species in domains
        ]
        positions = np.concatenate([d.positions[: len(d.owned)] for d, _ in domains])
        owned = np.concatenate([d.owned for d, _ in domains])
        near_forces, pairs, ends = np.zeros((len(atoms), 3)), None, None
        if needs_pairs(model, atoms.pbc):
            everyone = np.zeros((len(atoms), charges[0].shape[1]))
            everyone[owned] = np.concatenate(charges)
            pairs, ends = _near_pairs(domains, model.r_max, self.comm.sum_to_all(everyone))
        share = long_range_share(
            model, positions, np.concatenate(charges), atoms.cell.array, atoms.pbc, self.comm, pairs
        )
        adjoint = share.adjoint
        if pairs is not None:
            near_forces, near_adjoint = scatter_pairs(share, *ends, len(atoms))
            adjoint = adjoint + self.comm.sum_to_all(near_adjoint)[owned]
        bounds = np.cumsum([0] + [len(d.owned) for d, _ in domains])
        return share, [adjoint[a:b] for a, b in zip(bounds[:-1], bounds[1:])], near_forces

    def __call__(self, structures: Sequence[Atoms]) -> list[dict[str, Any]]:
        shares, seconds, error = [], {"halo": 0.0, "neighbors": 0.0, "inference": 0.0}, None
        try:
            for atoms in structures:
                share, spent = self.local_share(atoms)
                shares.append(share)
                for key in spent:
                    seconds[key] = seconds.get(key, 0.0) + spent[key]
        except Exception as err:  # reported collectively below, so no rank hangs
            error = err
        _raise_if_any_failed(self.comm, error)
        start = time.perf_counter()
        total = self.comm.sum_to_all(np.concatenate(shares))
        seconds["reverse"] = time.perf_counter() - start
        self.seconds = seconds
        return _unpack(total, structures, len(self.members))


def _near_pairs(domains: list, r_max: float, charges: np.ndarray):
    """The near pairs of this rank's domains and their ends (structure indices i, j).

    ``charges`` [N, C] holds every atom's latent charge (gathered from the owners).
    """
    centre, vectors, ends, offset = [], [], [], 0
    for domain, _ in domains:
        i, j, vec = domain_pairs(domain.positions, len(domain.owned), r_max)
        centre.append(offset + i)
        vectors.append(vec)
        ends.append((domain.indices[i], domain.indices[j]))
        offset += len(domain.owned)
    i_all = np.concatenate([e[0] for e in ends])
    j_all = np.concatenate([e[1] for e in ends])
    pairs = NearPairs(
        centre=np.concatenate(centre), vectors=np.concatenate(vectors), charges=charges[j_all]
    )
    return pairs, (i_all, j_all)


def _unpack(
    total: np.ndarray, structures: Sequence[Atoms], n_members: int = 1
) -> list[dict[str, Any]]:
    results, start = [], 0
    for atoms in structures:
        n = len(atoms)
        block = total[start : start + n_members * (10 + 4 * n)].reshape(n_members, 10 + 4 * n)
        periodic = bool(atoms.pbc.all())
        results.append(
            combine_members(
                energy=block[:, 0],
                energies=block[:, 10 : 10 + n],
                forces=block[:, 10 + n :].reshape(n_members, n, 3),
                virial=block[:, 1:10].reshape(n_members, 3, 3) if periodic else None,
                volume=atoms.get_volume() if periodic else None,
            )
        )
        start += n_members * (10 + 4 * n)
    return results


def warn_if_ase_world_differs(comm) -> None:
    """Warn when ASE writes output on every rank because it does not see our MPI world."""
    from ase.parallel import world

    if comm.size > 1 and world.size != comm.size:
        import warnings

        warnings.warn(
            f"ASE sees {world.size} rank(s) but the calculator runs on {comm.size}: every "
            "rank will write ASE output. Import mpi4py before ASE first uses its world.",
            stacklevel=3,
        )
