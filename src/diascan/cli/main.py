"""``diascan`` entry point. Bad input -> one clear line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import sys

from diascan import __version__
from diascan.errors import Cancelled, InputError

#: Sub-command name -> module under ``diascan.cli`` providing ``add_parser(sub)`` and ``run(args)``.
COMMANDS = {
    "view": "view",
    "demo": "demo",
    "score": "score",
    "models": "models",
    "train": "train",
    "export": "export",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diascan",
        description="Inspect difference-image sources and rescore their reliability.",
    )
    parser.add_argument("--version", action="version", version=f"diascan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(f"diascan.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"diascan.cli.{module}":
                continue  # command not available in this build
            raise
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        rc = args._run(args)
    except InputError as exc:
        print(f"diascan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"diascan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print(f"diascan {args.command}: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"diascan {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
