"""Core subcommands: `legato info` and `legato md`."""

from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("info", help="show a model file's species, r_max, config and metadata")
    p.add_argument("model", help="model file or bundled model name")
    p.set_defaults(func=_info)

    p = sub.add_parser("md", help="Langevin NVT molecular dynamics with a Legato model (ASE)")
    p.add_argument(
        "structure", nargs="?", help="ASE-readable file (default: 432-atom NH3-I crystal)"
    )
    p.add_argument("--model", default="nh3-legato", help="model file or bundled model name")
    p.add_argument("--temperature", type=float, default=150.0, help="K (default 150)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--timestep", type=float, default=1.0, help="fs (default 1.0)")
    p.add_argument("--trajectory", default="md.traj", help="output ASE trajectory")
    p.add_argument("--log-interval", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_md)


def _info(args) -> int:
    import json

    from .io import read_model_file

    payload = read_model_file(args.model)
    keys = ("format_version", "species", "r_max", "dtype", "config", "metadata")
    print(json.dumps({k: payload[k] for k in keys}, indent=2))
    return 0


def _md(args) -> int:
    from .calculator import LegatoCalculator
    from .datasets import read_frames
    from .md import check_nvt_settings, run_nvt
    from .structures import ammonia_crystal

    check_nvt_settings(args.temperature, args.steps, args.timestep, loginterval=args.log_interval)
    atoms = read_frames(args.structure, -1)[-1] if args.structure else ammonia_crystal(3)
    atoms.calc = LegatoCalculator(args.model, device=args.device)
    print(
        f"{len(atoms)} atoms ({atoms.get_chemical_formula()}), model {args.model}, "
        f"NVT {args.temperature} K, {args.steps} steps of {args.timestep} fs"
    )
    run_nvt(
        atoms,
        temperature_K=args.temperature,
        steps=args.steps,
        timestep_fs=args.timestep,
        trajectory=args.trajectory,
        loginterval=args.log_interval,
        seed=args.seed,
    )
    print(f"trajectory written to {args.trajectory}")
    return 0
