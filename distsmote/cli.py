"""Command-line interface: ``distsmote resample`` and ``distsmote demo``.

Errors exit with status 2 and one line on stderr (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from distsmote.config import SAMPLER_NAMES, ConfigError, JobConfig, load_config, make_sampler

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


# -- engines ----------------------------------------------------------------------------


@contextlib.contextmanager
def dask_client(config: JobConfig) -> Iterator[Any]:
    """Connect to ``dask.scheduler``, or start an embedded local cluster on 127.0.0.1."""
    from distributed import Client, LocalCluster

    if config.dask.scheduler:
        with Client(config.dask.scheduler) as client:
            yield client
        return
    n_workers = config.dask.n_workers or max(1, (os.cpu_count() or 1) // config.dask.threads_per_worker)
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with LocalCluster(
        n_workers=n_workers,
        threads_per_worker=config.dask.threads_per_worker,
        processes=True,
        host="127.0.0.1",
        scheduler_kwargs={"dashboard": False},
        memory_limit=config.dask.memory_limit,
        silence_logs=logging.ERROR,
    ) as cluster, Client(cluster) as client:
        log.info("embedded Dask cluster: %d workers × %d threads", n_workers, config.dask.threads_per_worker)
        yield client


@contextlib.contextmanager
def spark_session(config: JobConfig) -> Iterator[Any]:
    """Get (or create) the SparkSession; under spark-submit its master is used."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(config.spark.app_name)
    master = config.spark.master
    if not master and not os.environ.get("SPARK_ENV_LOADED") and "spark.master" not in config.spark.conf:
        master = os.environ.get("MASTER", "local[*]")  # not under spark-submit
    if master:
        builder = builder.master(master)
    if master and master.startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        os.environ["PYSPARK_PYTHON"] = sys.executable  # local workers use this interpreter
    for key, value in config.spark.conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    try:
        yield session
    finally:
        session.stop()


@contextlib.contextmanager
def engine_context(config: JobConfig) -> Iterator[Any]:
    """Yield the engine handle (None, a Dask client or a SparkSession)."""
    if config.engine == "dask":
        with dask_client(config) as client:
            yield client
    elif config.engine == "spark":
        with spark_session(config) as session:
            yield session
    else:
        yield None


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


def run_job(config: JobConfig, progress: bool = True) -> JobSummary:
    """Run one resampling job end to end: validate, read, resample, commit, summarise."""
    from distsmote import io

    config.require_paths()
    sampler = make_sampler(config.sampler, config.seed)
    t0 = time.perf_counter()
    if config.engine != "spark":
        io.check_paths(config.input, config.output, config.overwrite)
    with engine_context(config) as handle:
        if config.engine == "spark":
            _spark_check_paths(handle, config)
        frame = io.read_parquet(config.engine, config.input, handle)
        resampled = sampler.resample(frame, label=config.label, indicator=config.indicator)
        before = dict(sampler.class_counts_)
        staging = io.staging_path(config.output)
        try:
            log.info("writing %s", config.output)
            io.write_parquet(config.engine, resampled, staging, progress=progress)
            if config.engine == "spark":
                io.spark_commit(handle, staging, config.output, config.overwrite)
            else:
                io.commit(staging, config.output, config.overwrite)
        except BaseException:
            if config.engine == "spark":
                io.spark_discard(handle, staging)
            else:
                io.discard(staging)
            raise
        after = _class_counts(config.engine, config.output, config.label, handle)
    return JobSummary(
        config.engine, type(sampler).__name__, before, after, sum(after.values()),
        time.perf_counter() - t0,
    )


def _spark_check_paths(session: Any, config: JobConfig) -> None:
    from distsmote.io import OutputExistsError

    jvm = session._jvm
    conf = session._jsc.hadoopConfiguration()

    def exists(p: str) -> bool:
        path = jvm.org.apache.hadoop.fs.Path(p)
        return bool(path.getFileSystem(conf).exists(path))

    if not exists(config.input):
        raise FileNotFoundError(f"input {config.input!r} does not exist")
    if exists(config.output) and not config.overwrite:
        raise OutputExistsError(f"output {config.output!r} already exists; pass --overwrite to replace it")


# -- argument parsing -------------------------------------------------------------------


def _strategy(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _add_job_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML job config (see conf/); flags override it")
    p.add_argument("--engine", choices=["local", "dask", "spark"], help="default: dask (embedded local cluster)")
    p.add_argument("--seed", type=int, help="random seed; same seed, same output on every engine")
    p.add_argument("--sampler", choices=sorted(SAMPLER_NAMES), help="default: smote")
    p.add_argument("--sampling-strategy", type=_strategy, help="float or 'auto', 'minority', 'not minority', 'not majority', 'all'")
    p.add_argument("--k-neighbors", type=int, help="SMOTE neighbours (default 5)")
    p.add_argument("--knn", choices=["auto", "exact", "ivf", "hnsw"], help="neighbour search (default auto)")
    p.add_argument("--indicator", help="add a boolean column of this name marking synthetic rows")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an existing output")
    p.add_argument("--scheduler", help="Dask scheduler address (default: embedded local cluster)")
    p.add_argument("--n-workers", type=int, help="workers of the embedded Dask cluster")
    p.add_argument("--spark-master", help="Spark master URL (default: spark-submit's, else local[*])")
    p.add_argument("--quiet", action="store_true", help="no progress or log lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    """The ``distsmote`` argument parser."""
    parser = argparse.ArgumentParser(prog="distsmote", description="Rebalance class-imbalanced Parquet data with the SMOTE family.")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("resample", help="resample a Parquet file or dataset into a new dataset")
    r.add_argument("--input", help="Parquet file or dataset directory (local path or URL)")
    r.add_argument("--output", help="output dataset directory; must not exist unless --overwrite")
    r.add_argument("--label", help="class column")
    _add_job_flags(r)
    d = sub.add_parser("demo", help="write a demo dataset and resample it")
    d.add_argument("--workdir", default="distsmote-demo", help="where the demo input and output go")
    d.add_argument("--rows", type=int, default=200_000, help="rows of demo data")
    _add_job_flags(d)
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
        "overwrite": args.overwrite,
        "sampler.name": args.sampler,
        "dask.scheduler": args.scheduler,
        "dask.n_workers": args.n_workers,
        "spark.master": args.spark_master,
        **params,
    }


def _setup_logging(quiet: bool) -> None:
    for old in [h for h in log.handlers if getattr(h, "_distsmote_cli", False)]:
        log.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler._distsmote_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s distsmote: %(message)s", "%H:%M:%S"))
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


def _main(args: argparse.Namespace) -> int:
    try:
        overrides = _overrides(args)
        if args.command == "demo":
            from distsmote.demo import write_demo

            overrides["input"], overrides["output"], overrides["label"] = write_demo(args.workdir, args.rows)
            overrides["overwrite"] = True
            overrides["seed"] = 0 if args.seed is None else args.seed
        config = load_config(args.config, overrides)
        summary = run_job(config, progress=not args.quiet)
    except KeyboardInterrupt:
        print("distsmote: interrupted; no output was committed", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line, not a traceback
        if args.debug:
            raise
        kind = "config error" if isinstance(exc, ConfigError) else "error"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"distsmote: {kind}: {message}", file=sys.stderr)
        return 2
    print(summary.render())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
