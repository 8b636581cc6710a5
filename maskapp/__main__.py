"""The command line: python -m maskapp {train,evaluate,detect,evaluate-detection,video,bench}."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from maskapp.errors import MaskappError

# Each command module exposes register(subparsers) which sets `func` on its parser.
COMMAND_MODULES = (
    "maskapp.train",
    "maskapp.evaluate",
    "maskapp.cli_detect",
    "maskapp.detection_metrics",
    "maskapp.video",
    "maskapp.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m maskapp", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except MaskappError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
