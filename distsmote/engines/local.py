"""In-process engine for pandas DataFrames (also behind ``fit_resample``)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from distsmote.engines.base import (
    ColumnFn,
    Engine,
    LabelStats,
    PartitionFn,
    TaskFn,
    conform_pandas,
    numeric_dtype,
)
from distsmote.engines.direct import destinations
from distsmote.progress import stage


def pandas_label_stats(pdf: pd.DataFrame, label: str, features: Sequence[str]) -> pd.DataFrame:
    """Class counts and non-finite feature counts of one pandas partition.

    Returns a small frame: one ``"class"`` row per class present, one ``"null"`` row
    counting missing labels and one ``"nonfinite"`` row with a count per feature.
    """
    features = list(features)
    y = pdf[label]
    null = y.isna().to_numpy()
    counts = y[~null].value_counts(sort=False)
    bad = {}
    for c in features:
        col = pdf[c]
        if col.dtype.kind in "iub":  # numpy ints cannot hold NaN or inf
            bad[c] = 0
        elif numeric_dtype(col.dtype) is None:  # categorical features: count nulls
            bad[c] = int(col.isna().sum())
        else:
            bad[c] = int((~np.isfinite(col.to_numpy(dtype=np.float64, na_value=np.nan))).sum())
    n = len(counts)
    out = pd.DataFrame(
        {
            "__kind__": ["class"] * n + ["null", "nonfinite"],
            "__class__": pd.Series(list(counts.index) + [None, None], dtype=object),
            "__rows__": np.array([*counts.to_numpy(), int(null.sum()), 0], dtype=np.int64),
        }
    )
    for c in features:
        out[c] = np.array([0] * (n + 1) + [bad[c]], dtype=np.int64)
    return out


def reduce_label_stats(parts: pd.DataFrame, features: Sequence[str]) -> LabelStats:
    """Combine the outputs of :func:`pandas_label_stats` over partitions."""
    from distsmote._strategy import normalise_label

    features = list(features)
    classes = parts[parts["__kind__"] == "class"]
    total = classes.groupby("__class__", sort=False)["__rows__"].sum()
    counts = {normalise_label(c): int(n) for c, n in total.items()}
    sums = parts[parts["__kind__"] == "nonfinite"][features].sum()
    nonfinite = {f: int(sums[f]) for f in features if int(sums[f]) > 0}
    null = int(parts.loc[parts["__kind__"] == "null", "__rows__"].sum())
    return LabelStats(counts=counts, nonfinite=nonfinite, null_labels=null)


class LocalEngine(Engine):
    """Runs every primitive in the current process on a pandas DataFrame."""

    name = "local"

    def columns(self, frame: pd.DataFrame) -> dict[str, np.dtype | None]:
        return {str(c): numeric_dtype(t) for c, t in frame.dtypes.items()}

    def label_stats(self, frame: pd.DataFrame, label: str, features: Sequence[str],
                    prefetch: Any = None) -> LabelStats:  # in memory: collect_rows is a filter
        with stage("class statistics"):
            return reduce_label_stats(pandas_label_stats(frame, label, features), features)

    def labels_in_memory(self, frame: pd.DataFrame, label: str) -> Any:
        return frame[label].to_numpy()

    def collect_rows(self, frame, label, classes, columns) -> pd.DataFrame:
        return frame.loc[frame[label].isin(list(classes)), list(columns)]

    def broadcast(self, value: Any) -> Any:
        return value

    def generate(self, fn: TaskFn, tasks, handle, like: pd.DataFrame) -> pd.DataFrame:
        # One task per core, one FAISS thread each (FAISS releases the GIL); OpenMP
        # spreading one task over busy cores is several times slower.
        tasks = list(tasks)
        with stage("generation tasks", total=len(tasks), unit="tasks") as st, \
                ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            parts = []
            for part in pool.map(lambda t: conform_pandas(fn(t, handle, 1), like.dtypes), tasks):
                parts.append(part)
                st.advance(1, len(part))
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

    def _run_parts(
        self, parts: list[pd.DataFrame], fn: PartitionFn, handle, meta, workers: int | None = None
    ) -> pd.DataFrame:
        # One thread per core, one FAISS and one BLAS thread each (numpy, FAISS and the
        # compiled kernels release the GIL): BLAS's own threads on top of the parts'
        # made SMOTEENN at 200 000 rows twice as slow.  The largest parts start first,
        # so uneven parts balance over the threads; the output keeps the parts' order.
        order = sorted(range(len(parts)), key=lambda i: -len(parts[i]))
        with threadpool_limits(limits=1, user_api="blas"), \
                ThreadPoolExecutor(max_workers=max(1, min(len(parts), workers or len(parts)))) as pool:
            done = dict(zip(order, pool.map(lambda i: conform_pandas(fn(parts[i], handle, 1), meta.dtypes), order)))
        outs = [done[i] for i in range(len(parts))]
        return pd.concat(outs, ignore_index=True) if outs else meta

    def map_partitions(self, frame, fn: PartitionFn, handle, meta: pd.DataFrame) -> pd.DataFrame:
        n = max(1, min(os.cpu_count() or 1, len(frame) // 10_000))
        bounds = np.linspace(0, len(frame), n + 1).astype(int)
        parts = [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        return self._run_parts(parts, fn, handle, meta)

    def shuffle_map(self, frame, by, fn: PartitionFn, handle, meta, npartitions, direct=False) -> pd.DataFrame:
        meta = meta.iloc[:0]  # a frame gives its schema
        cores = os.cpu_count() or 1
        n = max(1, int(npartitions)) if direct else max(1, min(4 * cores, len(frame) // 10_000))
        if n == 1:
            return self._run_parts([frame], fn, handle, meta)
        # Direct: the values are the parts.  Else split by a hash of the key so each part
        # holds complete groups; a few parts per core let the pool balance uneven parts.
        part = destinations(frame[by].to_numpy(np.int64), n, direct)
        order = np.argsort(part, kind="stable")
        cuts = np.searchsorted(part[order], np.arange(n + 1))
        parts = [frame.iloc[order[a:b]] for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        return self._run_parts(parts, fn, handle, meta, workers=cores)

    def aggregate(self, frame: pd.DataFrame, by: str, aggs: dict[str, str]) -> pd.DataFrame:
        return frame.groupby(by, sort=True).agg(aggs).reset_index()

    def collect_small(self, frame: pd.DataFrame, max_rows: int) -> pd.DataFrame:
        if len(frame) > max_rows:
            raise RuntimeError(f"Refusing to collect {len(frame)} rows (limit {max_rows}).")
        return frame.reset_index(drop=True)

    def add_column(self, frame: pd.DataFrame, name: str, fn: ColumnFn, handle) -> pd.DataFrame:
        return frame.assign(**{name: np.asarray(fn(frame, handle), dtype=np.int64)})

    def anti_join(self, frame: pd.DataFrame, keys: pd.DataFrame, on: str, by=None) -> pd.DataFrame:
        # The input's index is kept, so fit_resample can report the kept rows' positions.
        values = frame[on].to_numpy() if by is None else np.asarray(by[0](frame, by[1]), dtype=np.int64)
        return frame.loc[~np.isin(values, keys[on].to_numpy())]

    def drop(self, frame: pd.DataFrame, columns) -> pd.DataFrame:
        return frame.drop(columns=list(columns))

    def persist(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame  # already in memory

    def release(self, frame: pd.DataFrame) -> None:
        pass

    # -- I/O ---------------------------------------------------------------------------

    def read(self, source: Any) -> pd.DataFrame:
        from distsmote.where import filter_pandas

        import fsspec
        import pyarrow.parquet as pq

        schema = source.schema if source.widened else None
        files = source.files if source.files is not None else [source.path]
        fs, _ = fsspec.core.url_to_fs(files[0])
        paths = [fsspec.core.url_to_fs(f)[1] for f in files]
        filters = [c.dnf() for c in source.row_filter] or None
        table = pq.read_table(paths if len(paths) > 1 else paths[0], filesystem=fs, schema=schema,
                              partitioning=None, filters=filters)
        frame = table.to_pandas()
        return filter_pandas(frame, source.row_filter).reset_index(drop=True)

    def write_parts(self, frame: pd.DataFrame, directory: str, *, label: str | None = None,
                    token: str = "run", copies: Sequence[str] = ()) -> list[Any]:
        from distsmote.engines.files import copy_part, make_directory, write_pandas

        make_directory(directory)
        parts = []
        with stage("write", total=len(copies) + 1, unit="files") as st:
            for i, path in enumerate(copies):
                parts.append(copy_part(path, directory, token, i, label))
                st.advance(1, parts[-1].rows)
            parts.append(write_pandas(frame, directory, token, len(copies), label))
            st.advance(1, parts[-1].rows)
        return parts

    def arrow_schema(self, frame: pd.DataFrame) -> Any:
        import pyarrow as pa

        return pa.Schema.from_pandas(frame.iloc[:0], preserve_index=False)

