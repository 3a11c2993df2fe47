"""``python -m ipi_driver ipi-input ...``: ``legato ipi-input`` without ``legato``."""

import argparse
import sys

from .cli import add_parsers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ipi_driver")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
