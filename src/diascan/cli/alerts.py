"""``diascan alerts PATH... --out TABLE``: read alert packets, rescore them, write one table.

One row per alert: its fields (id, object id, time, band, flux or magnitude, S/N, flags,
negative, dipole, solar-system match, ...), the survey's production scores (``reliability``,
``rb``, ``drb``) and the recomputed ``score`` with the ``score_model`` that gave it, or a
``score_note`` saying why it was not scored; ``note`` tells what was wrong with an alert (e.g.
JPEG cutouts). Paths are alert files (Avro, Confluent wire-format, broker Parquet) or folders of
them. Without ``--model`` ZTF alerts are scored with a braai package found on the model search
path and Rubin alerts with a model whose input fits their stamps, if any. Progress goes to
stderr unless ``--quiet``. Bad input: one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from diascan.errors import InputError

STAGES = ("open", "fields", "score")

#: Notes printed on stderr before "... and N more".
MAX_NOTES = 10


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "alerts",
        help="read Rubin / ZTF alert packets, rescore them and write one table (headless)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="alert files or folders of them")
    p.add_argument("--out", metavar="FILE", required=True, help=".parquet, .ecsv, .fits or .csv")
    p.add_argument(
        "--model", action="append", default=None, metavar="PATH|NAME",
        help="model package (a folder, a braai .h5 file, or a name on the model search path); "
        "repeat for several: each alert gets the first that suits its stamps (default: chosen "
        "per survey from the packages found)",
    )
    p.add_argument(
        "--trust-model-code", action="store_true",
        help="allow importing a package's arch*.py for an unrecognised architecture",
    )
    p.add_argument("--no-score", action="store_true", help="write the fields only")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def _say(args, message: str) -> None:
    if not args.quiet:
        print(f"diascan alerts: {message}", file=sys.stderr)


def _models(args, collection):
    from diascan.alerts.scoring import available_models
    from diascan.models import load_model

    if args.model:
        return [load_model(m, trust_model_code=args.trust_model_code) for m in args.model]
    models, notes = available_models(collection.surveys, trust_model_code=args.trust_model_code)
    for note in notes:
        _say(args, note)
    return models


def run(args: argparse.Namespace) -> int:
    from astropy.table import Column

    from diascan.alerts import open_alerts
    from diascan.alerts.collection import alert_files, no_alerts_error
    from diascan.alerts.scoring import score_alerts
    from diascan.cli.score import _TerminalProgress
    from diascan.io.tables import table_format, write_table
    from diascan.safety import check_output_path

    out = Path(args.out)
    if table_format(out) not in ("parquet", "ecsv", "fits", "csv"):
        raise InputError(out, "unknown table format: use .parquet, .ecsv, .fits or .csv")
    # never over an alert file (also through links), with or without --overwrite
    check_output_path(out, [("alert file", f) for f in alert_files(args.paths)], "--out")
    if out.exists() and not args.overwrite:
        raise InputError(out, "exists; refusing to overwrite it (use --overwrite)")
    progress = None if args.quiet else _TerminalProgress(stages=STAGES)
    try:
        collection = open_alerts(args.paths, progress=progress)
        if len(collection) == 0:
            raise no_alerts_error(collection, args.paths)
        collection.load_fields(progress=progress)
        models = [] if args.no_score else _models(args, collection)
        scores = None
        if models:
            scores = score_alerts(collection, models, progress=progress)
            if args.model and scores.n_scored == 0:
                reason = Counter(scores.note).most_common(1)[0][0]
                raise InputError(
                    models[0].path if len(models) == 1 else None,
                    f"none of the {len(collection)} alerts could be scored: {reason}",
                )
    finally:
        if progress is not None:
            progress.close()
    table = collection.table.copy(copy_data=False)
    n = len(collection)
    if scores is not None:
        table["score"] = Column(scores.score, description="score recomputed by diascan (NaN: "
                                "not scored, see score_note)")
        table["score_model"] = Column(scores.model, dtype=str, description="model of score")
        table["score_note"] = Column(scores.note, dtype=str, description="why not scored")
    table["note"] = Column(["; ".join(collection.alert_notes(i)) for i in range(n)], dtype=str,
                           description="problems with the alert (empty: none)")
    table.meta["notes"] = [str(note) for note in collection.notes]
    write_table(table, out, overwrite=args.overwrite)
    for note in collection.notes[:MAX_NOTES]:
        _say(args, f"note: {note}")
    if len(collection.notes) > MAX_NOTES:
        _say(args, f"... and {len(collection.notes) - MAX_NOTES} more notes (in the table's meta)")
    summary = f"{n} alerts -> {out}"
    if scores is not None:
        by_model = Counter(m for m in scores.model if m)
        summary += "; scored " + (", ".join(f"{k} with {m}" for m, k in by_model.items()) or "none")
        unscored = [note for note in scores.note if note]
        if unscored:
            reason, k = Counter(unscored).most_common(1)[0]
            summary += f"; {len(unscored)} not scored ({k}: {reason})"
    _say(args, summary)
    return 0
