"""One resampling job, end to end, on any engine: :func:`run_job`.

1. Check the paths and the config; resolve the input on the driver
   (:func:`distsmote.inputs.resolve_input`: files, schema, ``--where``, ``--version``).
2. Open the engine (``Engine.open``: join or start a Dask cluster or Spark session) and
   prepare the outputs (recover killed runs, refuse an existing output).
3. Read; split into train and test (``--test-fraction``) **before** resampling; resample
   the train split only.
4. Check the output schemas against existing tables; write part files; commit each
   output (a rename, or one Delta transaction per table).
5. Write the run manifest (:mod:`distsmote.manifest`) last, next to the output.

Nothing here knows which engine runs: every engine-specific step is an engine method.
"""

from __future__ import annotations

import logging
import posixpath
import time
from dataclasses import dataclass, field
from typing import Any

from distsmote.config import ConfigError, JobConfig, make_sampler
from distsmote.input_copy import describe, files_to_copy, may_copy
from distsmote.paths import redact

log = logging.getLogger("distsmote")


@dataclass
class JobState:
    """How far a job got (read by the CLI when it is interrupted)."""

    committed: bool = False


@dataclass
class JobSummary:
    """What a finished job reports (``manifest`` is the run manifest written last)."""

    engine: str
    sampler: str
    before: dict
    after: dict
    rows_written: int
    seconds: float
    manifest: dict = field(default_factory=dict)

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
        test = self.manifest.get("splits", {}).get("test")
        if test:
            lines.append(f"test split (not resampled): {sum(test['after'].values()):,} rows")
        return "\n".join(lines)


class Phases:
    """Wall-clock seconds of each phase of a run (for the manifest)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str) -> "_Phase":
        return _Phase(self, name)


class _Phase:
    def __init__(self, phases: Phases, name: str) -> None:
        self.phases, self.name = phases, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        took = time.perf_counter() - self.t0
        self.phases.seconds[self.name] = round(self.phases.seconds.get(self.name, 0.0) + took, 3)


def resolve_source(config: JobConfig) -> Any:
    """The input's :class:`~distsmote.inputs.Source` (driver only: listings and footers).

    Spark may read URLs that fsspec cannot open (``s3a://`` without s3fs, ``hdfs://``):
    for a Spark input that is not a local path, a failure to look is not an error; the
    check is skipped (logged) and Spark reads the path itself, with ``--where`` as a
    filter.  Problems found in the files are errors on every engine.
    """
    from distsmote.delta import DeltaInputError
    from distsmote.inputs import Source, resolve_input
    from distsmote.paths import split_scheme
    from distsmote.reading import InputFileError
    from distsmote.where import WhereError, parse_where

    def look() -> Source:
        return resolve_input(config.input, fmt=config.input_format, where=config.where,
                             version=config.version)

    scheme, _ = split_scheme(config.input)
    if config.engine != "spark" or scheme in ("", "file", "local"):
        return look()
    try:
        return look()
    except (InputFileError, WhereError, DeltaInputError):
        raise
    except Exception as exc:  # noqa: BLE001 - fsspec cannot look; Spark may still read it
        from distsmote.cli import one_line

        log.info("input files not checked before reading (%s); Spark reads %s directly",
                 one_line(exc), redact(config.input))
        if config.input_format == "delta" or config.version is not None:
            raise
        return Source(config.input, "parquet", None, row_filter=parse_where(config.where), where=config.where)


def _output_partition(config: JobConfig, source: Any) -> dict:
    for col in config.partition_by:
        if col not in source.partition:
            have = sorted(source.partition) if source.files is not None else "(not known: the input was not listed)"
            raise ConfigError(
                f"--partition-by column {col!r} is not a partition column of the input {redact(config.input)!r} "
                f"(its partition columns: {have}); partition the output by columns whose one value "
                "--where selects, e.g. --where \"dt = '...'\" --partition-by dt"
            )
    return {c: source.partition[c] for c in config.partition_by}


def _outputs(config: JobConfig, source: Any) -> dict:
    from distsmote.outputs import make_output

    partition = _output_partition(config, source)
    types = {c: source.partition_types[c] for c in partition}
    names = ["train", "test"] if config.test_fraction is not None else [""]
    return {
        name: make_output(config.format, posixpath.join(config.output, name) if name else config.output,
                          partition=partition, partition_types=types, overwrite=config.overwrite,
                          protect=(config.input,))
        for name in names
    }


def _split(config: JobConfig, frame: Any) -> tuple[Any, Any]:
    from distsmote.split import train_test_split

    return train_test_split(frame, config.label, config.test_fraction, stratify=config.stratify,
                            seed=config.split_seed)


def _check_rows(engine: Any, frame: Any, config: JobConfig) -> None:
    from distsmote.where import WhereError

    if config.label not in engine.columns(frame):
        return  # the sampler names the missing label
    stats = engine.label_stats(frame, config.label, [])
    if not stats.counts and not stats.null_labels:
        raise WhereError(f"--where {config.where!r} matches no row of input {redact(config.input)!r}")


def run_job(config: JobConfig, progress: bool = True, verbose: bool = False,
            state: JobState | None = None) -> JobSummary:
    """Run one resampling job end to end: validate, read, split, resample, commit, record.

    Nothing is written before the paths are checked (the output may not equal, contain
    or sit inside the input, on any engine), the input's footers agree, ``--where``
    selects something, leftovers of killed runs are recovered and the output schema
    matches an existing table.  SIGTERM raises :class:`~distsmote.sessions.Terminated`.
    """
    from distsmote import manifest as manifests
    from distsmote.engines import engine_class
    from distsmote.engines.files import merge_counts
    from distsmote.paths import check_distinct
    from distsmote.sessions import signal_guard

    state = state if state is not None else JobState()
    config.require_paths()
    check_distinct(config.input, config.output)
    phases = Phases()
    t0 = time.perf_counter()
    cls = engine_class(config.engine)
    # The engine may start (Spark's driver JVM) while the driver builds the sampler
    # and inspects the input; it is stopped if either fails.
    with signal_guard() as guarded, cls.starting(config, progress=progress):
        sampler = make_sampler(config.sampler, config.seed)
        with phases("inspect input"):
            source = resolve_source(config)
            outputs = _outputs(config, source)
        with cls.open(config, verbose=verbose, watch=guarded, progress=progress) as engine:
            for out in outputs.values():
                out.prepare(engine)
            with phases("plan"):
                frame = engine.read(source)
                found = [c for c in engine.columns(frame) if c in source.partition_types]
                if found:  # a reader that found them in the paths: not features
                    frame = engine.drop(frame, found)
                if source.row_filter:  # one pass: a --where that keeps no row is bad input
                    _check_rows(engine, frame, config)
                frames: dict[str, Any] = {}
                if config.test_fraction is not None:
                    train, frames["test"] = _split(config, frame)
                else:
                    train = frame
                main = "train" if config.test_fraction is not None else ""
                frames[main] = sampler.resample(
                    train, label=config.label, indicator=config.indicator,
                    categorical=config.categorical, passthrough=config.passthrough,
                    partition_columns=config.partition_columns, id_column=config.id_column,
                    new_rows_only=may_copy(config, source),
                )
                copies: dict[str, list[str]] = {}
                if sampler.new_rows_only_:  # the input's rows unchanged: copy its files?
                    files = files_to_copy(source, engine.arrow_schema(frames[main]))
                    if files is None:
                        frames[main] = engine.union([train, frames[main]])
                    else:
                        log.info(describe(files, source))
                        copies[main] = files
                schemas = {name: engine.arrow_schema(f) for name, f in frames.items()}
                for name, out in outputs.items():
                    out.check_schema(schemas[name])
            written: dict[str, list] = {}
            committed: dict[str, dict] = {}
            run = manifests.Manifest(config, source, sampler, engine.name)
            try:
                for name in sorted(frames, key=lambda n: n != "test"):  # test first: cheap, untouched
                    with phases(f"write {name}".strip()):
                        written[name] = outputs[name].write(engine, frames[name], config.label,
                                                            copies.get(name, []))
                for name in sorted(frames, key=lambda n: n != "test"):
                    with phases(f"commit {name}".strip()):
                        doc = run.document(sampler, written, phases.seconds, committed)
                        committed[name] = outputs[name].commit(written[name], schemas[name], doc)
                        state.committed = True
            except BaseException as exc:
                from distsmote.sessions import Terminated

                if isinstance(exc, (KeyboardInterrupt, Terminated)):
                    engine.interrupted()
                for name, out in outputs.items():
                    if name not in committed:
                        out.abort()
                raise
            with phases("manifest"):
                doc = run.document(sampler, written, phases.seconds, committed)
                manifests.write_manifest(engine.store(config.output), config.output, doc,
                                         [out.target for out in outputs.values() if out.partition])
    before = dict(sampler.class_counts_)
    after = merge_counts(written[main])
    return JobSummary(engine.name, type(sampler).__name__, before, after, sum(after.values()),
                      time.perf_counter() - t0, doc)
