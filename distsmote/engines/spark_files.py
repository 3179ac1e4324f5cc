"""Plain Parquet inputs that Spark's Python tasks read themselves.

A frame that :meth:`SparkEngine.read <distsmote.engines.spark.SparkEngine.read>` made
from listed Parquet files, with no ``--where`` filter, no widened types, no partition
columns and only numeric, boolean and string columns, is a :class:`FileScan`.  What a
job does with such a frame (its class statistics, the rows it collects, its copy in the
write) runs in Python tasks that read the files with pyarrow: Spark schedules the tasks,
but the rows never pass through the JVM.  Handing 20 M rows × 17 columns from Spark's
Parquet reader to Python as Arrow took 21–29 s on 2 cores where reading the same files
in the Python tasks took 5.4–5.7 s.

The frame stays a normal Spark frame: anything else (a join, a cache, a filter) reads it
through the JVM as before, and a frame derived from it is not a file scan unless this
module says so (:meth:`FileScan.with_constant`).

A task reads one *unit*: whole files packed up to a target size, or one contiguous
share of the row groups of a larger file, as Spark splits files
(``min(128 MiB, input bytes / default parallelism)``, at least 4 MiB).  Units are fixed
on the driver from the listing's sizes, so a retried task reads the same rows.
"""

from __future__ import annotations

import io
import math
import pickle
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from distsmote.engines.base import LabelStats, Prefetch

#: Spark's ``spark.sql.files.maxPartitionBytes`` and ``openCostInBytes`` defaults.
MAX_UNIT_BYTES = 128 * 2**20
MIN_UNIT_BYTES = 4 * 2**20

#: One unit's pieces: ``(file, share, shares)``, the ``share``-th of ``shares`` equal
#: ranges of the file's row groups (``(file, 0, 1)``: the whole file).
Unit = tuple[tuple[str, int, int], ...]


def _plain(t: pa.DataType) -> bool:
    """Types that Spark and pyarrow read alike (no uint64: Spark makes it a decimal)."""
    if pa.types.is_integer(t):
        return t != pa.uint64()
    if pa.types.is_floating(t):
        return t != pa.float16()
    return pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t)


def _hintable(t: pa.DataType) -> bool:
    """Types whose Spark type Spark's own inference would give as well."""
    return (pa.types.is_signed_integer(t) or t in (pa.float32(), pa.float64()) or pa.types.is_boolean(t)
            or pa.types.is_string(t) or pa.types.is_large_string(t))


def schema_hint(source: Any) -> pa.Schema | None:
    """The schema to hand Spark's reader for ``source``'s listed files, so that it does
    not run a job to infer it (about 1 s): the footers' schema, every column nullable
    as Spark reads Parquet.  ``None`` when Spark should infer it (unlisted files, or a
    type whose Spark type is Spark's choice)."""
    if source.files is None or source.schema is None or not all(_hintable(f.type) for f in source.schema):
        return None
    return pa.schema([f.with_nullable(True) for f in source.schema])


@dataclass(frozen=True)
class FileScan:
    """Parquet files read as they are, and the Arrow types Spark gives their columns.

    Attributes
    ----------
    files : tuple of str
        Data files (paths or URLs fsspec opens), in the listing's order.
    sizes : tuple of int
        Their bytes.
    schema : pyarrow.Schema
        The frame's columns with the Arrow types of Spark's types (what the JVM would
        hand to Python), constant columns included.
    parallelism : int
        The session's default parallelism (how finely files are split).
    constants : tuple of (str, bool)
        Columns the frame adds with one value (``with_constant``).
    """

    files: tuple[str, ...]
    sizes: tuple[int, ...]
    schema: pa.Schema
    parallelism: int = 1
    constants: tuple[tuple[str, bool], ...] = ()

    @classmethod
    def of(cls, source: Any, spark_arrow: pa.Schema, parallelism: int) -> "FileScan | None":
        """The scan of ``source`` read as a frame of schema ``spark_arrow``, or ``None``
        when Python tasks could not read it exactly as Spark does."""
        if source.files is None or source.format != "parquet" or source.widened or source.row_filter \
                or source.schema is None or not source.files:
            return None
        if list(source.schema.names) != list(spark_arrow.names):  # e.g. partition columns in the paths
            return None
        if not all(_plain(f.type) and _plain(t.type) for f, t in zip(source.schema, spark_arrow)):
            return None
        return cls(tuple(source.files), tuple(int(s) for s in source.sizes), spark_arrow, max(1, parallelism))

    def with_constant(self, name: str, value: bool) -> "FileScan":
        """The scan with one more column of a single boolean value."""
        fields = [f for f in self.schema if f.name != name] + [pa.field(name, pa.bool_())]
        constants = tuple((n, v) for n, v in self.constants if n != name) + ((name, bool(value)),)
        return replace(self, schema=pa.schema(fields), constants=constants)

    def units(self) -> list[Unit]:
        """The tasks' units, as Spark would split these files over ``parallelism`` cores."""
        total = sum(self.sizes)
        target = max(MIN_UNIT_BYTES, min(MAX_UNIT_BYTES, total // self.parallelism))
        units: list[Unit] = []
        packed: list[tuple[str, int, int]] = []
        held = 0
        for path, size in zip(self.files, self.sizes):
            if packed and held + size > target:
                units.append(tuple(packed))
                packed, held = [], 0
            if size > target:
                shares = math.ceil(size / target)
                units.extend(((path, i, shares),) for i in range(shares))
                continue
            packed.append((path, 0, 1))
            held += size
        if packed:
            units.append(tuple(packed))
        return units

    def batches(self, unit: Unit, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """The rows of ``unit``, ``columns`` only, as record batches of Spark's types."""
        import fsspec
        import pyarrow.parquet as pq

        constants = dict(self.constants)
        schema = pa.schema([self.schema.field(c) for c in columns])
        stored = [c for c in columns if c not in constants]
        for path, share, shares in unit:
            with fsspec.open(path, "rb") as fh:
                pf = pq.ParquetFile(fh)
                n = pf.metadata.num_row_groups
                groups = list(range(share * n // shares, (share + 1) * n // shares))
                if not groups:
                    continue
                for batch in pf.iter_batches(row_groups=groups, columns=stored, use_threads=False):
                    if not batch.num_rows:
                        continue
                    arrays = [
                        pa.repeat(pa.scalar(constants[c]), batch.num_rows) if c in constants
                        else batch.column(c) for c in columns
                    ]
                    yield from pa.Table.from_arrays(arrays, names=list(columns)).cast(schema).to_batches()


#: Frames that are file scans.
_SCANS: "weakref.WeakKeyDictionary[Any, FileScan]" = weakref.WeakKeyDictionary()


def remember_scan(frame: Any, scan: FileScan | None) -> Any:
    """Record that ``frame`` is ``scan`` (nothing when ``scan`` is ``None``); return it."""
    if scan is not None:
        _SCANS[frame] = scan
    return frame


def scan_of(frame: Any) -> FileScan | None:
    """The file scan ``frame`` is, or ``None``."""
    return _SCANS.get(frame)


def task_ids(spark: Any, n: int) -> Any:
    """Task numbers ``0 … n-1``, one per partition, and never a single partition:
    for ``n = 1``, a second partition holds the number 1, which callers skip.

    Spark runs a union of single-partition frames as *one* task (their partitions are
    zipped), so two such pieces of a write would both be partition 0 and name the same
    part file.
    """
    m = max(2, n)
    return spark.range(0, m, 1, numPartitions=m)


def scan_tasks(spark: Any, scan: FileScan, run: Any, schema: str) -> Any:
    """A frame of ``run(unit)``'s output record batches (``schema``), one task per unit
    (and a task that does nothing when there is one unit: :func:`task_ids`)."""
    units = scan.units()

    def tasks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for i in batch.column(0).to_pylist():
                if i < len(units):
                    yield from run(units[i])

    return task_ids(spark, len(units)).mapInArrow(tasks, schema)


# -- what a job asks of a file scan: statistics, a filtered collect --------------------

BLOB_SCHEMA = "blob binary"


def _ipc(batches: list[pa.RecordBatch]) -> bytes:
    """Record batches (one schema) as an Arrow IPC stream."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, batches[0].schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue()


def _blob(data: bytes) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([data], pa.binary())], names=["blob"])


def _batch_stats(batch: pa.RecordBatch, label: str, features: Sequence[str]) -> LabelStats:
    """Class counts, missing labels and non-finite features (NaN, ±inf, null) of a batch."""
    import pyarrow.compute as pc

    y = batch.column(label)
    counts = pc.value_counts(y.drop_null())
    bad = {}
    for name in features:
        col = batch.column(name)
        n = col.null_count
        if pa.types.is_floating(col.type):
            n += int(pc.sum(pc.invert(pc.is_finite(col))).as_py() or 0)
        if n:
            bad[name] = n
    return LabelStats(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())), bad,
                      y.null_count)


def unit_label_stats(scan: FileScan, unit: Unit, label: str, features: Sequence[str]) -> LabelStats:
    """:class:`LabelStats` of a unit's rows."""
    columns = list(dict.fromkeys([label, *features]))
    return LabelStats.total(_batch_stats(b, label, features) for b in scan.batches(unit, columns))


def unit_stats_and_rows(scan: FileScan, unit: Unit, label: str, features: Sequence[str], prefetch: Prefetch,
                        max_rows: int) -> tuple[LabelStats, bytes | None, list]:
    """:func:`unit_label_stats`, the unit's rows of its smaller classes (an Arrow IPC
    stream of ``prefetch.columns``, or ``None``) and the classes it kept back, as
    :func:`distsmote.engines.base.prefetch_rows` does for a pandas partition."""
    import pyarrow.compute as pc

    labels = [b.column(label) for b in scan.batches(unit, [label])]
    counts = pc.value_counts(pa.chunked_array(labels, scan.schema.field(label).type).drop_null())
    values, n = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
    largest = values[n.index(max(n))] if n else None
    keep = bool(n) and sum(n) - max(n) <= max_rows
    held = [largest] if keep else values
    columns = list(dict.fromkeys([label, *features, *prefetch.columns]))
    parts, rows = [], []
    for batch in scan.batches(unit, columns):
        parts.append(_batch_stats(batch, label, features))
        if keep:
            y = batch.column(label)
            other = pc.and_(pc.is_valid(y), pc.not_equal(y, pa.scalar(largest, y.type)))
            rows.append(batch.filter(other).select(list(prefetch.columns)))
    data = _ipc(rows) if rows else None
    return LabelStats.total(parts), data, held


def scan_label_stats(spark: Any, scan: FileScan, label: str, features: Sequence[str],
                     prefetch: Prefetch | None = None) -> Any:
    """A frame of one pickled ``(stats, rows, classes kept back)`` per unit: with
    ``prefetch``, :func:`unit_stats_and_rows`'s; without, no rows.  Collect it, then
    :func:`read_label_stats`."""
    features = list(features)
    max_rows = prefetch.max_rows(len(scan.units())) if prefetch is not None else 0

    def run(unit: Unit) -> Iterator[pa.RecordBatch]:
        if prefetch is None:
            result = (unit_label_stats(scan, unit, label, features), None, [])
        else:
            result = unit_stats_and_rows(scan, unit, label, features, prefetch, max_rows)
        yield _blob(pickle.dumps(result))

    return scan_tasks(spark, scan, run, BLOB_SCHEMA)


def read_label_stats(rows: list) -> tuple[LabelStats, list[tuple[Any, list]]]:
    """The statistics of the whole scan from :func:`scan_label_stats`'s collected rows,
    and each unit's rows (pandas, or ``None``) with the classes it kept back."""
    results = [pickle.loads(bytes(r["blob"])) for r in rows]
    parts = [(pa.ipc.open_stream(data).read_all().to_pandas() if data is not None else None, held)
             for _, data, held in results]
    return LabelStats.total(r[0] for r in results), parts


def scan_rows(spark: Any, scan: FileScan, label: str, classes: Sequence[Any], columns: Sequence[str]) -> Any:
    """A frame of Arrow IPC streams of the rows whose label is in ``classes`` (``columns``
    only; collect it, then :func:`read_rows`)."""
    import pyarrow.compute as pc

    columns = list(columns)
    wanted = pa.array(list(classes), scan.schema.field(label).type)

    def run(unit: Unit) -> Iterator[pa.RecordBatch]:
        for batch in scan.batches(unit, list(dict.fromkeys([*columns, label]))):
            kept = batch.filter(pc.is_in(batch.column(label), value_set=wanted))
            if kept.num_rows:
                yield _blob(_ipc([kept.select(columns)]))

    return scan_tasks(spark, scan, run, BLOB_SCHEMA)


def read_rows(rows: list, scan: FileScan, columns: Sequence[str]) -> pa.Table:
    """The table of :func:`scan_rows`'s collected rows."""
    schema = pa.schema([scan.schema.field(c) for c in columns])
    tables = [pa.ipc.open_stream(bytes(r["blob"])).read_all() for r in rows]
    return pa.concat_tables(tables) if tables else schema.empty_table()
