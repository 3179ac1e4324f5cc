"""Command-line interface: ``distsmote resample`` and ``distsmote demo``.

Errors exit with status 2 and one line on stderr (``--verbose``, alias ``--debug``,
shows the traceback).  Ctrl-C exits with 130 and SIGTERM with 143 (128 + the signal
number, as shells report), after one line on stderr and with partial output removed.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from distsmote.config import SAMPLER_NAMES, ConfigError, JobConfig, load_config, make_sampler
from distsmote.paths import redact
from distsmote.sessions import Terminated, engine_context, signal_guard, spark_interrupted

log = logging.getLogger("distsmote")


@dataclass
class JobSummary:
    """What a finished job reports."""

    engine: str
    sampler: str
    before: dict
    after: dict
    rows_written: int
    seconds: float

    def render(self) -> str:
        """A short human-readable table."""
        classes = sorted(set(self.before) | set(self.after), key=repr)
        width = max([len(repr(c)) for c in classes] + [5])
        lines = [f"{'class':<{width}}  {'before':>12}  {'after':>12}"]
        for c in classes:
            lines.append(f"{c!r:<{width}}  {self.before.get(c, 0):>12,}  {self.after.get(c, 0):>12,}")
        lines.append(
            f"{self.sampler} on {self.engine}: wrote {self.rows_written:,} rows in {self.seconds:.1f}s"
        )
        return "\n".join(lines)


# -- the job ----------------------------------------------------------------------------


def _class_counts(engine: str, path: str, label: str, session: Any) -> dict:
    """Class counts of a written dataset, reading only the label column."""
    from distsmote._strategy import normalise_label

    if engine == "spark":
        rows = session.read.parquet(path).groupBy(label).count().collect()
        return {normalise_label(r[0]): int(r[1]) for r in rows}
    import pyarrow.dataset as ds
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    table = ds.dataset(root, filesystem=fs, format="parquet").to_table(columns=[label])
    counts = table.column(label).value_counts().to_pylist()
    return {normalise_label(d["values"]): int(d["counts"]) for d in counts}


@dataclass
class JobState:
    """How far a job got (read by the CLI when it is interrupted)."""

    committed: bool = False


def _inspect_input(config: JobConfig) -> Any:
    """Check the input's files and schemas on the driver (footers only).

    Spark may read URLs that fsspec cannot open, or opens with other credentials
    (``s3a://`` without s3fs, ``hdfs://``): for a Spark input that is not a local path,
    a failure to look is not an error; the check is skipped (logged) and Spark reads the
    input itself.  Problems found in the files are errors on every engine.
    """
    from distsmote.paths import split_scheme
    from distsmote.reading import InputFileError, inspect_input

    scheme, _ = split_scheme(config.input)
    if config.engine != "spark" or scheme in ("", "file", "local"):
        return inspect_input(config.input)
    try:
        return inspect_input(config.input)
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - fsspec cannot look; Spark may still read it
        log.info("input files not checked before reading (%s); Spark reads %s directly",
                 one_line(exc), redact(config.input))
        return None


def _prepare_output(store: Any, config: JobConfig) -> None:
    """Recover from killed runs, then refuse an existing output unless ``overwrite``."""
    from distsmote.commit import OutputExistsError, recover

    recover(store, config.output, protect=(config.input,))
    if store.exists(config.output) and not config.overwrite:
        raise OutputExistsError(
            f"output {redact(config.output)!r} already exists; pass --overwrite to replace it"
        )


def run_job(config: JobConfig, progress: bool = True, verbose: bool = False,
            state: JobState | None = None) -> JobSummary:
    """Run one resampling job end to end: validate, read, resample, commit, summarise.

    Nothing is written before the paths are checked (the output may not equal, contain
    or sit inside the input, on any engine), the input's footers agree, and leftovers of
    killed runs on the output are recovered.  SIGTERM raises :class:`Terminated`.
    """
    from distsmote import commit, io
    from distsmote.paths import check_distinct

    state = state if state is not None else JobState()
    config.require_paths()
    check_distinct(config.input, config.output)
    sampler = make_sampler(config.sampler, config.seed)
    t0 = time.perf_counter()
    with signal_guard() as guarded:
        info = _inspect_input(config)
        store = None
        if config.engine != "spark":
            store = commit.FsspecStore(config.output)
            _prepare_output(store, config)
        with engine_context(config, verbose=verbose, watch=guarded, progress=progress) as handle:
            if store is None:
                store = commit.HadoopStore(handle)
                if info is None and not store.exists(config.input):
                    raise FileNotFoundError(f"input {redact(config.input)!r} does not exist")
                _prepare_output(store, config)
            schema = info.schema if info is not None and info.widened else None
            frame = io.read_parquet(config.engine, config.input, handle, schema=schema)
            resampled = sampler.resample(
                frame, label=config.label, indicator=config.indicator,
                categorical=config.categorical, passthrough=config.passthrough,
                partition_columns=config.partition_columns, id_column=config.id_column,
            )
            before = dict(sampler.class_counts_)
            owner = commit.Owner.new()
            staging = commit.sibling(config.output, "staging", owner)
            try:
                log.info("writing %s", redact(config.output))
                io.write_parquet(config.engine, resampled, staging)
                commit.commit(store, staging, config.output, config.overwrite, owner,
                              on_commit=lambda: setattr(state, "committed", True))
            except BaseException as exc:
                if config.engine == "spark" and isinstance(exc, (KeyboardInterrupt, Terminated)):
                    spark_interrupted(handle)
                commit.abort(store, config.output, owner)
                raise
            after = _class_counts(config.engine, config.output, config.label, handle)
    return JobSummary(
        config.engine, type(sampler).__name__, before, after, sum(after.values()),
        time.perf_counter() - t0,
    )


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


def build_parser() -> argparse.ArgumentParser:
    """The ``distsmote`` argument parser."""
    from distsmote import __version__

    parser = argparse.ArgumentParser(prog="distsmote", description="Rebalance class-imbalanced Parquet data with the SMOTE family.")
    parser.add_argument("--version", action="version", version=f"distsmote {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "resample", help="resample a Parquet file or dataset into a new dataset",
        usage="distsmote resample --input PATH --output PATH --label COLUMN [options]\n"
              "       distsmote resample --config JOB.yaml [options]",
    )
    req = r.add_argument_group(
        "required (each may instead come from --config as input:, output:, label:)"
    )
    req.add_argument("--input", metavar="PATH", help="Parquet file or dataset directory (local path or URL)")
    req.add_argument("--output", metavar="PATH",
                     help="output dataset directory; must not exist unless --overwrite, "
                          "and must not equal, contain or sit inside the input")
    req.add_argument("--label", metavar="COLUMN", help="class column")
    _add_job_flags(r)
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
    _setup_logging(args.quiet)
    try:
        return _main(args)
    finally:
        for handler in [h for h in log.handlers if getattr(h, "_distsmote_cli", False)]:
            log.removeHandler(handler)
        log.propagate = True


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
