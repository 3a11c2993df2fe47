"""Core subcommands: `legato info`, `legato md` and `legato model-devi`."""

from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("info", help="show a model file's species, r_max, config and metadata")
    p.add_argument("model", help="model file or bundled model name")
    p.set_defaults(func=_info)

    p = sub.add_parser("md", help="Langevin NVT molecular dynamics with a Legato model (ASE)")
    p.add_argument(
        "structure", nargs="?", help="ASE-readable file (default: 432-atom NH3-I crystal)"
    )
    p.add_argument(
        "--model",
        nargs="+",
        default=["nh3-legato"],
        help="model file or bundled model name; several: a committee, whose mean drives the "
        "MD and whose largest force deviation (eV/Å) is logged",
    )
    p.add_argument(
        "--max-force-deviation",
        type=float,
        help="with a committee: stop when an atom's force deviation exceeds this (eV/Å)",
    )
    p.add_argument("--temperature", type=float, default=150.0, help="K (default 150)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--timestep", type=float, default=1.0, help="fs (default 1.0)")
    p.add_argument("--trajectory", default="md.traj", help="output ASE trajectory")
    p.add_argument("--log-interval", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--compile",
        action="store_true",
        help="run the network through torch.compile: faster steps after a one-off compile "
        "(docs/speed.md)",
    )
    p.set_defaults(func=_md)

    p = sub.add_parser(
        "model-devi", help="DeePMD-style model deviation table of a committee on a trajectory"
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="MODELS... TRAJECTORY",
        help="two or more model files or bundled names, then any ASE-readable file",
    )
    p.add_argument("-o", "--output", default="model_devi.out", help="default model_devi.out")
    p.add_argument("--index", default=":", help="frames to read, ASE syntax (default ':')")
    p.add_argument("--frequency", type=int, default=1, help="MD steps between frames")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "float64"])
    p.set_defaults(func=_model_devi)


def _info(args) -> int:
    import json

    from .io import read_model_file

    payload = read_model_file(args.model)
    keys = ("format_version", "species", "r_max", "dtype", "config", "metadata")
    print(json.dumps({k: payload[k] for k in keys}, indent=2))
    return 0


def _md(args) -> int:
    from .calculator import LegatoCalculator
    from .committee import UncertaintyError
    from .datasets import read_frames
    from .md import check_nvt_settings, run_nvt
    from .memory import reuse_freed_memory
    from .structures import ammonia_crystal

    check_nvt_settings(args.temperature, args.steps, args.timestep, loginterval=args.log_interval)
    atoms = read_frames(args.structure, -1)[-1] if args.structure else ammonia_crystal(3)
    models = args.model[0] if len(args.model) == 1 else args.model
    reuse_freed_memory()
    atoms.calc = LegatoCalculator(
        models,
        device=args.device,
        max_force_deviation=args.max_force_deviation,
        compile=args.compile,
    )
    print(
        f"{len(atoms)} atoms ({atoms.get_chemical_formula()}), model {' '.join(args.model)}, "
        f"NVT {args.temperature} K, {args.steps} steps of {args.timestep} fs"
        + (" (compiled: the first step compiles)" if args.compile else "")
    )
    try:
        run_nvt(
            atoms,
            temperature_K=args.temperature,
            steps=args.steps,
            timestep_fs=args.timestep,
            trajectory=args.trajectory,
            loginterval=args.log_interval,
            seed=args.seed,
        )
    except UncertaintyError as err:
        print(f"legato md: stopped: {err}\ntrajectory up to there in {args.trajectory}")
        return 3
    print(f"trajectory written to {args.trajectory}")
    return 0


def _model_devi(args) -> int:
    from pathlib import Path

    from .datasets import read_frames
    from .model_devi import model_devi, write_model_devi

    *models, trajectory = args.files
    if len(models) < 2:
        raise ValueError(
            "give at least two models and a trajectory: legato model-devi a.pt b.pt md.traj"
        )
    if args.frequency < 1:
        raise ValueError(f"--frequency must be ≥ 1, got {args.frequency}")
    if not Path(trajectory).is_file():
        raise FileNotFoundError(f"no trajectory file '{trajectory}'")
    frames = read_frames(trajectory, args.index)
    steps = [n * args.frequency for n in range(len(frames))]
    table = model_devi(models, frames, steps=steps, device=args.device, dtype=args.dtype)
    write_model_devi(args.output, table)
    print(f"{len(frames)} frames, {len(models)} models; table written to {args.output}")
    if len(table):
        worst = int(table[:, 4].argmax())
        print(f"largest force deviation {table[worst, 4]:.4g} eV/Å at step {int(table[worst, 0])}")
    return 0
