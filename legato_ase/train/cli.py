"""Subcommands `legato train`, `legato test` and `legato sharpness`."""

from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (docs/training.md)")
    p.add_argument("config", help="training YAML file")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir")
    p.add_argument("-o", "--output", help="also copy the final model file here")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_train)

    for name, helptext, func in (
        ("test", "print error metrics of a model on labelled data", _test),
        (
            "sharpness",
            "expected sharpness of a model on labelled data (Ibayashi et al. 2023)",
            _sharpness,
        ),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("model", help="model file or bundled model name")
        p.add_argument(
            "data", nargs="+", help="labelled data files (ASE formats, globs, bundled:...)"
        )
        p.add_argument("--energy-key", default="energy")
        p.add_argument("--forces-key", default="forces")
        p.add_argument("--stress-key", default="stress")
        p.add_argument("--stride", type=int, default=1, help="use every n-th frame")
        p.set_defaults(func=func)
    p.add_argument("--sigma", type=float, default=0.05, help="noise per parameter")
    p.add_argument("--samples", type=int, default=100, help="number of noise draws")
    p.add_argument("--seed", type=int, default=0)


def _train(args) -> int:
    import shutil

    from . import load_train_config, train

    result = train(
        load_train_config(args.config), resume=args.resume, progress=not args.no_progress
    )
    if args.output:
        shutil.copyfile(result.model_path, args.output)
    print(
        f"{result.stop_reason}; best epoch {result.best_epoch}; "
        f"model {args.output or result.model_path}"
    )
    return 130 if result.stop_reason.startswith("interrupted") else 0


def _frames(args, model):
    from . import load_frames

    return load_frames(
        args.data,
        model.species,
        model.r_max,
        args.energy_key,
        args.forces_key,
        args.stress_key,
        args.stride,
    )


def _test(args) -> int:
    from ..io import load_model
    from . import evaluate_errors
    from .report import metrics_table

    model = load_model(args.model)
    frames = _frames(args, model)
    stride = f", stride {args.stride}" if args.stride > 1 else ""
    n_atoms = sum(f.graph.n_atoms for f in frames)
    print(f"evaluated {len(frames)} frames ({n_atoms} atoms{stride})")
    print(metrics_table(evaluate_errors(model, frames), model.species))
    return 0


def _sharpness(args) -> int:
    from ..io import load_model
    from . import expected_sharpness

    model = load_model(args.model)
    r = expected_sharpness(model, _frames(args, model), args.sigma, args.samples, args.seed)
    print(
        f"expected sharpness {r.sharpness:.6g} ± {r.stderr:.2g} (loss {r.base_loss:.6g}, "
        f"sigma {r.sigma}, {r.n_samples} samples)"
    )
    return 0
