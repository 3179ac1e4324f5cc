"""``distsmote evaluate`` and ``distsmote demo --evaluate``.

Registered by :mod:`distsmote.cli`; everything heavy is imported when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

log = logging.getLogger("distsmote")


def add_evaluate_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to the ``distsmote`` parser."""
    e = sub.add_parser(
        "evaluate",
        help="compare samplers x models on a table; write an HTML report with plots",
        usage="distsmote evaluate --input PATH --label COLUMN --report DIR [options]",
        description="Split the table (the test side is never resampled), resample the train "
                    "side with each sampler, fit each model and score it on the test side.",
    )
    e.add_argument("--input", metavar="PATH", required=True, help="Parquet file or dataset directory")
    e.add_argument("--label", metavar="COLUMN", required=True, help="class column")
    e.add_argument("--report", metavar="DIR", required=True,
                   help="report directory (report.html, *.png, metrics.csv, metrics.json)")
    add_evaluation_flags(e)
    e.add_argument("--config", help="YAML job config (engine, seed, dask:, spark: are used); flags override it")
    e.add_argument("--engine", choices=["local", "dask", "spark"], help="default: dask (embedded local cluster)")
    e.add_argument("--seed", type=int, help="seed of the split, the samplers and the models (default 0)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing report directory")
    e.add_argument("--scheduler", help="Dask scheduler address (default: embedded local cluster)")
    e.add_argument("--n-workers", type=int, help="workers of the embedded Dask cluster")
    e.add_argument("--spark-master", help="Spark master URL (default: spark-submit's, else local[*])")
    e.add_argument("--quiet", action="store_true", help="no progress or log lines")
    e.add_argument("--verbose", "--debug", dest="verbose", action="store_true", help="show tracebacks")
    return e


def add_evaluation_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``evaluate`` and ``demo --evaluate``."""
    from distsmote.evaluate.defaults import DEFAULT_SAMPLERS, IN_MEMORY_LIMIT

    p.add_argument("--samplers", default=",".join(DEFAULT_SAMPLERS),
                   help=f"comma-separated; 'none' is the baseline (default {','.join(DEFAULT_SAMPLERS)})")
    p.add_argument("--models", default="lr,dt,rf", help="comma-separated among lr, dt, rf (default all)")
    p.add_argument("--test-fraction", type=float, help="hold-out test share (default 0.2)")
    p.add_argument("--cv", type=int, help="stratified k-fold with this many folds instead of hold-out")
    p.add_argument("--screenshot", metavar="PNG",
                   help="also save a PNG of the rendered report (needs Debian's chromium)")
    p.add_argument("--in-memory-limit", type=int, default=IN_MEMORY_LIMIT, metavar="ROWS",
                   help=f"above this many rows the models train on the engine (default {IN_MEMORY_LIMIT:,})")


def _overrides(args: argparse.Namespace) -> dict:
    return {
        "engine": args.engine,
        "seed": args.seed,
        "dask.scheduler": args.scheduler,
        "dask.n_workers": args.n_workers,
        "spark.master": args.spark_master,
    }


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``evaluate`` (or ``demo --evaluate``); print the best samplers and the report path."""
    from distsmote.config import load_config
    from distsmote.engines import engine_class
    from distsmote.evaluate.protocol import run_evaluation
    from distsmote.evaluate.report import best_table, best_samplers, write_report
    from distsmote.paths import check_distinct

    if args.command == "demo":
        from distsmote.datasets import CHURN_LABEL, make_churn

        os.makedirs(args.workdir, exist_ok=True)
        path = os.path.join(args.workdir, "churn.parquet")
        rows = 10_000 if args.rows == 200_000 else args.rows  # 200 000 is the resample demo's default
        make_churn(rows, seed=args.seed or 0).to_parquet(path, index=False)
        source, label, report, overwrite = path, CHURN_LABEL, os.path.join(args.workdir, "report"), True
        log.info("churn-like table: %s", path)
    else:
        source, label, report, overwrite = args.input, args.label, args.report, bool(args.overwrite)
        check_distinct(source, report)
        if os.path.exists(report) and not overwrite:
            raise FileExistsError(f"report directory {report!r} already exists; pass --overwrite to replace it")
    config = load_config(args.config, _overrides(args))
    seed = 0 if config.seed is None else config.seed
    from distsmote.inputs import resolve_input

    table = resolve_input(source)
    with engine_class(config.engine).open(config, verbose=args.verbose, progress=not args.quiet) as engine:
        frame = engine.read(table)
        fraction = 0.2 if args.test_fraction is None else args.test_fraction
        ev = run_evaluation(frame, label, args.samplers, args.models, test_fraction=fraction,
                            cv=args.cv, seed=seed, in_memory_limit=args.in_memory_limit)
    page = write_report(ev, report, overwrite=True)
    print(best_table(best_samplers(ev.metrics)).to_string(index=False))
    print(f"{ev.path}\nreport: {page}")
    if args.screenshot:
        from distsmote.evaluate.browser import screenshot

        print(f"screenshot: {screenshot(page, args.screenshot)}")
    return 0
