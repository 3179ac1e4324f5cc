"""Spark's part files, written from Python tasks by :func:`~distsmote.engines.files.write_batches`.

Every task of the write stage writes one part file and returns one small row (its
:class:`~distsmote.engines.files.PartFile`), so the driver collects a few numbers per
file.  A file's index is the task's partition number in that stage, so names never
collide, and a retried attempt writes under its own attempt's name (see
:mod:`distsmote.engines.files`).

Synthetic rows never enter the JVM: a frame built by ``SparkEngine.generate`` (alone,
or as part of a ``SparkEngine.union``) is written by tasks that run the generation
function and stream its rows straight into the Parquet writer, instead of handing them
to the JVM and reading them back.  The stage's tasks are then the union's partitions,
in the same order: the input's partitions, then one per generation task.  Copies of
input files (``copies``: see :mod:`distsmote.input_copy`) come first, one task each.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from distsmote._faults import fault_point
from distsmote._strategy import normalise_label
from distsmote.engines.files import PartFile, copy_part, write_batches
from distsmote.engines.spark_files import scan_of, scan_tasks, task_ids

PART_SCHEMA = "path string, name string, size long, rows long, counts string, copy_of string"


@dataclass(frozen=True)
class Generation:
    """What ``SparkEngine.generate`` needs to produce its rows again, in a write task."""

    fn: Any
    tasks: list
    handle: Any
    to_batches: Any  # (pandas frame, arrow schema) -> record batches
    threads: Any  # () -> the task's threads


#: Frames built by ``generate`` and ``union``: what they are made of.
_GENERATED: "weakref.WeakKeyDictionary[Any, Generation]" = weakref.WeakKeyDictionary()
_UNIONS: "weakref.WeakKeyDictionary[Any, list]" = weakref.WeakKeyDictionary()


def remember_generation(frame: Any, generation: Generation) -> Any:
    """Record that ``frame`` is ``generation``'s output; return ``frame``."""
    _GENERATED[frame] = generation
    return frame


def remember_union(frame: Any, pieces: list) -> Any:
    """Record that ``frame`` is the union (by name) of ``pieces``; return ``frame``."""
    flat = []
    for p in pieces:
        flat.extend(_UNIONS.get(p, [p]))
    if any(p in _GENERATED or scan_of(p) is not None for p in flat):
        _UNIONS[frame] = flat
    return frame


def _arrow_part(part: PartFile) -> Any:
    import pyarrow as pa

    counts = json.dumps([[k, n] for k, n in part.counts.items()])
    return pa.RecordBatch.from_pylist(
        [{"path": part.path, "name": part.name, "size": part.size, "rows": part.rows, "counts": counts,
          "copy_of": part.copy_of}],
        schema=pa.schema([("path", pa.string()), ("name", pa.string()), ("size", pa.int64()),
                          ("rows", pa.int64()), ("counts", pa.string()), ("copy_of", pa.string())]),
    )


def _written(frame: Any, arrow_schema: Any, directory: str, label: str | None, token: str) -> Any:
    """A frame of one row per part file that the tasks writing ``frame`` produce."""
    if list(frame.columns) != list(arrow_schema.names):  # a union by name: its first piece's order
        frame = frame.select(*[f"`{c}`" for c in arrow_schema.names])

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        from pyspark import TaskContext

        task = TaskContext.get()
        yield _arrow_part(write_batches(batches, arrow_schema, directory, token, task.partitionId(), label,
                                        task.attemptNumber()))

    return frame.mapInArrow(run, PART_SCHEMA)


def _copied(spark: Any, scan: Any, arrow_schema: Any, directory: str, label: str | None, token: str) -> Any:
    """As :func:`_written` for a file scan's rows, read from the files by the writing task."""
    columns = list(arrow_schema.names)

    def run(unit: Any) -> Iterator[Any]:
        from pyspark import TaskContext

        task = TaskContext.get()
        yield _arrow_part(write_batches(scan.batches(unit, columns), arrow_schema, directory, token,
                                        task.partitionId(), label, task.attemptNumber()))

    return scan_tasks(spark, scan, run, PART_SCHEMA)


def _generated(spark: Any, gen: Generation, arrow_schema: Any, directory: str, label: str | None,
               token: str) -> Any:
    """As :func:`_written` for a generation's rows, made in the writing task itself."""
    tasks = gen.tasks

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        from pyspark import TaskContext

        task = TaskContext.get()
        mine = [i for batch in batches for i in batch.column(0).to_pylist() if i < len(tasks)]
        if not mine:  # task_ids' spare partition
            return
        payload = gen.handle.get()
        threads = gen.threads()

        def rows() -> Iterator[Any]:
            for task_id in mine:
                yield from gen.to_batches(gen.fn(tasks[task_id], payload, threads), arrow_schema)
                fault_point("generate.emitted")  # the writer has the rows: mid-write

        yield _arrow_part(write_batches(rows(), arrow_schema, directory, token, task.partitionId(), label,
                                        task.attemptNumber()))

    return task_ids(spark, len(tasks)).mapInArrow(run, PART_SCHEMA)


def _file_copies(spark: Any, files: list[str], directory: str, label: str | None, token: str) -> Any:
    """As :func:`_written` for byte-for-byte copies of input files, one task per file."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        from pyspark import TaskContext

        task = TaskContext.get()
        for i in (i for batch in batches for i in batch.column(0).to_pylist() if i < len(files)):
            yield _arrow_part(copy_part(files[i], directory, token, task.partitionId(), label,
                                        task.attemptNumber()))

    return task_ids(spark, len(files)).mapInArrow(run, PART_SCHEMA)


def part_rows(spark: Any, frame: Any, arrow_schema: Any, directory: str, label: str | None,
              token: str, copies: list[str] = ()) -> Any:
    """The frame whose collection writes ``frame``'s part files: one row per file; the
    copies of the input files ``copies`` first (the union's first partitions)."""
    pieces = [_file_copies(spark, list(copies), directory, label, token)] if copies else []
    for piece in _UNIONS.get(frame, [frame]):
        gen, scan = _GENERATED.get(piece), scan_of(piece)
        if gen is not None:
            pieces.append(_generated(spark, gen, arrow_schema, directory, label, token))
        elif scan is not None:
            pieces.append(_copied(spark, scan, arrow_schema, directory, label, token))
        else:
            pieces.append(_written(piece, arrow_schema, directory, label, token))
    out = pieces[0]
    for p in pieces[1:]:
        out = out.union(p)
    return out


def to_part_files(rows: list) -> list[PartFile]:
    """The collected rows of :func:`part_rows` as :class:`PartFile` records."""
    return [PartFile(r["path"], r["name"], int(r["size"]), int(r["rows"]),
                     {normalise_label(k): int(n) for k, n in json.loads(r["counts"])}, r["copy_of"])
            for r in rows]
