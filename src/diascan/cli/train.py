"""``diascan train``: train a TACCNN on simulated stamps, or fine-tune a model package on the
real/bogus labels of sessions (``--from-sessions``), and write a model package."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from diascan.cli.options import INT64_MAX, number
from diascan.errors import InputError, OutputError
from diascan.safety import check_output_folder

#: Defaults of the simulator recipe (the bundled model) and of fine-tuning, where they differ.
SIM_DEFAULTS = {"epochs": 12, "batch_size": 128, "lr": 2e-3}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a reliability model (simulated stamps, or your session labels)",
        description="Train a TACCNN on simulated stamps, or with --from-sessions fine-tune a model "
        "package on the real/bogus labels of session files, and write a meas_transiNet model "
        "package. Fine-tuned packages go to the user models folder "
        "($XDG_DATA_HOME/diascan/models) unless --out is given; `diascan models` lists them.",
    )
    p.add_argument("--out", type=Path, help="package directory to write")
    seed = number(int, 0, INT64_MAX)
    p.add_argument("--seed", type=seed, default=1)
    p.add_argument("--epochs", type=number(int, 1, 10**5), default=None,
                   help="epochs (simulator: 12; sessions: at most 60, early stopping)")
    p.add_argument("--batch-size", type=number(int, 1, 2**16), default=None,
                   help="simulator: 128; sessions: 32")
    p.add_argument("--lr", type=number(float, 0, 10, low_open=True), default=None,
                   help="simulator: 0.002; sessions: 0.0003")
    p.add_argument("--threads", type=number(int, 1, 1024), default=2, help="torch CPU threads")
    p.add_argument("--version", default="1.0")
    p.add_argument("--description", default=None)
    p.add_argument("--force", action="store_true", help="overwrite an existing package")
    sim = p.add_argument_group("training on simulated stamps")
    sim.add_argument("--n-train", type=number(int, 1, 10**8), default=30_000,
                     help="fresh stamps per epoch")
    sim.add_argument("--n-eval", type=number(int, 0, 10**7), default=4000,
                     help="held-out stamps (0: no evaluation)")
    sim.add_argument("--eval-seed", type=seed, default=12345)
    sim.add_argument(
        "--compare", type=Path, action="append", default=[], metavar="PACKAGE",
        help="also evaluate this model package on the held-out set (for the model card)",
    )
    sim.add_argument("--card", action="store_true", help="write README.md (model card)")
    ses = p.add_argument_group("fine-tuning on session labels")
    ses.add_argument("--from-sessions", nargs="+", type=Path, metavar="SESSION",
                     help="session files whose real/bogus labels to train on")
    ses.add_argument("--base", metavar="PATH|NAME", default=None,
                     help="model package to start from (default: the bundled model)")
    ses.add_argument("--threshold", type=number(float, 0, 1), default=0.5,
                     help="score threshold reported besides 0.5")
    ses.add_argument("--heldout-fraction", type=number(float, 0, 1, low_open=True), default=0.25,
                     help="labels held out (per visit and class) to measure before/after")
    ses.add_argument("--patience", type=number(int, 1, 10**5), default=8,
                     help="epochs without a lower held-out loss before stopping")
    ses.add_argument("--min-per-class", type=number(int, 1, 10**7), default=None,
                     help="labels of each class needed (default 30)")
    return p


def _command() -> str:
    return "diascan " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def run(args) -> int:
    if args.from_sessions:
        return run_from_sessions(args)
    return run_simulated(args)


def run_from_sessions(args) -> int:
    from diascan.learn.job import TrainJob, run_train_job
    from diascan.models.finetune import FinetuneConfig
    from diascan.models.labelled import MIN_PER_CLASS

    if not args.heldout_fraction < 1:
        raise InputError(None, "--heldout-fraction must be below 1 (some labels must train)")
    defaults = FinetuneConfig()
    cfg = FinetuneConfig(
        seed=args.seed,
        epochs=args.epochs or defaults.epochs,
        patience=args.patience,
        lr=args.lr or defaults.lr,
        batch_size=args.batch_size or defaults.batch_size,
        heldout_fraction=args.heldout_fraction,
        threads=args.threads,
    )
    job = TrainJob(
        sessions=list(args.from_sessions), base=args.base, out=args.out, config=cfg,
        threshold=args.threshold,
        min_per_class=MIN_PER_CLASS if args.min_per_class is None else args.min_per_class,
        version=args.version, description=args.description,
        force=args.force,
    )  # fmt: skip
    rep = run_train_job(job, log=lambda m: print(m, flush=True))
    for line in rep.summary_lines():
        print(line)
    print(f"wrote {rep.package} in {rep.seconds['total']:.1f} s "
          f"(gather {rep.seconds['gather']:.1f} s, train {rep.seconds['train']:.1f} s); "
          f"score with --model {rep.package}", flush=True)  # fmt: skip
    return 0


def run_simulated(args) -> int:
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

    out: Path | None = args.out
    if out is None:
        raise InputError(None, "--out is required when training on simulated stamps")
    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not args.force:
        raise OutputError(out, "exists and is not empty; use --force to overwrite")
    check_output_folder(out, [("compared model package", p) for p in args.compare], "--out")
    epochs = args.epochs or SIM_DEFAULTS["epochs"]
    compare = [load_model(p) for p in args.compare]  # fail early on a bad package
    cfg = TrainConfig(
        seed=args.seed, n_train=args.n_train, epochs=epochs,
        batch_size=args.batch_size or SIM_DEFAULTS["batch_size"],
        lr=args.lr or SIM_DEFAULTS["lr"], threads=args.threads, n_eval=args.n_eval,
    )  # fmt: skip
    description = args.description or "TACCNN trained by diascan on simulated stamps"
    result = train(cfg, log=lambda m: print(m, flush=True))
    write_package(result.model, out, version=args.version, description=description,
                  epoch=cfg.epochs)  # fmt: skip
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
            demo = None
            if compare:  # the card's demo check sets our model beside the first compared one
                from diascan.models.card import demo_check_paragraph

                demo = demo_check_paragraph(ours, compare[0])
            (out / "README.md").write_text(
                model_card(out.name, _command(), cfg, result.seconds, metrics, args.eval_seed,
                           demo_section=demo)  # fmt: skip
            )
    return 0
