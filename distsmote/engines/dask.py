"""Dask engine: dask.dataframe in, dask.dataframe out, lazily.

The broadcast payload is a single key of the task graph (a literal the scheduler holds),
so a worker that dies is replaced by recomputing from the graph, never from a lost
``scatter``.  Generation tasks are pure functions of (task, payload).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from distsmote.engines.base import (
    ColumnFn,
    Engine,
    LabelStats,
    PartitionFn,
    TaskFn,
    conform_pandas,
    numeric_dtype,
)
from distsmote.engines.local import pandas_label_stats, reduce_label_stats

try:
    import dask
    import dask.dataframe as dd
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "The Dask engine needs dask[dataframe,distributed]. Install it with "
        "`pip install 'distsmote[dask]'`."
    ) from exc


def _task_threads() -> int:
    """FAISS threads for one task.

    Dask runs one task per worker thread, and nannies set ``OMP_NUM_THREADS=1`` so
    tasks do not oversubscribe the cores; honour it (default 1).
    """
    return max(1, int(os.environ.get("OMP_NUM_THREADS") or 1))


def _run_task(fn: TaskFn, task: Any, payload: Any, dtypes: pd.Series) -> pd.DataFrame:
    return conform_pandas(fn(task, payload, _task_threads()), dtypes)


def _run_partition(pdf: pd.DataFrame, fn: PartitionFn, payload: Any, dtypes: pd.Series) -> pd.DataFrame:
    return conform_pandas(fn(pdf, payload, _task_threads()), dtypes)


def _add_column(pdf: pd.DataFrame, name: str, fn: ColumnFn, payload: Any) -> pd.DataFrame:
    return pdf.assign(**{name: np.asarray(fn(pdf, payload), dtype=np.int64)})


class DaskEngine(Engine):
    """Primitives over :class:`dask.dataframe.DataFrame`."""

    name = "dask"

    def columns(self, frame: "dd.DataFrame") -> dict[str, np.dtype | None]:
        return {str(c): numeric_dtype(t) for c, t in frame.dtypes.items()}

    def label_stats(self, frame, label: str, features: Sequence[str]) -> LabelStats:
        meta = pandas_label_stats(frame._meta, label, features)
        parts = frame.map_partitions(pandas_label_stats, label, list(features), meta=meta)
        # One small row per (partition, class): small by construction.
        return reduce_label_stats(parts.compute(), features)

    def collect_rows(self, frame, label, classes, columns) -> pd.DataFrame:
        subset = frame[frame[label].isin(list(classes))][list(columns)]
        return subset.compute()  # only the classes being oversampled

    def broadcast(self, value: Any) -> Any:
        return dask.delayed(value, pure=True, traverse=False)

    def generate(self, fn: TaskFn, tasks, handle, like) -> "dd.DataFrame":
        meta = like._meta
        run = dask.delayed(_run_task, pure=True)
        parts = [run(fn, t, handle, meta.dtypes) for t in tasks]
        if not parts:
            return dd.from_pandas(meta, npartitions=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return dd.from_delayed(parts, meta=meta, verify_meta=False)

    def union(self, frames) -> "dd.DataFrame":
        return dd.concat(list(frames), ignore_unknown_divisions=True)

    def with_constant(self, frame, name: str, value: bool):
        return frame.assign(**{name: value}).astype({name: bool})

    # -- kNN join primitives ---------------------------------------------------------

    def num_partitions(self, frame) -> int:
        return int(frame.npartitions)

    def map_partitions(self, frame, fn: PartitionFn, handle, meta: pd.DataFrame):
        return frame.map_partitions(_run_partition, fn, handle, meta.dtypes, meta=meta)

    def shuffle_map(self, frame, by, fn: PartitionFn, handle, meta, npartitions):
        shuffled = frame.shuffle(on=by, npartitions=max(1, int(npartitions)))
        return shuffled.map_partitions(_run_partition, fn, handle, meta.dtypes, meta=meta)

    def aggregate(self, frame, by: str, aggs: dict[str, str]) -> pd.DataFrame:
        # One row per group: small by construction.
        out = frame.groupby(by).agg(aggs).compute()
        return out.reset_index().sort_values(by, ignore_index=True)

    def collect_small(self, frame, max_rows: int) -> pd.DataFrame:
        out = frame.compute()  # a sample: small by construction, checked below
        if len(out) > max_rows:
            raise RuntimeError(f"Refusing to collect {len(out)} rows (limit {max_rows}).")
        return out.reset_index(drop=True)

    def add_column(self, frame, name: str, fn: ColumnFn, handle):
        meta = frame._meta.assign(**{name: np.array([], dtype=np.int64)})
        return frame.map_partitions(_add_column, name, fn, handle, meta=meta)

    def anti_join(self, frame, keys, on: str):
        hit = "__distsmote_hit__"
        marked = keys[[on]].assign(**{hit: True})
        joined = frame.merge(marked, on=on, how="left")
        return joined[joined[hit].isna()].drop(columns=[hit])

    def drop(self, frame, columns):
        return frame.drop(columns=list(columns))
