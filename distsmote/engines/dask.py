"""Dask engine: dask.dataframe in, dask.dataframe out, lazily.

The broadcast payload is a single key of the task graph (a literal the scheduler holds),
so a worker that dies is replaced by recomputing from the graph, never from a lost
``scatter``.  Generation tasks are pure functions of (task, payload).
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from distsmote._faults import fault_point
from distsmote._heap import release_free_memory
from distsmote._optional import require
from distsmote._unique import unique_sorted
from distsmote.engines.base import (
    ColumnFn,
    Engine,
    LabelStats,
    PartitionFn,
    Prefetch,
    TaskFn,
    conform_pandas,
    numeric_dtype,
    prefetch_rows,
)
from distsmote.engines.direct import first_values
from distsmote.engines.local import pandas_label_stats, reduce_label_stats
from distsmote.progress import follow, stage

dask = require("dask", "The Dask engine needs dask[dataframe,distributed]", "dask")
dd = require("dask.dataframe", "The Dask engine needs dask[dataframe,distributed]", "dask")


def _task_threads() -> int:
    """FAISS threads for one task.

    Dask runs one task per worker thread, and nannies set ``OMP_NUM_THREADS=1`` so
    tasks do not oversubscribe the cores; honour it (default 1).
    """
    return max(1, int(os.environ.get("OMP_NUM_THREADS") or 1))


def _run_task(fn: TaskFn, task: Any, payload: Any, dtypes: pd.Series) -> pd.DataFrame:
    out = conform_pandas(fn(task, payload, _task_threads()), dtypes)
    release_free_memory()
    return out


def _run_partition(pdf: pd.DataFrame, fn: PartitionFn, payload: Any, dtypes: pd.Series) -> pd.DataFrame:
    out = conform_pandas(fn(pdf, payload, _task_threads()), dtypes)
    release_free_memory()
    return out


def _shuffle_input(pdf: pd.DataFrame) -> pd.DataFrame:
    """The map side of a shuffle, unchanged: fault point ``shuffle`` (fused, no cost)."""
    fault_point("shuffle")
    return pdf


#: The column a direct shuffle (``shuffle_map(direct=True)``) partitions by.
_DIRECT = "__partition__"


@functools.lru_cache(maxsize=64)
def _direct_values(npartitions: int) -> np.ndarray:
    """The value Dask's hash partitioning sends to each partition (:mod:`distsmote.engines.direct`):
    ``partitioning_index`` of the value as float64, as ``shuffle(on=...)`` casts a
    numeric column."""
    from dask.dataframe.shuffle import partitioning_index

    n = int(npartitions)
    return first_values(n, lambda v: partitioning_index(pd.DataFrame({_DIRECT: v.astype(np.float64)}), n))


def _direct_input(pdf: pd.DataFrame, by: str, values: np.ndarray) -> pd.DataFrame:
    """The map side of a direct shuffle: each row's partition value (see :func:`_direct_values`)."""
    fault_point("shuffle")
    return pdf.assign(**{_DIRECT: values[pdf[by].to_numpy(np.int64)]})


def _run_direct(pdf: pd.DataFrame, fn: PartitionFn, payload: Any, dtypes: pd.Series) -> pd.DataFrame:
    return _run_partition(pdf.drop(columns=[_DIRECT]), fn, payload, dtypes)


def _sorted_keys(parts: list[pd.Series]) -> np.ndarray:
    arrays = [p.to_numpy(np.int64) for p in parts]
    return unique_sorted(np.concatenate(arrays)) if arrays else np.empty(0, np.int64)


def _drop_keys(pdf: pd.DataFrame, on: str, keyset: np.ndarray, fn: ColumnFn | None = None,
               payload: Any = None) -> pd.DataFrame:
    values = pdf[on].to_numpy(np.int64) if fn is None else np.asarray(fn(pdf, payload), dtype=np.int64)
    pos = np.minimum(np.searchsorted(keyset, values), max(len(keyset) - 1, 0))
    hit = (keyset[pos] == values) if len(keyset) else np.zeros(len(values), bool)
    return pdf.loc[~hit]


def _client():
    """The current distributed client, if any."""
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _gather(frame: "dd.DataFrame", name: str, each=None, rows: bool = True) -> list[pd.DataFrame]:
    """Compute every partition of ``frame`` to the client, in order, reporting progress.

    For frames that are small by construction.  On a distributed cluster each partition
    is a future followed as it completes (a bar on a terminal, log lines otherwise);
    ``each(position, partition)`` sees them as they arrive and may raise to stop early.
    ``rows``: count the partitions' rows in the progress messages.
    """
    return _gather_delayed(frame.to_delayed(), name, each, rows)


def _gather_delayed(parts: list, name: str, each=None, rows: bool = True) -> list:
    """:func:`_gather` for a list of delayed values, one per unit of progress."""
    client = _client()
    if client is None:  # no distributed client: the local schedulers
        with stage(name, total=len(parts), unit="partitions") as st:
            out = list(dask.compute(*parts))
            for i, pdf in enumerate(out):
                if each is not None:
                    each(i, pdf)
            st.advance(len(parts), sum(map(len, out)) if rows else 0)
        return out
    return follow(client.compute(parts), name, unit="partitions", count=len if rows else None, each=each)


def _stats_and_rows(pdf: pd.DataFrame, label: str, features: list, prefetch: Prefetch,
                    max_rows: int) -> tuple[pd.DataFrame, tuple[pd.DataFrame, list]]:
    return pandas_label_stats(pdf, label, features), prefetch_rows(pdf, label, prefetch, max_rows)


def _concat(parts: list[pd.DataFrame], meta: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(parts) if parts else meta


def _partial_agg(pdf: pd.DataFrame, by: str, aggs: dict[str, str]) -> pd.DataFrame:
    return pdf.groupby(by, sort=False).agg(aggs).reset_index()


def _check_small(n_rows: int, max_rows: int) -> None:
    if n_rows > max_rows:
        raise RuntimeError(
            f"Refusing to collect more than {max_rows} rows to the client (got {n_rows}); "
            "this is a bug in distsmote's planning, please report it."
        )


def _add_column(pdf: pd.DataFrame, name: str, fn: ColumnFn, payload: Any) -> pd.DataFrame:
    return pdf.assign(**{name: np.asarray(fn(pdf, payload), dtype=np.int64)})


def _task_name(fn: Any) -> str:
    """Task-name prefix of a kernel's tasks (``search_buckets-<token>``), so the task
    stream and the dashboard say which kernel a task ran."""
    return getattr(fn, "__name__", "partition").strip("_") or "partition"


class DaskEngine(Engine):
    """Primitives over :class:`dask.dataframe.DataFrame`.

    Parameters
    ----------
    client : distributed.Client, optional
        The client that runs this engine's I/O.  ``None``: the current client
        (``distributed.default_client()``), or Dask's local scheduler if there is none,
        as xgboost's Dask module does.
    """

    name = "dask"

    def __init__(self, client: Any = None) -> None:
        self._explicit_client = client

    @property
    def client(self) -> Any:
        """The explicit client, else the current one (``None``: the local scheduler)."""
        return self._explicit_client if self._explicit_client is not None else _client()

    def columns(self, frame: "dd.DataFrame") -> dict[str, np.dtype | None]:
        return {str(c): numeric_dtype(t) for c, t in frame.dtypes.items()}

    def label_stats(self, frame, label: str, features: Sequence[str], prefetch: Prefetch | None = None) -> LabelStats:
        meta = pandas_label_stats(frame._meta, label, features)
        if prefetch is None:
            parts = frame.map_partitions(pandas_label_stats, label, list(features), meta=meta)
            # One small row per (partition, class): small by construction.
            return reduce_label_stats(_concat(_gather(parts, "class statistics", rows=False), meta), features)
        task = dask.delayed(_stats_and_rows, pure=True)
        max_rows = prefetch.max_rows(frame.npartitions)
        jobs = [task(p, label, list(features), prefetch, max_rows) for p in frame.to_delayed()]
        # Per partition: a few counts, and rows of its smaller classes within its share.
        done = _gather_delayed(jobs, "class statistics", rows=False)
        stats = reduce_label_stats(_concat([d[0] for d in done], meta), features)
        self._keep_prefetched(frame, label, prefetch, stats.counts, [d[1] for d in done])
        return stats

    def collect_rows(self, frame, label, classes, columns) -> pd.DataFrame:
        rows = self._take_prefetched(frame, label, classes, columns)
        if rows is not None:
            return rows
        subset = frame[frame[label].isin(list(classes))][list(columns)]
        # Only the classes being oversampled.
        return _concat(_gather(subset, "collecting rows"), subset._meta)

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
        return frame.map_partitions(_run_partition, fn, handle, meta.dtypes, meta=meta, token=_task_name(fn))

    def shuffle_map(self, frame, by, fn: PartitionFn, handle, meta, npartitions, direct=False):
        n = max(1, int(npartitions))
        meta = getattr(meta, "_meta", meta)  # a Dask frame gives its schema
        if direct:  # shuffled by a value whose hash is the partition number
            values = _direct_values(n)
            sent = frame.map_partitions(_direct_input, by, values,
                                        meta=frame._meta.assign(**{_DIRECT: np.array([], np.int64)}))
            shuffled = sent.shuffle(on=_DIRECT, npartitions=n)
            return shuffled.map_partitions(_run_direct, fn, handle, meta.dtypes, meta=meta, token=_task_name(fn))
        sent = frame.map_partitions(_shuffle_input, meta=frame._meta)
        shuffled = sent.shuffle(on=by, npartitions=n)
        return shuffled.map_partitions(_run_partition, fn, handle, meta.dtypes, meta=meta, token=_task_name(fn))

    def aggregate(self, frame, by: str, aggs: dict[str, str]) -> pd.DataFrame:
        # Partial aggregates per partition (the pass over the data, followed with
        # progress), then a tree reduction of those: sum, max and min compose.
        meta = _partial_agg(frame._meta, by, aggs)
        partial = frame.map_partitions(_partial_agg, by, aggs, meta=meta)
        client = _client()
        if client is not None:
            from distributed import futures_of

            partial = client.persist(partial)
            follow(futures_of(partial), f"aggregating by {by}", unit="partitions", gather=False)
            out = partial.groupby(by).agg(aggs).compute()  # one row per group: small
        else:
            with stage(f"aggregating by {by}"):
                out = partial.groupby(by).agg(aggs).compute()
        return out.reset_index().sort_values(by, ignore_index=True)

    def collect_small(self, frame, max_rows: int) -> pd.DataFrame:
        # Partitions arrive one by one; stop as soon as the total is too large.
        total = 0

        def check(_i: int, pdf: pd.DataFrame) -> None:
            nonlocal total
            total += len(pdf)
            _check_small(total, max_rows)

        parts = _gather(frame, "collecting a sample", each=check)
        out = pd.concat(parts, ignore_index=True) if parts else frame._meta
        return out.reset_index(drop=True)

    def add_column(self, frame, name: str, fn: ColumnFn, handle):
        meta = frame._meta.assign(**{name: np.array([], dtype=np.int64)})
        return frame.map_partitions(_add_column, name, fn, handle, meta=meta)

    def anti_join(self, frame, keys, on: str, by=None):
        # A broadcast anti-join: the key set is assembled on a worker (one task of the
        # graph, never on the client) and every partition of ``frame`` is filtered
        # against it, so the large frame is never shuffled.  With ``by``, the keys are
        # computed in the filtering task: a separate task would compute them as soon as
        # ``frame`` exists and hold a keyed copy of it while the join runs.
        keyset = dask.delayed(_sorted_keys, pure=True)(keys[on].to_delayed())
        fn, handle = by if by is not None else (None, None)
        return frame.map_partitions(_drop_keys, on, keyset, fn, handle, meta=frame._meta, token="drop_keys")

    def drop(self, frame, columns):
        return frame.drop(columns=list(columns))

    def persist(self, frame):
        # Held in the workers' memory (spilled to disk above their memory limit); the
        # futures are released with the returned collection.
        client = self.client
        return client.persist(frame) if client is not None else frame.persist()

    def release(self, frame) -> None:
        # Nothing to do: the persisted futures go with the last reference to the frame.
        # (Cancelling them would also cancel keys that frames built on it still need.)
        pass

    # -- session and I/O ---------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def open(cls, config: Any, *, verbose: bool = False, watch: bool = False,
             progress: bool = True) -> Iterator["DaskEngine"]:
        """Connect to ``dask.scheduler``, or start an embedded local cluster on 127.0.0.1
        (:func:`distsmote.engines.dask_session.dask_client`).

        With ``watch``, a thread fails the job (in the main thread) when no worker has
        been connected for ``dask.no_workers_timeout`` seconds.
        """
        from distsmote.engines.dask_session import dask_client

        with dask_client(config, verbose=verbose, watch=watch) as client:
            yield cls(client)

    def read(self, source: Any) -> "dd.DataFrame":
        from distsmote.where import filter_pandas

        files = source.files if source.files is not None else source.path
        filters = [c.dnf() for c in source.row_filter] or None
        frame = dd.read_parquet(files, filters=filters)
        if source.widened and source.schema is not None:
            # dask reads each file with its own types (meta from the first): cast lazily
            frame = frame.astype(_numeric_dtypes(source.schema))
        if source.row_filter:
            frame = frame.map_partitions(filter_pandas, source.row_filter, meta=frame._meta)
        return frame

    def write_parts(self, frame, directory: str, *, label: str | None = None,
                    token: str = "run", copies: Sequence[str] = ()) -> list[Any]:
        from distsmote.engines.files import copy_part, make_directory, write_pandas

        make_directory(directory)
        copy = dask.delayed(copy_part, pure=True)
        writer = dask.delayed(write_pandas, pure=True)
        jobs = [copy(path, directory, token, i, label) for i, path in enumerate(copies)]
        jobs += [writer(part, directory, token, i, label) for i, part in enumerate(frame.to_delayed(), len(jobs))]
        client = self.client
        if client is None:  # no distributed client: the local scheduler
            with stage("write", total=len(jobs), unit="files") as st:
                parts = list(dask.compute(*jobs))
                st.advance(len(jobs), sum(p.rows for p in parts))
            return parts
        return follow(client.compute(jobs), "write", unit="files", count=lambda p: p.rows)

    def arrow_schema(self, frame) -> Any:
        import pyarrow as pa

        return pa.Schema.from_pandas(frame._meta, preserve_index=False)


def _numeric_dtypes(schema: Any) -> dict[str, Any]:
    """numpy dtypes of a schema's int and float columns (the only ones that widen)."""
    import pyarrow as pa

    return {
        f.name: f.type.to_pandas_dtype()
        for f in schema
        if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
    }

