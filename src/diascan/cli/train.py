"""``diascan train``: train our TACCNN on simulated stamps and write a model package."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from diascan.cli.options import INT64_MAX, number
from diascan.errors import OutputError
from diascan.safety import check_output_folder


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a TACCNN reliability model on simulated stamps",
        description="Train a TACCNN on simulated stamps and write a meas_transiNet model package.",
    )
    p.add_argument("--out", required=True, type=Path, help="package directory to write")
    seed = number(int, 0, INT64_MAX)
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--n-train", type=number(int, 1, 10**8), default=30_000,
                   help="fresh stamps per epoch")
    p.add_argument("--epochs", type=number(int, 1, 10**5), default=12)
    p.add_argument("--batch-size", type=number(int, 1, 2**16), default=128)
    p.add_argument("--lr", type=number(float, 0, 10, low_open=True), default=2e-3)
    p.add_argument("--threads", type=number(int, 1, 1024), default=2, help="torch CPU threads")
    p.add_argument("--version", default="1.0")
    p.add_argument("--description", default="TACCNN trained by diascan on simulated stamps")
    p.add_argument("--n-eval", type=number(int, 0, 10**7), default=4000,
                   help="held-out stamps (0: no evaluation)")
    p.add_argument("--eval-seed", type=seed, default=12345)
    p.add_argument(
        "--compare", type=Path, action="append", default=[], metavar="PACKAGE",
        help="also evaluate this model package on the held-out set (for the model card)",
    )
    p.add_argument("--card", action="store_true", help="write README.md (model card)")
    p.add_argument("--force", action="store_true", help="overwrite an existing package")
    return p


def run(args) -> int:
    from diascan.models import load_model
    from diascan.models.training import (
        TrainConfig,
        evaluate,
        heldout_sets,
        model_card,
        save_metrics,
        train,
        write_package,
    )

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not args.force:
        raise OutputError(out, "exists and is not empty; use --force to overwrite")
    check_output_folder(out, [("compared model package", p) for p in args.compare], "--out")
    compare = [load_model(p) for p in args.compare]  # fail early on a bad package
    cfg = TrainConfig(
        seed=args.seed, n_train=args.n_train, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, threads=args.threads, n_eval=args.n_eval,
    )
    result = train(cfg, log=lambda m: print(m, flush=True))
    write_package(result.model, out, version=args.version, description=args.description,
                  epoch=cfg.epochs)
    print(f"wrote {out} in {result.seconds:.1f} s", flush=True)
    if args.n_eval > 0:
        mixed, snr6 = heldout_sets(args.eval_seed, n=args.n_eval, n_snr6=max(1, args.n_eval // 2))
        ours = load_model(out)
        metrics = {out.name: evaluate(ours.score_stamps, mixed, snr6)}
        for m in compare:
            metrics[m.name] = evaluate(m.score_stamps, mixed, snr6)
        for name, m in metrics.items():
            print(
                f"{name}: AUC {m['roc_auc']:.4f} purity {m['purity']:.3f} completeness "
                f"{m['completeness']:.3f} SNR6 purity {m['purity_snr6']:.3f} completeness "
                f"{m['completeness_snr6']:.3f} TPR negative {m['tpr_negative']:.3f}",
                flush=True,
            )
        save_metrics(out / "metrics.json", metrics, cfg, seconds=result.seconds,
                     history=result.history, eval_seed=args.eval_seed)
        if args.card:
            command = "diascan train " + " ".join(shlex.quote(a) for a in sys.argv[2:])
            demo = None
            if compare:  # the card's demo check sets our model beside the first compared one
                from diascan.models.card import demo_check_paragraph

                demo = demo_check_paragraph(ours, compare[0])
            (out / "README.md").write_text(
                model_card(out.name, command, cfg, result.seconds, metrics, args.eval_seed,
                           demo_section=demo)  # fmt: skip
            )
    return 0
