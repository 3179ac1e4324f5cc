"""Spark engine: pyspark.sql.DataFrame in, pyspark.sql.DataFrame out, lazily.

Statistics run as one native ``groupBy`` aggregation, except on a plain Parquet input
that a job read (:mod:`distsmote.engines.spark_files`), whose statistics, collected rows
and copy in a write run in Python tasks that read the files.  Generation runs inside
``mapInArrow`` tasks, which resolve the payload from a broadcast variable.
A generation task's input is a single task number from ``spark.range``, so a retried
task recomputes identical rows (nothing depends on ``rand()`` or round-robin order).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from distsmote._faults import fault_point
from distsmote._strategy import normalise_label
from distsmote.engines.base import ColumnFn, Engine, LabelStats, PartitionFn, Prefetch, TaskFn
from distsmote.engines.direct import first_values
from distsmote.engines.spark_files import (
    FileScan, read_label_stats, read_rows, remember_scan, scan_label_stats, scan_of, scan_rows, schema_hint,
)
from distsmote.engines.spark_interrupts import interruptible, spark_interrupted
from distsmote.engines.spark_parts import (
    Generation,
    part_rows,
    remember_generation,
    remember_union,
    to_part_files,
)
from distsmote.engines.spark_session import spark_session
from distsmote.progress import stage

try:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import to_arrow_schema
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "The Spark engine needs pyspark>=4.0. Install it with `pip install 'distsmote[spark]'`."
    ) from exc

from distsmote.engines.spark_shuffle import (  # noqa: E402
    BLOCK, BLOCK_SCHEMA, MADE, PARTITION, block_bytes, from_blocks, made, table_of, to_blocks,
)
from distsmote.engines.spark_types import (  # noqa: E402
    column_kinds, numpy_dtypes, schema_from_meta, to_batches, to_table,
)


def _task_threads() -> int:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return max(1, ctx.cpus()) if ctx is not None else 1


class _Payload:
    """Resolves a payload that is a broadcast variable or, on Spark Connect, a value."""

    def __init__(self, broadcast: Any = None, value: Any = None) -> None:
        self._broadcast = broadcast
        self._value = value

    def get(self) -> Any:
        return self._broadcast.value if self._broadcast is not None else self._value


def _active_tasks(spark: SparkSession):
    """``poll()`` for :func:`distsmote.progress.stage`: tasks done/total of active stages."""
    try:
        tracker = spark.sparkContext.statusTracker()
    except Exception:  # Spark Connect has no sparkContext
        return None

    def poll() -> tuple[int, int] | None:
        done = total = 0
        for stage_id in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                done += info.numCompletedTasks
                total += info.numTasks
        return (done, total) if total else None

    return poll


class SparkEngine(Engine):
    """Primitives over :class:`pyspark.sql.DataFrame`.

    Work that runs on the driver's behalf (statistics, collects, aggregations) is
    reported as a :func:`distsmote.progress.stage`: start and end lines, and running
    lines with the task counts of Spark's active stages.  On a terminal the bar is
    Spark's own console progress bar (``spark.ui.showConsoleProgress``).
    """

    name = "spark"

    def __init__(self, spark: SparkSession | None = None) -> None:
        if spark is None:
            spark = SparkSession.getActiveSession()
            if spark is None:
                raise RuntimeError("no active SparkSession: create one, or pass it as SparkEngine(spark)")
        self.spark = spark
        self._direct_cache: dict[int, list[int]] = {}  # see _direct_values

    def _arrow_schema(self, schema: T.StructType) -> pa.Schema:
        """The Arrow schema of ``schema``; timestamps carry the session time zone."""
        return to_arrow_schema(schema, timezone=self.spark.conf.get("spark.sql.session.timeZone", "UTC"))

    def _stage(self, name: str):
        return stage(name, unit="tasks", bar=False, poll=_active_tasks(self.spark))

    def columns(self, frame: DataFrame) -> dict[str, np.dtype | None]:
        return numpy_dtypes(frame.schema)

    def column_kinds(self, frame: DataFrame) -> dict[str, str]:
        return column_kinds(frame.schema)

    def nullable(self, frame: DataFrame, columns) -> DataFrame:
        return frame  # every Spark column can hold nulls

    def label_stats(self, frame: DataFrame, label: str, features: Sequence[str],
                    prefetch: Prefetch | None = None) -> LabelStats:
        scan = scan_of(frame)
        if scan is not None:  # Python tasks read the files (spark_files)
            with self._stage("class statistics"):
                rows = interruptible(scan_label_stats(self.spark, scan, label, features, prefetch).collect)
            stats, parts = read_label_stats(rows)
            if prefetch is not None:
                self._keep_prefetched(frame, label, prefetch, stats.counts, parts)
            return stats
        floats = {f.name for f in frame.schema.fields if isinstance(f.dataType, (T.FloatType, T.DoubleType))}
        aggs = [F.count(F.lit(1)).alias("__rows__")]
        for i, c in enumerate(features):
            col = F.col(f"`{c}`")
            bad = col.isNull()
            if c in floats:
                bad = bad | F.isnan(col) | (F.abs(col) == F.lit(float("inf")))
            aggs.append(F.sum(F.when(bad, 1).otherwise(0)).alias(f"__f{i}"))
        # One row per class: small by construction.
        with self._stage("class statistics"):
            rows = frame.groupBy(F.col(f"`{label}`").alias("__class__")).agg(*aggs).collect()
        counts, nonfinite, null = {}, dict.fromkeys(features, 0), 0
        for r in rows:
            if r["__class__"] is None:
                null += int(r["__rows__"])
            else:
                counts[normalise_label(r["__class__"])] = int(r["__rows__"])
            for i, c in enumerate(features):
                nonfinite[c] += int(r[f"__f{i}"] or 0)
        return LabelStats(counts, {c: n for c, n in nonfinite.items() if n}, null)

    def collect_rows(self, frame, label, classes, columns) -> pd.DataFrame:
        held = self._take_prefetched(frame, label, classes, columns)
        if held is not None:
            return held
        scan = scan_of(frame)
        if scan is not None:  # Python tasks read the files (spark_files)
            with self._stage("collecting rows"):
                rows = interruptible(scan_rows(self.spark, scan, label, classes, columns).collect)
            return read_rows(rows, scan, columns).to_pandas()
        subset = frame.filter(F.col(f"`{label}`").isin(list(classes)))
        with self._stage("collecting rows"):
            table = subset.select(*[F.col(f"`{c}`") for c in columns]).toArrow()
        return table.to_pandas()  # only the classes being oversampled

    def broadcast(self, value: Any) -> _Payload:
        try:
            return _Payload(broadcast=self.spark.sparkContext.broadcast(value))
        except Exception:  # Spark Connect has no sparkContext: ship with the closure
            return _Payload(value=value)

    def generate(self, fn: TaskFn, tasks, handle: _Payload, like: DataFrame) -> DataFrame:
        schema = like.schema
        arrow_schema = self._arrow_schema(schema)
        tasks = list(tasks)

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            payload = handle.get()
            threads = _task_threads()
            for batch in batches:
                for task_id in batch.column(0).to_pylist():
                    yield from to_batches(fn(tasks[task_id], payload, threads), arrow_schema)
                    # The rows are downstream now: in a write, the Parquet writer of this
                    # task attempt has them, so a fault here fails the task mid-write.
                    fault_point("generate.emitted")

        n = max(1, len(tasks))
        ids = self.spark.range(0, len(tasks), 1, numPartitions=n)
        # A write of these rows generates them in its own tasks (spark_parts).
        return remember_generation(ids.mapInArrow(run, schema),
                                   Generation(fn, tasks, handle, to_batches, _task_threads))

    def union(self, frames) -> DataFrame:
        frames = list(frames)
        out = frames[0]
        for f in frames[1:]:
            out = out.unionByName(f)
        return remember_union(out, frames)

    def with_constant(self, frame: DataFrame, name: str, value: bool) -> DataFrame:
        out = frame.withColumn(name, F.lit(bool(value)))
        scan = scan_of(frame)
        return remember_scan(out, scan.with_constant(name, value)) if scan is not None else out

    # -- kNN join primitives ---------------------------------------------------------

    def num_partitions(self, frame: DataFrame) -> int:
        try:
            return int(frame.rdd.getNumPartitions())
        except Exception:  # Spark Connect has no RDD API
            return int(self.spark.conf.get("spark.sql.shuffle.partitions") or 200)

    def map_partitions(self, frame: DataFrame, fn: PartitionFn, handle: _Payload, meta) -> DataFrame:
        # A map of a frame a Python task makes runs in that task: the rows between the
        # two functions never cross into the JVM and back (Dask's blockwise fusion).
        schema = schema_from_meta(meta)
        arrow_schema = self._arrow_schema(schema)
        source, upstream = MADE.get(frame, (frame, None))

        def produce(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
            payload, threads = handle.get(), _task_threads()
            tables = upstream(batches) if upstream is not None else (pa.Table.from_batches([b]) for b in batches)
            for table in tables:
                if table.num_rows:
                    yield to_table(fn(table.to_pandas(), payload, threads), arrow_schema)

        return made(source, produce, schema)

    def _direct_values(self, npartitions: int) -> list[int]:
        """The value ``repartition(n, col)`` (``pmod(hash(col), n)``, Murmur3 with seed 42)
        sends to each partition (:mod:`distsmote.engines.direct`): candidates hashed by
        Spark, 64·n numbers to the driver per try, remembered per ``n``."""
        cache = self._direct_cache
        n = int(npartitions)

        def partition_of(values: np.ndarray) -> np.ndarray:
            ids = self.spark.range(int(values[0]), int(values[-1]) + 1)
            table = ids.select("id", F.pmod(F.hash(F.col("id")), F.lit(n)).alias("p")).toArrow()
            order = np.argsort(table.column("id").to_numpy())
            return table.column("p").to_numpy()[order]

        if n not in cache:
            cache[n] = [int(v) for v in first_values(n, partition_of)]
        return cache[n]

    def shuffle_map(self, frame: DataFrame, by, fn: PartitionFn, handle: _Payload, meta, npartitions,
                    direct=False):
        schema = meta.schema if isinstance(meta, DataFrame) else schema_from_meta(meta)
        arrow_schema = self._arrow_schema(schema)
        n = max(1, int(npartitions))
        producer = MADE.get(frame)
        if producer is not None:  # the task that makes the rows sends them in blocks (spark_shuffle)
            source, upstream = producer
            values = self._direct_values(n)
            max_bytes = block_bytes(int(self.spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")))

            def send(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
                fault_point("shuffle")
                yield from to_blocks(upstream(batches), by, n, direct, values, max_bytes)

            shuffled = source.mapInArrow(send, BLOCK_SCHEMA).repartition(n, F.col(PARTITION)).select(BLOCK)
            read = from_blocks
        else:
            if direct:  # shuffled by a value whose hash is the partition number
                values = F.array(*[F.lit(v).cast("long") for v in self._direct_values(n)])  # hashed as long
                keyed = frame.withColumn(PARTITION, F.element_at(values, F.col(f"`{by}`").cast("int") + 1))
                shuffled = keyed.repartition(n, F.col(PARTITION)).drop(PARTITION)
            else:
                shuffled = frame.repartition(n, F.col(f"`{by}`"))
            read = table_of

        def produce(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
            table = read(batches)
            if table is not None and table.num_rows:
                pdf = table.to_pandas()
                del table
                yield to_table(fn(pdf, handle.get(), _task_threads()), arrow_schema)

        return made(shuffled, produce, schema)

    def aggregate(self, frame: DataFrame, by: str, aggs: dict[str, str]) -> pd.DataFrame:
        funcs = {"sum": F.sum, "max": F.max, "min": F.min}
        exprs = [funcs[how](F.col(f"`{c}`")).alias(c) for c, how in aggs.items()]
        # One row per group: small by construction.
        with self._stage(f"aggregating by {by}"):
            out = frame.groupBy(F.col(f"`{by}`")).agg(*exprs).toArrow().to_pandas()
        return out.sort_values(by, ignore_index=True)

    def collect_small(self, frame: DataFrame, max_rows: int) -> pd.DataFrame:
        with self._stage("collecting a sample"):
            table = frame.limit(max_rows + 1).toArrow()
        if table.num_rows > max_rows:
            raise RuntimeError(f"Refusing to collect more than {max_rows} rows.")
        return table.to_pandas()

    def add_column(self, frame: DataFrame, name: str, fn: ColumnFn, handle: _Payload) -> DataFrame:
        schema = T.StructType([*frame.schema.fields, T.StructField(name, T.LongType(), True)])
        arrow_schema = self._arrow_schema(schema)

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            payload = handle.get()
            for batch in batches:
                values = np.asarray(fn(batch.to_pandas(), payload), dtype=np.int64)
                columns = [*batch.columns, pa.array(values, type=pa.int64())]
                table = pa.Table.from_arrays(columns, names=arrow_schema.names)
                yield from table.cast(arrow_schema, safe=False).to_batches()

        return frame.mapInArrow(run, schema)

    def anti_join(self, frame: DataFrame, keys: DataFrame, on: str, by=None) -> DataFrame:
        keyed = frame if by is None else self.add_column(frame, on, by[0], by[1])
        # No broadcast hint: a broadcast table is collected on the driver first, and the
        # keys grow with the data.  Spark broadcasts small key sets itself.
        kept = keyed.join(keys.select(F.col(f"`{on}`")), on=on, how="left_anti")
        return kept if by is None else kept.drop(on)

    def drop(self, frame: DataFrame, columns) -> DataFrame:
        return frame.drop(*columns)

    def persist(self, frame: DataFrame) -> DataFrame:
        # Cached in the executors' block managers (memory, then local disk) by the first
        # pass; a lost block is recomputed from the lineage.  Kept until ``release`` or
        # ``spark.catalog.clearCache()``, or the end of the session.
        from pyspark import StorageLevel

        MADE.pop(frame, None)  # later maps and shuffles read the cache, not the task again
        return frame.persist(StorageLevel.MEMORY_AND_DISK)

    def release(self, frame: DataFrame) -> None:
        frame.unpersist()

    # -- session and I/O ---------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def starting(cls, config: Any, *, progress: bool = True) -> Iterator[None]:
        """Launch the driver JVM while the driver plans
        (:func:`distsmote.engines.spark_session.prelaunch`); stop it if unused."""
        from distsmote.engines.spark_session import cancel_prelaunch, prelaunch

        prelaunch(config, progress=progress)
        try:
            yield
        finally:
            cancel_prelaunch()

    @classmethod
    @contextlib.contextmanager
    def open(cls, config: Any, *, verbose: bool = False, watch: bool = False,
             progress: bool = True) -> Iterator["SparkEngine"]:
        """Use the active SparkSession, or create one (under spark-submit, its master):
        :func:`distsmote.engines.spark_session.spark_session`."""
        with spark_session(config, verbose=verbose, progress=progress) as session:
            yield cls(session)

    def interrupted(self) -> None:
        spark_interrupted(self.spark)

    def store(self, url: str) -> Any:
        from distsmote.commit import HadoopStore

        return HadoopStore(self.spark)

    def read(self, source: Any) -> DataFrame:
        from distsmote.where import to_sql

        from pyspark.sql.pandas.types import from_arrow_schema

        reader = self.spark.read
        hint = source.schema if source.widened else schema_hint(source)
        if hint is not None:
            reader = reader.schema(from_arrow_schema(hint))
        frame = reader.parquet(*source.files) if source.files is not None else reader.parquet(source.path)
        if source.row_filter:
            return frame.where(to_sql(source.row_filter))
        try:
            parallelism = int(self.spark.sparkContext.defaultParallelism)
        except Exception:  # Spark Connect: the JVM reads the files
            return frame
        return remember_scan(frame, FileScan.of(source, self.arrow_schema(frame), parallelism))

    def write_parts(self, frame: DataFrame, directory: str, *, label: str | None = None,
                    token: str = "run", copies: Sequence[str] = ()) -> list[Any]:
        """Python tasks write the part files (:mod:`distsmote.engines.spark_parts`:
        generated rows never enter the JVM; copies of input files run in the same job)."""
        from distsmote.engines.files import make_directory

        make_directory(directory)
        parts = part_rows(self.spark, frame, self.arrow_schema(frame), directory, label, token, list(copies))
        with self._stage("write"):  # one small row per part file
            return to_part_files(interruptible(parts.collect))

    def arrow_schema(self, frame: DataFrame) -> Any:
        return to_arrow_schema(frame.schema, timezone="UTC")  # Parquet's instants: UTC
