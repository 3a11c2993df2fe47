"""Core subcommands: `legato info`."""

from __future__ import annotations


def add_parsers(sub) -> None:
    p = sub.add_parser("info", help="show a model file's species, r_max, config and metadata")
    p.add_argument("model", help="model file or bundled model name")
    p.set_defaults(func=_info)


def _info(args) -> int:
    import json

    from .io import read_model_file

    payload = read_model_file(args.model)
    shown = {k: payload[k] for k in ("format_version", "species", "r_max", "dtype", "config", "metadata")}
    print(json.dumps(shown, indent=2))
    return 0
