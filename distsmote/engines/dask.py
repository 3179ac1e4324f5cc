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

from distsmote.engines.base import Engine, LabelStats, TaskFn, conform_pandas, numeric_dtype
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
