"""Subcommand `legato lammps`: a LAMMPS protocol with the model as the force field.

Launch it under MPI for a domain-parallel run: ``mpirun -n 4 legato lammps cell.xyz in.nvt``.
"""

from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("lammps", help="run a LAMMPS protocol with the model as force field (MPI)")
    p.add_argument(
        "structure", help="structure file (ASE formats) or LAMMPS data file (.data/.lmp)"
    )
    p.add_argument(
        "protocol", help="file of LAMMPS commands run after the setup (e.g. fix nvt, run)"
    )
    p.add_argument("--model", default="nh3-legato", help="model file or bundled name")
    p.add_argument(
        "--halo",
        choices=["single", "double"],
        default="single",
        help="r_max halo with reverse force exchange, or 2*r_max halo without",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda (one GPU per rank) or auto")
    p.add_argument("--log", default="lammps.log", help="LAMMPS log file ('none' for no log)")
    p.add_argument("--output", help="write the final structure here (rank 0; small systems)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="run the network through torch.compile on every rank: faster steps after a "
        "one-off compile (docs/speed.md)",
    )
    p.set_defaults(func=_lammps)


def _lammps(args) -> int:
    from pathlib import Path

    from ..memory import reuse_freed_memory
    from .comm import get_comm, install_abort_hook
    from .lammps import run_lammps

    if not Path(args.protocol).is_file():
        raise FileNotFoundError(
            f"protocol file {args.protocol} not found (a file of LAMMPS commands)"
        )
    comm = get_comm()
    install_abort_hook(comm)
    reuse_freed_memory()
    result = run_lammps(
        args.structure,
        _compiled(args.model) if args.compile else args.model,
        args.protocol,
        comm=comm,
        halo=args.halo,
        device=args.device,
        log_file=None if args.log == "none" else args.log,
        gather=bool(args.output),
    )
    if comm.rank == 0:
        if args.output:
            _write_final(result, args.output)
        split = ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items())
        print(
            f"{result.n_callbacks} force calls on {comm.size} rank(s); final energy "
            f"{result.energy:.6f} eV, T {result.thermo['temp']:.1f} K; rank 0 time: {split}"
        )
    return 0


def _write_final(result, path: str) -> None:
    from ase import Atoms
    from ase.io import write

    atoms = Atoms(result.symbols, positions=result.positions, cell=result.cell, pbc=result.pbc)
    write(path, atoms, parallel=False)  # called on rank 0 only


def _compiled(model: str):
    from ..io import load_potential
    from ..model.compiled import compile_model

    return compile_model(load_potential(model))  # run_lammps moves it to the rank's device
