"""Subcommands ``legato label`` and ``legato learn`` (docs/learning.md)."""

from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("label", help="label frames with a reference method (GFN1-xTB, EMT)")
    p.add_argument("frames", nargs="+", help="ASE-readable files (globs, bundled:... allowed)")
    p.add_argument("-o", "--output", required=True, help="extended-XYZ output (appended to)")
    p.add_argument("--method", default="gfn1-xtb", help="gfn1-xtb (default), gfn2-xtb or emt")
    p.add_argument("--workers", type=int, default=1, help="parallel processes")
    p.add_argument("--retry-failed", action="store_true", help="retry frames that failed before")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_label)

    p = sub.add_parser("learn", help="concurrent learning: train, explore, select, label")
    p.add_argument("config", help="learn YAML file (docs/learning.md)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_learn)


def _label(args) -> int:
    from . import label

    result = label(
        args.frames,
        args.method,
        args.output,
        workers=args.workers,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
    )
    for failure in result.failures:
        print(f"frame {failure.index} failed: {failure.reason}")
    print(result.summary())
    return 0


def _learn(args) -> int:
    from . import learn, load_learn_config

    result = learn(load_learn_config(args.config), progress=not args.no_progress)
    print(result.summary())
    return 130 if result.interrupted else 0
