"""In-process engine for pandas DataFrames (also behind ``fit_resample``)."""

from __future__ import annotations

import os
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


def pandas_label_stats(pdf: pd.DataFrame, label: str, features: Sequence[str]) -> pd.DataFrame:
    """Per-class row counts and non-finite feature counts of one pandas partition.

    One row per class present, with columns ``__class__``, ``__null__`` (label missing),
    ``__rows__`` and one count per feature.
    """
    features = list(features)
    y = pdf[label]
    values = pdf[features].to_numpy(dtype=np.float64, na_value=np.nan)
    frame = pd.DataFrame((~np.isfinite(values)).astype(np.int64), columns=features)
    frame["__rows__"] = np.int64(1)
    frame["__null__"] = y.isna().to_numpy()
    frame["__class__"] = y.astype(object).where(~y.isna(), None).to_numpy()
    return frame.groupby(["__null__", "__class__"], sort=False, dropna=False).sum().reset_index()


def reduce_label_stats(parts: pd.DataFrame, features: Sequence[str]) -> LabelStats:
    """Combine the outputs of :func:`pandas_label_stats` over partitions."""
    from distsmote._strategy import normalise_label

    features = list(features)
    total = parts.groupby(["__null__", "__class__"], sort=False, dropna=False).sum().reset_index()
    null = total["__null__"].astype(bool).to_numpy()
    counts = {
        normalise_label(c): int(n)
        for c, n in zip(total.loc[~null, "__class__"], total.loc[~null, "__rows__"])
    }
    sums = total[features].sum()
    nonfinite = {f: int(sums[f]) for f in features if int(sums[f]) > 0}
    return LabelStats(counts=counts, nonfinite=nonfinite, null_labels=int(total.loc[null, "__rows__"].sum()))


class LocalEngine(Engine):
    """Runs every primitive in the current process on a pandas DataFrame."""

    name = "local"

    def columns(self, frame: pd.DataFrame) -> dict[str, np.dtype | None]:
        return {str(c): numeric_dtype(t) for c, t in frame.dtypes.items()}

    def label_stats(self, frame: pd.DataFrame, label: str, features: Sequence[str]) -> LabelStats:
        return reduce_label_stats(pandas_label_stats(frame, label, features), features)

    def labels_in_memory(self, frame: pd.DataFrame, label: str) -> Any:
        return frame[label].to_numpy()

    def collect_rows(self, frame, label, classes, columns) -> pd.DataFrame:
        return frame.loc[frame[label].isin(list(classes)), list(columns)]

    def broadcast(self, value: Any) -> Any:
        return value

    def generate(self, fn: TaskFn, tasks, handle, like: pd.DataFrame) -> pd.DataFrame:
        threads = os.cpu_count() or 1
        parts = [conform_pandas(fn(t, handle, threads), like.dtypes) for t in tasks]
        if not parts:
            return like.iloc[:0]
        return pd.concat(parts, ignore_index=True)

    def union(self, frames) -> pd.DataFrame:
        return pd.concat(list(frames), ignore_index=True)

    def with_constant(self, frame: pd.DataFrame, name: str, value: bool) -> pd.DataFrame:
        return frame.assign(**{name: np.full(len(frame), value, dtype=bool)})

    # -- kNN join primitives ---------------------------------------------------------

    def num_partitions(self, frame: pd.DataFrame) -> int:
        return 1

    def map_partitions(self, frame, fn: PartitionFn, handle, meta: pd.DataFrame) -> pd.DataFrame:
        return conform_pandas(fn(frame, handle, os.cpu_count() or 1), meta.dtypes)

    def shuffle_map(self, frame, by, fn: PartitionFn, handle, meta, npartitions) -> pd.DataFrame:
        # One in-process "partition": fn sees every group, which is what it requires.
        return conform_pandas(fn(frame, handle, os.cpu_count() or 1), meta.dtypes)

    def aggregate(self, frame: pd.DataFrame, by: str, aggs: dict[str, str]) -> pd.DataFrame:
        return frame.groupby(by, sort=True).agg(aggs).reset_index()

    def collect_small(self, frame: pd.DataFrame, max_rows: int) -> pd.DataFrame:
        if len(frame) > max_rows:
            raise RuntimeError(f"Refusing to collect {len(frame)} rows (limit {max_rows}).")
        return frame.reset_index(drop=True)

    def add_column(self, frame: pd.DataFrame, name: str, fn: ColumnFn, handle) -> pd.DataFrame:
        return frame.assign(**{name: np.asarray(fn(frame, handle), dtype=np.int64)})

    def anti_join(self, frame: pd.DataFrame, keys: pd.DataFrame, on: str) -> pd.DataFrame:
        return frame.loc[~frame[on].isin(keys[on].to_numpy())].reset_index(drop=True)

    def drop(self, frame: pd.DataFrame, columns) -> pd.DataFrame:
        return frame.drop(columns=list(columns))
