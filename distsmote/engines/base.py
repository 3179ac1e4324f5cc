"""The engine protocol: the few primitives the samplers are written against.

A sampler never imports an engine and an engine knows nothing about SMOTE.  Engines
supply schema inspection, one aggregation pass for class statistics, a filtered collect
of a small subset, broadcast, task-based generation and union.  Every primitive that
returns data to the driver returns something small by construction, and reports its
progress as a :func:`distsmote.progress.stage` (log lines; a bar on a terminal).

A job (:mod:`distsmote.job`) also asks its engine to start or join its cluster
(:meth:`Engine.open`), to read a :class:`distsmote.inputs.Source` (:meth:`Engine.read`),
to write part files (:meth:`Engine.write_parts`) and for the filesystem that commits
them (:meth:`Engine.store`), so no code outside the engines branches on the engine.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: ``fn(task, payload, threads) -> pandas.DataFrame`` run inside a worker task.
TaskFn = Callable[[Any, Any, int], pd.DataFrame]
#: ``fn(partition, payload, threads) -> pandas.DataFrame`` run on one partition.
PartitionFn = Callable[[pd.DataFrame, Any, int], pd.DataFrame]
#: ``fn(partition, payload) -> numpy array`` of one value per row of the partition.
ColumnFn = Callable[[pd.DataFrame, Any], np.ndarray]


@dataclass
class LabelStats:
    """What one pass over the data tells the driver.

    Attributes
    ----------
    counts : dict
        ``{class: rows}``.
    nonfinite : dict
        ``{feature: rows with NaN, ±inf or null}``, only columns with at least one.
    null_labels : int
        Rows whose label is missing.
    """

    counts: dict
    nonfinite: dict = field(default_factory=dict)
    null_labels: int = 0

    @staticmethod
    def total(parts: Iterable["LabelStats"]) -> "LabelStats":
        """The statistics of the union of the parts' rows."""
        out = LabelStats({})
        for p in parts:
            for key, value in p.counts.items():
                out.counts[key] = out.counts.get(key, 0) + value
            for key, value in p.nonfinite.items():
                out.nonfinite[key] = out.nonfinite.get(key, 0) + value
            out.null_labels += p.null_labels
        return out


@dataclass(frozen=True)
class Prefetch:
    """A request to the class-statistics pass: also bring back the rows that a later
    :meth:`Engine.collect_rows` will want, so the oversamplers read the data once.

    Each partition returns its rows of every class but its own largest (the majority,
    whose rows are never collected), as long as they fit in an even share of ``budget``;
    a partition over its share returns none.  A class whose rows some partition kept
    back is collected by the usual pass, so the outcome never depends on the data's
    partitioning, only the number of passes does.

    Attributes
    ----------
    columns : tuple of str
        The columns to bring back (the label included).
    budget : int
        Bytes the rows may take on the driver, estimated as 8 per value.
    """

    columns: tuple[str, ...]
    budget: int

    def max_rows(self, partitions: int) -> int:
        """Rows one of ``partitions`` partitions may return."""
        return self.budget // (8 * max(1, len(self.columns)) * max(1, partitions))


def prefetch_rows(pdf: pd.DataFrame, label: str, prefetch: Prefetch, max_rows: int) -> tuple[pd.DataFrame, list]:
    """One partition's part of a :class:`Prefetch`: its rows of every class but its
    largest, and the classes whose rows it kept back (the largest, or all when the
    others exceed ``max_rows``)."""
    y = pdf[label]
    counts = y.value_counts(dropna=True)
    columns = list(prefetch.columns)
    if not len(counts):
        return pdf[columns].iloc[:0], []
    largest = counts.index[int(np.argmax(counts.to_numpy()))]
    if int(counts.sum() - counts.max()) > max_rows:
        return pdf[columns].iloc[:0], list(counts.index)
    return pdf.loc[y.notna() & (y != largest), columns], [largest]


@dataclass
class Prefetched:
    """Rows a class-statistics pass brought back (:class:`Prefetch`), for one frame."""

    frame: Any
    label: str
    columns: tuple[str, ...]
    complete: frozenset  # classes all of whose rows are in ``rows``
    rows: pd.DataFrame


class Engine(ABC):
    """Primitives a sampler may use.  Subclasses wrap one kind of frame."""

    #: Short name used in logs and errors ("local", "dask", "spark").
    name: str = "engine"
    #: Rows the last class-statistics pass brought back (see :class:`Prefetch`).
    _prefetched: Prefetched | None = None

    def _keep_prefetched(self, frame: Any, label: str, prefetch: Prefetch, counts: dict,
                         parts: list[tuple[pd.DataFrame | None, list]]) -> None:
        """Hold the partitions' :func:`prefetch_rows` results (rows, classes kept back)
        for :meth:`_take_prefetched`."""
        from distsmote._strategy import normalise_label

        held = {normalise_label(c) for _, back in parts for c in back}
        rows = [r for r, _ in parts if r is not None and len(r)]
        self._prefetched = Prefetched(
            frame, label, prefetch.columns, frozenset(c for c in counts if c not in held),
            pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=list(prefetch.columns)),
        )

    def _take_prefetched(self, frame: Any, label: str, classes: Sequence[Any],
                         columns: Sequence[str]) -> pd.DataFrame | None:
        """The rows of ``classes`` from the last statistics pass over ``frame``, if it
        brought all of them back (then forgotten), else ``None``."""
        held = self._prefetched
        if held is None or held.frame is not frame or held.label != label \
                or not set(classes) <= held.complete or not set(columns) <= set(held.columns):
            return None
        self._prefetched = None
        rows = held.rows
        rows = rows.loc[rows[label].isin(list(classes)), list(columns)].reset_index(drop=True)
        logging.getLogger("distsmote").info(
            "collecting rows: %d rows, brought back by the class statistics' pass", len(rows))
        return rows

    @abstractmethod
    def columns(self, frame: Any) -> dict[str, np.dtype | None]:
        """Column names in order, with the numpy dtype of numeric columns (else ``None``)."""

    def column_kinds(self, frame: Any) -> dict[str, str]:
        """Each column's logical kind (:func:`distsmote.columns.pandas_kind`'s names)."""
        from distsmote.columns import pandas_kind

        return {str(c): pandas_kind(t) for c, t in frame.dtypes.items()}

    def nullable(self, frame: Any, columns: Sequence[str]) -> Any:
        """Let these columns hold nulls, keeping their type (numpy int/bool → nullable)."""
        casts = {c: nullable_dtype(frame.dtypes[c]) for c in columns}
        casts = {c: t for c, t in casts.items() if t is not None}
        return frame.astype(casts) if casts else frame

    @abstractmethod
    def label_stats(self, frame: Any, label: str, features: Sequence[str],
                    prefetch: Prefetch | None = None) -> LabelStats:
        """Class counts and non-finite feature counts, in one pass over the data.

        With ``prefetch``, an engine may also bring back the rows a later
        :meth:`collect_rows` of ``frame`` will want (:class:`Prefetch`).
        """

    def labels_in_memory(self, frame: Any, label: str) -> Any | None:
        """The label column if it is already in driver memory, else ``None``."""
        return None

    @abstractmethod
    def collect_rows(
        self, frame: Any, label: str, classes: Sequence[Any], columns: Sequence[str]
    ) -> pd.DataFrame:
        """Rows of the given classes only (small by construction), as pandas."""

    @abstractmethod
    def broadcast(self, value: Any) -> Any:
        """Ship ``value`` once to every worker; return a handle tasks can resolve."""

    @abstractmethod
    def generate(self, fn: TaskFn, tasks: Sequence[Any], handle: Any, like: Any) -> Any:
        """A frame with ``like``'s schema made of ``fn(task, payload, threads)`` per task.

        Each task is independent and pure, so a retried or recomputed task yields
        identical rows.
        """

    @abstractmethod
    def union(self, frames: Sequence[Any]) -> Any:
        """Concatenate frames of the same schema, keeping their partitions."""

    @abstractmethod
    def with_constant(self, frame: Any, name: str, value: bool) -> Any:
        """Add a constant boolean column."""

    # -- primitives of the distributed kNN join and the cleaning samplers ------------

    @abstractmethod
    def num_partitions(self, frame: Any) -> int:
        """How many partitions ``frame`` has (a sizing hint, never used for keys)."""

    @abstractmethod
    def map_partitions(self, frame: Any, fn: PartitionFn, handle: Any, meta: pd.DataFrame) -> Any:
        """Apply a row-local ``fn(pdf, payload, threads)`` to each partition (or batch).

        ``fn`` must treat rows independently: an engine may call it on any split of a
        partition.  The result has the columns and dtypes of the empty frame ``meta``.
        """

    @abstractmethod
    def shuffle_map(
        self,
        frame: Any,
        by: str,
        fn: PartitionFn,
        handle: Any,
        meta: pd.DataFrame,
        npartitions: int,
        direct: bool = False,
    ) -> Any:
        """Hash-partition rows by the integer column ``by``, then apply ``fn`` per partition.

        All rows with equal ``by`` reach the same ``fn`` call, which sees its whole
        partition at once (in no particular row order: ``fn`` must sort what it needs).
        The result has the columns and dtypes of ``meta``: an empty pandas frame, or a
        frame of this engine whose schema the result takes (types pandas cannot spell
        exactly, e.g. Spark's, stay exact).  Partitioning is a hash of the
        value, never ``rand()`` or arrival order, so a retried task sees the same rows.

        ``direct``: the values of ``by`` are partition numbers, ``0 … npartitions − 1``,
        and each value gets a partition of its own.  A hash of few values would put some
        together in one task and leave other partitions empty (13 values in 13 hashed
        partitions: two empty, two holding two values each).
        """

    @abstractmethod
    def aggregate(self, frame: Any, by: str, aggs: dict[str, str]) -> pd.DataFrame:
        """Grouped ``sum``/``max``/``min`` of columns, collected to the driver.

        Only for a small number of groups (one row per group reaches the driver).
        Returns a pandas frame with ``by`` and the aggregated columns.
        """

    @abstractmethod
    def collect_small(self, frame: Any, max_rows: int) -> pd.DataFrame:
        """Collect a frame that is small by construction (e.g. a sample).

        Raises ``RuntimeError`` rather than return more than ``max_rows`` rows.
        """

    @abstractmethod
    def add_column(self, frame: Any, name: str, fn: ColumnFn, handle: Any) -> Any:
        """Append an int64 column ``fn(pdf, payload)``, keeping every other column as is."""

    @abstractmethod
    def anti_join(self, frame: Any, keys: Any, on: str, by: tuple[ColumnFn, Any] | None = None) -> Any:
        """Rows of ``frame`` whose ``on`` value is absent from ``keys[on]`` (both int64).

        ``by``: ``(fn, handle)`` whose int64 ``fn(pdf, payload)`` is each row's value of
        ``on``, computed in the task that filters the rows (the frame has no ``on`` column
        and the result gets none), so no keyed copy of a large frame waits in memory for
        ``keys``.
        """

    @abstractmethod
    def drop(self, frame: Any, columns: Sequence[str]) -> Any:
        """Drop columns."""

    @abstractmethod
    def persist(self, frame: Any) -> Any:
        """``frame`` computed once and kept on the workers for the passes that follow.

        Memory (spilling to disk where the engine can) is released when the returned
        frame is no longer referenced, or by :meth:`release`.
        """

    @abstractmethod
    def release(self, frame: Any) -> None:
        """Free what :meth:`persist` kept for ``frame`` now, where the engine can (Spark);
        elsewhere it goes with the last reference to the persisted frame."""

    # -- sessions and I/O: the job's (distsmote.job); samplers never call these ------

    @classmethod
    @contextlib.contextmanager
    def starting(cls, config: Any, *, progress: bool = True) -> Iterator[None]:
        """Start what the engine can start while the driver plans the job (before
        :meth:`open`), and stop it if the job ends without opening it.  Default: nothing."""
        yield

    @classmethod
    @contextlib.contextmanager
    def open(cls, config: Any, *, verbose: bool = False, watch: bool = False,
             progress: bool = True) -> Iterator["Engine"]:
        """Start or join this engine for a job (a ``JobConfig``); yield an engine bound to it.

        ``watch``: fail the job (in the main thread) when the engine loses all its
        workers for good.  ``progress``: the engine may show its own progress bar.
        """
        yield cls()

    def read(self, source: Any) -> Any:
        """A lazy frame of a :class:`distsmote.inputs.Source`: its files, read with its
        schema when types were widened, its row filter pushed down to the reader."""
        raise NotImplementedError(f"the {self.name} engine cannot read datasets")

    def write_parts(self, frame: Any, directory: str, *, label: str | None = None,
                    token: str = "run", copies: Sequence[str] = ()) -> list[Any]:
        """Write ``frame`` as Parquet part files into ``directory``, one per task.

        File names depend only on ``token`` and the task's number, so a retried task
        overwrites its own file.  ``copies``: input Parquet files to copy byte for byte
        (:func:`distsmote.engines.files.copy_part`) into the first part files, one task
        each, in the same stage (on the workers: their bytes never reach the driver).
        Returns the :class:`distsmote.engines.files.PartFile` of each file (with the
        class counts of ``label``); only this small list reaches the driver.
        """
        raise NotImplementedError(f"the {self.name} engine cannot write datasets")

    def arrow_schema(self, frame: Any) -> Any:
        """The ``pyarrow.Schema`` the frame's part files will have (no data is computed)."""
        raise NotImplementedError

    def store(self, url: str) -> Any:
        """The :class:`distsmote.commit.Store` that commits outputs at ``url``."""
        from distsmote.commit import FsspecStore

        return FsspecStore(url)

    def interrupted(self) -> None:
        """Make the engine usable again after a signal interrupted the driver."""


def numeric_dtype(dtype: Any) -> np.dtype | None:
    """The numpy dtype of an int/float column, ``None`` for anything else (bool included).

    pandas' nullable ``Int64``/``Float32``... map to their numpy counterparts.
    """
    try:
        dt = np.dtype(getattr(dtype, "numpy_dtype", dtype))
    except TypeError:
        return None
    if dt.kind in "iuf":
        return dt
    return None


def nullable_dtype(dtype: Any) -> Any:
    """The nullable pandas dtype of a numpy int or bool dtype (``None``: already nullable)."""
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return {"b": "boolean"}.get(dtype.kind) or pd.api.types.pandas_dtype(dtype.name.capitalize().replace("Uint", "UInt"))
    return None


def conform_pandas(pdf: pd.DataFrame, dtypes: pd.Series) -> pd.DataFrame:
    """Cast a generated frame to the column order and dtypes of the input.

    Float → int casts truncate, as imbalanced-learn's ``astype(X.dtype)`` does.
    """
    pdf = pdf[list(dtypes.index)]
    for name, target in dtypes.items():
        dt = numeric_dtype(target)
        if dt is not None and dt.kind in "iu" and pdf[name].dtype.kind == "f":
            pdf[name] = np.trunc(pdf[name].to_numpy())  # nullable Int64 refuses fractions
    return pdf.astype(dtypes.to_dict())


def empty_frame(dtypes: dict[str, Any]) -> pd.DataFrame:
    """An empty frame with these columns and dtypes (the ``meta`` of a partition function)."""
    return pd.DataFrame({name: np.array([], dtype) for name, dtype in dtypes.items()})
