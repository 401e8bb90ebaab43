"""``diascan models``: list the model packages found (bundled, user, $MEAS_TRANSINET_DIR,
$DIASCAN_MODEL_PATH, paths)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--model`` and ``--trust-model-code`` (for ``diascan score`` / ``diascan view``).

    Pass ``load_model(args.model, trust_model_code=args.trust_model_code)``.
    """
    parser.add_argument(
        "--model", default=None, metavar="PATH|NAME",
        help="model package directory, Butler package .zip, or name (default: the bundled "
        "diascan model)",
    )
    parser.add_argument(
        "--trust-model-code", action="store_true",
        help="allow importing the package's arch*.py for an unrecognised architecture "
        "(runs code from the package)",
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "models",
        help="list reliability model packages",
        description="List model packages: bundled ones, your own ($XDG_DATA_HOME/diascan/models, "
        "where diascan train --from-sessions writes), $MEAS_TRANSINET_DIR/model_packages, the "
        "folders of $DIASCAN_MODEL_PATH and the given paths (package directories, Butler "
        "pretrainedModelPackage .zip files, braai Keras .h5 files, or folders of them).",
    )
    p.add_argument(
        "paths", nargs="*", type=Path,
        help="package directories, Butler package .zip files, braai .h5 files, or folders of them",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def run(args) -> int:
    from diascan.models import DEFAULT_MODEL_NAME, find_model_packages

    infos = find_model_packages(args.paths)
    if args.json:
        rows = [
            {
                "name": i.name, "path": str(i.path), "source": i.source, "version": i.version,
                "description": i.description, "architecture": i.architecture,
                "input_shape": list(i.input_shape) if i.input_shape else None, "error": i.error,
                "input_spec": i.input_spec.describe() if i.input_spec else None,
                "input_scale_factor": list(i.scale_factors) if i.scale_factors else None,
            }
            for i in infos
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not infos:
        print("no model packages found")
        return 0
    for i in infos:
        default = " (default)" if i.source == "bundled" and i.name == DEFAULT_MODEL_NAME else ""
        print(f"{i.name}{default}  [{i.source}]  {i.path}")
        if i.error:
            print(f"    ERROR: {i.error}")
            continue
        print(f"    version {i.version}  architecture {i.architecture}  input {list(i.input_shape)}")
        if i.input_spec is not None:
            print(f"    stamps {i.input_spec.describe()}")
        if i.description:
            print(f"    {i.description}")
        if i.scale_factors and any(f != 1.0 for f in i.scale_factors):
            print(
                f"    input_scale_factor {list(i.scale_factors)} in its meta.yaml is NOT applied: "
                "the Rubin pipeline reads it but scores unscaled stamps, and so does diascan"
            )
    return 0
