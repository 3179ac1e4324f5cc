"""Spark engine: pyspark.sql.DataFrame in, pyspark.sql.DataFrame out, lazily.

Statistics run as one native ``groupBy`` aggregation; Python only runs inside
``mapInArrow`` generation tasks, which resolve the payload from a broadcast variable.
A generation task's input is a single task number from ``spark.range``, so a retried
task recomputes identical rows (nothing depends on ``rand()`` or round-robin order).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from distsmote._strategy import normalise_label
from distsmote.engines.base import Engine, LabelStats, TaskFn

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

_NUMERIC = {
    T.ByteType: np.int8,
    T.ShortType: np.int16,
    T.IntegerType: np.int32,
    T.LongType: np.int64,
    T.FloatType: np.float32,
    T.DoubleType: np.float64,
}


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


class SparkEngine(Engine):
    """Primitives over :class:`pyspark.sql.DataFrame`."""

    name = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def columns(self, frame: DataFrame) -> dict[str, np.dtype | None]:
        out = {}
        for f in frame.schema.fields:
            kind = _NUMERIC.get(type(f.dataType))
            out[f.name] = np.dtype(kind) if kind is not None else None
        return out

    def label_stats(self, frame: DataFrame, label: str, features: Sequence[str]) -> LabelStats:
        floats = {f.name for f in frame.schema.fields if isinstance(f.dataType, (T.FloatType, T.DoubleType))}
        aggs = [F.count(F.lit(1)).alias("__rows__")]
        for i, c in enumerate(features):
            col = F.col(f"`{c}`")
            bad = col.isNull()
            if c in floats:
                bad = bad | F.isnan(col) | (F.abs(col) == F.lit(float("inf")))
            aggs.append(F.sum(F.when(bad, 1).otherwise(0)).alias(f"__f{i}"))
        # One row per class: small by construction.
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
        subset = frame.filter(F.col(f"`{label}`").isin(list(classes)))
        table = subset.select(*[F.col(f"`{c}`") for c in columns]).toArrow()
        return table.to_pandas()  # only the classes being oversampled

    def broadcast(self, value: Any) -> _Payload:
        try:
            return _Payload(broadcast=self.spark.sparkContext.broadcast(value))
        except Exception:  # Spark Connect has no sparkContext: ship with the closure
            return _Payload(value=value)

    def generate(self, fn: TaskFn, tasks, handle: _Payload, like: DataFrame) -> DataFrame:
        schema = like.schema
        arrow_schema = to_arrow_schema(schema)
        tasks = list(tasks)

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            payload = handle.get()
            threads = _task_threads()
            for batch in batches:
                for task_id in batch.column(0).to_pylist():
                    pdf = fn(tasks[task_id], payload, threads)
                    table = pa.Table.from_pandas(pdf[arrow_schema.names], preserve_index=False)
                    yield from table.cast(arrow_schema, safe=False).to_batches()

        n = max(1, len(tasks))
        ids = self.spark.range(0, len(tasks), 1, numPartitions=n)
        return ids.mapInArrow(run, schema)

    def union(self, frames) -> DataFrame:
        frames = list(frames)
        out = frames[0]
        for f in frames[1:]:
            out = out.unionByName(f)
        return out

    def with_constant(self, frame: DataFrame, name: str, value: bool) -> DataFrame:
        return frame.withColumn(name, F.lit(bool(value)))
