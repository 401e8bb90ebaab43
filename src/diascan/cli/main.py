"""``diascan`` entry point. Bad input -> one clear line on stderr and exit code 2.

Every failure ends in exactly one line ``diascan CMD: error: FILE: problem`` and exit code 2:
diascan's own errors (:class:`~diascan.errors.InputError`), a bad option (argparse's usage text
is not printed: one line says what is wrong), any ``OSError`` (disk full, read-only file system,
permission denied...), and also an exception nobody anticipated (a bug): that one is reported as
``diascan CMD: error: unexpected TypeError: ...`` with a hint to rerun with ``DIASCAN_DEBUG=1``,
which lets it propagate with its full traceback (and shows Python warnings). The viewer's own
dialogs are the Qt layer's business; this only covers what reaches the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import signal
import sys
import warnings

from diascan import __version__
from diascan.errors import DEBUG_ENV, Cancelled, InputError, error_line, one_line

#: Sub-command name -> module under ``diascan.cli`` providing ``add_parser(sub)`` and ``run(args)``.
COMMANDS = {
    "view": "view",
    "demo": "demo",
    "score": "score",
    "models": "models",
    "train": "train",
    "export": "export",
    "alerts": "alerts",
    "info": "info",
}

#: Headless commands after which the process leaves without the interpreter's teardown.
FAST_EXIT = frozenset({"score", "export", "models", "demo", "alerts", "info"})

#: ``gc.set_threshold`` of a headless command: young objects collected about as often as by
#: default (700), full collections practically never. Importing torch, scipy and astropy
#: creates millions of long-lived objects, and every full collection walked them all again:
#: ~0.5-0.9 s of CPU time of a ``diascan score`` run. Measured on the full demo (2 runs each,
#: load 5-7): 9.6-9.7 s user CPU against 10.5-12.4 s with the default thresholds, peak RSS
#: 1.39-1.41 GB against 1.41-1.47 GB; a young threshold of 100,000 saved as much CPU but kept
#: ~70 MB more garbage at the peak.
HEADLESS_GC = (5000, 10, 1000)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``diascan score: error: ...``), exit 2.

    argparse prints the whole usage text before the error; diascan promises one line, and
    ``--help`` still shows the usage.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
        p.set_defaults(_run=mod.run, _parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``diascan`` command; returns its exit code (2 for bad input)."""
    return _dispatch(argv)[0]


def console_main() -> None:
    """The ``diascan`` console script: :func:`main`, then exit with its code.

    After a headless command (:data:`FAST_EXIT`) the process ends with ``os._exit`` once its
    streams are flushed: tearing down the torch, astropy and scipy modules at interpreter exit
    took ~0.4 s of every ``diascan score`` run (measured), and nothing is left to clean up by
    then: every output file is written atomically and closed before the command returns.

    A headless command also runs with fewer garbage collections (:data:`HEADLESS_GC`) and
    with malloc tuned for its large arrays (:func:`diascan.memory.tune_allocator`).
    """
    if len(sys.argv) > 1 and sys.argv[1] in FAST_EXIT:
        from diascan.memory import tune_allocator

        gc.set_threshold(*HEADLESS_GC)
        tune_allocator()
    rc, command = _dispatch(None)
    if command in FAST_EXIT:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            # a closed pipe: nothing more can be said
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(rc)
    sys.exit(rc)


def debugging() -> bool:
    """True when ``$DIASCAN_DEBUG`` asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def _dispatch(argv: list[str] | None) -> tuple[int, str | None]:
    with warnings.catch_warnings():  # library warnings at import time (astropy's config...)
        if not debugging():
            warnings.simplefilter("ignore")
        parser = build_parser()
        try:
            args, extra = parser.parse_known_args(argv)
            if extra:  # said by the sub-command ("diascan score: error: ..."), not by "diascan"
                getattr(args, "_parser", parser).error(
                    f"unrecognized arguments: {' '.join(extra)}")
        except SystemExit as exc:  # a bad option (one line printed) or --help / --version
            return (exc.code if isinstance(exc.code, int) else 2), None
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2, None
    command = args.command
    with _cli_context(command):
        try:
            return int(args._run(args) or 0), command
        except Cancelled:
            print(f"diascan {command}: cancelled", file=sys.stderr)
            return 130, command
        except KeyboardInterrupt:
            print(f"diascan {command}: interrupted", file=sys.stderr)
            return 130, command
        except Exception as exc:  # noqa: BLE001 - the one place every failure becomes one line
            if debugging() and not isinstance(exc, InputError):
                raise
            print(f"diascan {command}: error: {error_line(exc)}", file=sys.stderr)
            return 2, command


@contextlib.contextmanager
def _cli_context(command: str):
    """While a command runs: Python warnings are silenced (unless debugging), diascan's log
    warnings become one ``diascan CMD: warning: ...`` line each, and a file-size limit
    (``ulimit -f``) gives an error instead of killing the process with SIGXFSZ."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_OneLineFormatter(f"diascan {command}: warning: %(message)s"))
    logger = logging.getLogger("diascan")
    logger.addHandler(handler)
    old_xfsz = None
    if hasattr(signal, "SIGXFSZ"):
        with contextlib.suppress(ValueError, OSError):  # not the main thread: leave it be
            old_xfsz = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        with warnings.catch_warnings():
            if not debugging():
                warnings.simplefilter("ignore")
            yield
    finally:
        logger.removeHandler(handler)
        if old_xfsz is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signal.SIGXFSZ, old_xfsz)


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        return one_line((self._fmt or "%(message)s") % {"message": record.message}, limit=1000)


if __name__ == "__main__":  # pragma: no cover
    console_main()
