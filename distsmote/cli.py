"""Command-line interface: ``distsmote resample``, ``distsmote inspect`` and ``distsmote demo``.

Errors exit with status 2 and one line on stderr (``--verbose``, alias ``--debug``,
shows the traceback).  Ctrl-C exits with 130 and SIGTERM with 143 (128 + the signal
number, as shells report), after one line on stderr and with partial output removed.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from distsmote.config import SAMPLER_NAMES, ConfigError, load_config
from distsmote.job import JobState, JobSummary, run_job  # noqa: F401 - re-exported
from distsmote.paths import redact
from distsmote.sessions import Terminated

log = logging.getLogger("distsmote")


# -- the job: distsmote.job.run_job (engine-blind) ---------------------------------------


# -- argument parsing -------------------------------------------------------------------


def _strategy(text: str) -> Any:
    """A float if the text is one (checked later with the config), else the text."""
    try:
        return float(text)
    except ValueError:
        return text


def _columns(text: str) -> list[str]:
    """A comma-separated list of column names."""
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected one or more column names, comma-separated")
    return names


def _add_job_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML job config (see conf/); flags override it")
    p.add_argument("--engine", choices=["local", "dask", "spark"], help="default: dask (embedded local cluster)")
    p.add_argument("--seed", type=int, help="random seed; same seed, same output on every engine")
    p.add_argument("--sampler", choices=sorted(SAMPLER_NAMES), help="default: smote")
    p.add_argument("--sampling-strategy", type=_strategy, help="float in (0, 1] or 'auto', 'minority', 'not minority', 'not majority', 'all'")
    p.add_argument("--k-neighbors", type=int, help="neighbours of each synthetic row's partner (ADASYN: n_neighbors; default 5)")
    p.add_argument("--knn", choices=["auto", "exact", "ivf", "hnsw"], help="neighbour search (default auto)")
    p.add_argument("--driver-budget", metavar="SIZE",
                   help="SMOTE: driver memory for the classes to oversample, e.g. 512MiB (default 2GiB); "
                        "above it, generation runs from the distributed kNN join")
    p.add_argument("--indicator", help="add a boolean column of this name marking synthetic rows")
    p.add_argument("--categorical", type=_columns, metavar="COL,COL",
                   help="categorical features for smotenc/smoten (default: string, category and boolean columns)")
    p.add_argument("--passthrough", type=_columns, metavar="COL,COL",
                   help="columns carried along unchanged, never used in distances; null on synthetic rows")
    p.add_argument("--partition-columns", type=_columns, metavar="COL,COL",
                   help="passthrough columns whose value synthetic rows copy from their seed row")
    p.add_argument("--id-column", metavar="COL",
                   help="passthrough int64 or string column that gets fresh, deterministic ids on synthetic rows")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an existing output (atomically)")
    p.add_argument("--scheduler", help="Dask scheduler address (default: embedded local cluster)")
    p.add_argument("--n-workers", type=int, help="workers of the embedded Dask cluster")
    p.add_argument("--no-workers-timeout", type=float, metavar="SECONDS",
                   help="fail when no Dask worker has been connected this long (default 300)")
    p.add_argument("--spark-master", help="Spark master URL (default: spark-submit's, else local[*])")
    p.add_argument("--quiet", action="store_true", help="no progress or log lines")
    p.add_argument("--verbose", "--debug", dest="verbose", action="store_true",
                   help="show tracebacks and engine logs (--debug is an alias)")


def _add_table_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-format", choices=["auto", "parquet", "delta"],
                   help="input kind (default auto: a Delta table if it has a _delta_log)")
    p.add_argument("--format", choices=["parquet", "delta"], help="output kind (default parquet)")
    p.add_argument("--where", metavar="EXPR",
                   help="select partitions and rows, e.g. \"dt = '2026-11-27'\" (AND, IN, =, !=, <, >)")
    p.add_argument("--version", type=int, metavar="N", help="Delta input: read table version N (default latest)")
    p.add_argument("--partition-by", type=_columns, metavar="COLS",
                   help="output partition columns (comma-separated): input partition columns that "
                        "--where selects one value of; a rerun replaces exactly that partition")
    p.add_argument("--test-fraction", type=float, metavar="F",
                   help="hold out this fraction as OUTPUT/test before resampling OUTPUT/train")
    p.add_argument("--stratify", action=argparse.BooleanOptionalAction, default=None,
                   help="stratify the split by the label (default: yes)")
    p.add_argument("--split-seed", type=int, metavar="N", help="seed of the train/test split (default 0)")


def build_parser() -> argparse.ArgumentParser:
    """The ``distsmote`` argument parser."""
    from distsmote import __version__

    parser = argparse.ArgumentParser(prog="distsmote", description="Rebalance class-imbalanced Parquet and Delta tables with the SMOTE family.")
    parser.add_argument("--version", action="version", version=f"distsmote {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "resample", help="resample a Parquet dataset or Delta table (partition) into a new one",
        usage="distsmote resample --input PATH --output PATH --label COLUMN [options]\n"
              "       distsmote resample --config JOB.yaml [options]",
    )
    req = r.add_argument_group(
        "required (each may instead come from --config as input:, output:, label:)"
    )
    req.add_argument("--input", metavar="PATH",
                     help="Parquet file, Parquet dataset directory or Delta table (local path or URL)")
    req.add_argument("--output", metavar="PATH",
                     help="output dataset directory or Delta table; must not exist unless --overwrite "
                          "or --partition-by, and must not equal, contain or sit inside the input")
    req.add_argument("--label", metavar="COLUMN", help="class column")
    _add_job_flags(r)
    _add_table_flags(r)
    i = sub.add_parser("inspect", help="print the run manifest of an output as a table")
    i.add_argument("output", metavar="OUTPUT", help="the OUTPUT of a run (a dataset, a Delta table, or a split's root)")
    i.add_argument("--json", action="store_true", help="print the manifest as JSON")
    d = sub.add_parser("demo", help="write a demo dataset and resample it")
    d.add_argument("--workdir", default="distsmote-demo", help="where the demo input and output go")
    d.add_argument("--rows", type=int, default=200_000, help="rows of demo data")
    d.add_argument("--evaluate", action="store_true",
                   help="instead: evaluate samplers x models on a churn-like table (10,000 rows "
                        "unless --rows); report in WORKDIR/report")
    d.add_argument("--table", choices=["fraud", "churn"], default="fraud",
                   help="fraud: numeric features, SMOTE (default); churn: categorical features, an id "
                        "and a date partition column, SMOTENC")
    _add_job_flags(d)
    from distsmote.evaluate.cli import add_evaluate_parser, add_evaluation_flags

    add_evaluation_flags(d)
    add_evaluate_parser(sub)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    params = {
        "sampler.params.sampling_strategy": args.sampling_strategy,
        "sampler.params.k_neighbors": args.k_neighbors,
        "sampler.params.knn": args.knn,
        "sampler.params.driver_budget": args.driver_budget,
    }
    return {
        "input": getattr(args, "input", None),
        "output": getattr(args, "output", None),
        "label": getattr(args, "label", None),
        "engine": args.engine,
        "seed": args.seed,
        "indicator": args.indicator,
        "categorical": args.categorical,
        "passthrough": args.passthrough,
        "partition_columns": args.partition_columns,
        "id_column": args.id_column,
        "overwrite": args.overwrite,
        "sampler.name": args.sampler,
        "dask.scheduler": args.scheduler,
        "dask.n_workers": args.n_workers,
        "dask.no_workers_timeout": args.no_workers_timeout,
        "spark.master": args.spark_master,
        **{k: getattr(args, k, None) for k in ("input_format", "format", "where", "version", "partition_by",
                                                "test_fraction", "stratify", "split_seed")},
        **params,
    }


class _RedactingFormatter(logging.Formatter):
    """Log lines with URL credentials hidden."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _setup_logging(quiet: bool) -> None:
    for old in [h for h in log.handlers if getattr(h, "_distsmote_cli", False)]:
        log.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler._distsmote_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(_RedactingFormatter("%(asctime)s distsmote: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
    warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")
    warnings.filterwarnings("ignore", message="Sending large graph")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``distsmote`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "inspect":
        return _inspect(args)
    _setup_logging(args.quiet)
    try:
        return _main(args)
    finally:
        for handler in [h for h in log.handlers if getattr(h, "_distsmote_cli", False)]:
            log.removeHandler(handler)
        log.propagate = True


def _inspect(args: argparse.Namespace) -> int:
    import json

    from distsmote.manifest import read_manifest, render

    try:
        doc = read_manifest(args.output)
    except Exception as exc:  # one clear line
        print(f"distsmote: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0


def _interrupted(what: str, state: JobState) -> str:
    if state.committed:
        return f"distsmote: {what} after the output was committed"
    return f"distsmote: {what}; no output was committed (partial files were removed)"


def _main(args: argparse.Namespace) -> int:
    state = JobState()
    try:
        if args.command == "evaluate" or (args.command == "demo" and args.evaluate):
            from distsmote.evaluate.cli import run_evaluate

            return run_evaluate(args)
        overrides = _overrides(args)
        if args.command == "demo":
            from distsmote.demo import write_demo

            overrides["input"], overrides["output"], overrides["label"] = write_demo(
                args.workdir, args.rows, args.table
            )
            if args.table == "churn":
                from distsmote.demo import CHURN_ROLES

                for key, value in CHURN_ROLES.items():
                    if overrides.get(key) is None:
                        overrides[key] = value
            overrides["overwrite"] = True
            overrides["seed"] = 0 if args.seed is None else args.seed
        config = load_config(args.config, overrides)
        summary = run_job(config, progress=not args.quiet, verbose=args.verbose, state=state)
    except KeyboardInterrupt:
        if args.verbose:
            raise
        print(_interrupted("interrupted", state), file=sys.stderr)
        return 130
    except Terminated:
        if args.verbose:
            raise
        print(_interrupted("terminated (SIGTERM)", state), file=sys.stderr)
        return 143
    except Exception as exc:  # one clear line, not a traceback
        if args.verbose:
            raise
        kind = "config error" if isinstance(exc, ConfigError) else "error"
        print(f"distsmote: {kind}: {one_line(exc)}", file=sys.stderr)
        return 2
    print(summary.render())
    return 0


def one_line(exc: BaseException) -> str:
    """The first line of an error's message, credentials hidden.

    Engine errors (Spark's ``Py4JJavaError``/``PythonException``, a Dask task's error)
    carry worker tracebacks: the Python error at the end of the last traceback is kept,
    or else the first line that says something.
    """
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    if "Traceback (most recent call last)" in text:
        tail = text.rsplit("Traceback (most recent call last)", 1)[1]
        found = re.findall(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Fault|Exit)\b: .+)$", tail, re.M)
        if found:  # "pkg.module.SomeError: why" -> "SomeError: why"
            name, _, why = found[0].strip().partition(": ")
            return redact(f"{name.rsplit('.', 1)[-1]}: {why}")
    lines = [line.strip().lstrip(": ") for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("An error occurred while calling")] or lines
    return redact(lines[0])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
