"""The ``legato`` command: subcommands, each a thin call into the library."""

from __future__ import annotations

import argparse
import sys

# Each subcommand module defines add_parser(subparsers) and sets `func` on its parser.
_SUBCOMMANDS = [
    "legato_ase.cli_core",
    "legato_ase.train.cli",
    "legato_ase.stability.cli",
    "legato_ase.parallel.cli",
    "legato_ase.learn.cli",
    "ipi_driver.cli",
]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="legato", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a subcommand whose optional module is not present
            continue
        module.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"legato {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`legato info MODEL | head`)
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print(f"legato {args.command}: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's final flush does not fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
