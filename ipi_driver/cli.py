"""``legato-ipi-driver``: serve an Allegro-Legato model to i-PI over a socket.

Also defines ``add_parsers`` for the ``legato ipi-input`` subcommand (writes i-PI inputs),
reachable as ``python -m ipi_driver ipi-input ...`` too.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="legato-ipi-driver",
        description="Serve an Allegro-Legato model to i-PI (unix or inet socket).",
    )
    parser.add_argument(
        "--model",
        nargs="+",
        help="model file or bundled name (e.g. nh3-legato); several: a committee, whose "
        "mean i-PI receives and whose members go in the extras for i-PI's <ffcommittee> "
        "(with <parse_json>true</parse_json>; legato ipi-input --committee writes it)",
    )
    parser.add_argument("--template", help="the structure i-PI starts from (ASE-readable)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--unix", metavar="NAME", help="i-PI <address> of a unix socket")
    where.add_argument("--host", help="host of an inet socket (with --port)")
    parser.add_argument("--port", type=int, help="port of an inet socket")
    parser.add_argument(
        "--sockets-prefix", default="/tmp/ipi_", help="i-PI's sockets_prefix (default /tmp/ipi_)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice); use 1 when the cores are shared "
        "with i-PI or other jobs: oversubscribed threads can be 10x slower",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="run the network through torch.compile: faster steps after a one-off compile "
        "that the first request pays (allow for it in i-PI's <timeout>, if one is set)",
    )
    parser.add_argument(
        "--wait-s", type=float, default=60.0, help="seconds to wait for i-PI to open the socket"
    )
    parser.add_argument("--quiet", action="store_true", help="no log on stderr")
    parser.add_argument(
        "--pes-path",
        action="store_true",
        help="print the path of the module for i-pi-py_driver -P / <ffdirect>",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.pes_path:
        print(Path(__file__).with_name("legato_ipi_pes.py"))
        return 0
    # SIGTERM (e.g. from `timeout`) unwinds like an error so the socket is closed cleanly
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return _drive(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - any failure must end in a non-zero exit
        print(f"legato-ipi-driver: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


def _drive(args: argparse.Namespace) -> int:
    from .protocol import Address

    if not args.model or not args.template:
        raise ValueError("--model and --template are required (the structure i-PI starts from)")
    if args.unix:
        address = Address.unix(args.unix, prefix=args.sockets_prefix)
    else:
        address = Address(host=args.host, port=args.port)
    from legato_ase import LegatoCalculator
    from legato_ase.datasets import read_frames
    from legato_ase.memory import reuse_freed_memory

    from .client import print_log, run_driver

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    template = read_frames(args.template, -1)[-1]
    models = args.model[0] if len(args.model) == 1 else args.model
    reuse_freed_memory()
    calculator = LegatoCalculator(models, device=args.device, compile=args.compile)
    log = None if args.quiet else print_log
    state = run_driver(calculator, template, address, wait_s=args.wait_s, log=log)
    if log:
        log(f"served {state.n_requests} requests, {state.n_structures} structures")
    return 0


def add_parsers(sub) -> None:
    """``ipi-input``: write an i-PI input (XML + start structure) for a simulation kind."""
    from .inputs import KINDS

    p = sub.add_parser("ipi-input", help="write i-PI inputs (nvt, pimd, trpmd, npt)")
    p.add_argument("structure", help="ASE-readable start structure, or nh3-solid / nh3-liquid")
    p.add_argument("directory", help="where to write input.xml and init.extxyz")
    p.add_argument("--kind", choices=sorted(KINDS), default="pimd")
    p.add_argument("--temperature-K", type=float, default=150.0)
    p.add_argument("--beads", type=int, default=None, help="ring-polymer beads")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--timestep-fs", type=float, default=0.5)
    p.add_argument("--unix", default="legato", help="socket name (i-PI <address>)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--pressure-GPa", type=float, default=0.0)
    p.add_argument(
        "--committee",
        action="store_true",
        help="i-PI's <ffcommittee> around the socket, for legato-ipi-driver --model A B C ...",
    )
    p.set_defaults(func=_write_input)


def _write_input(args: argparse.Namespace) -> int:
    from .inputs import SimulationSettings, load_structure, write_simulation

    settings = SimulationSettings(
        kind=args.kind,
        temperature_K=args.temperature_K,
        n_beads=args.beads,
        total_steps=args.steps,
        timestep_fs=args.timestep_fs,
        address=args.unix,
        batch_size=args.batch_size,
        pressure_GPa=args.pressure_GPa,
        forcefield="committee" if args.committee else "socket",
    )
    path = write_simulation(load_structure(args.structure), settings, args.directory)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
