"""Spark shuffles whose rows cross the JVM in blocks.

When ``SparkEngine.shuffle_map`` shuffles a frame that a Python task makes (a
``map_partitions`` or another ``shuffle_map``), that task sends its rows to the shuffle
as Arrow IPC *blocks*: one Spark row ``(partition value, block)`` per block of rows
bound for one partition, instead of one Spark row per row.  Spark converts Arrow
columns to its rows and back value by value (4 M rows × 24 float columns through a
repartition: 6.1–7.2 s as columns, 3.7 s as one binary column); in blocks it handles a
few rows per thousand.  The receiving task reads the blocks back as one Arrow table.

A row's partition is computed in Python: ``by`` itself in a direct shuffle, else a
SplitMix64 hash of ``by``; a block's Spark row carries the value that Spark's hash
partitioning sends to that partition (``SparkEngine._direct_values``).  Blocks follow
the task's output order, so a retried task sends the same blocks.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from distsmote.engines.direct import destinations

#: Frames a Python task makes (``SparkEngine.map_partitions`` and ``shuffle_map``):
#: ``(input frame, produce)``, where ``produce(input batches) -> tables of the frame``,
#: so a map of such a frame runs in the same task and a shuffle of it receives blocks.
MADE: weakref.WeakKeyDictionary[Any, tuple] = weakref.WeakKeyDictionary()

PARTITION, BLOCK = "__partition__", "__block__"
#: The rows a sending task yields: ``(partition value, Arrow IPC block)``.
BLOCK_SCHEMA = f"{PARTITION} long, {BLOCK} binary"
#: Blocks a sending task holds back, at most (then it sends them all).
HELD_BYTES = 64 << 20


def block_bytes(max_records_per_batch: int) -> int:
    """Largest block.  Spark hands a task up to ``max_records_per_batch`` rows per Arrow
    batch, and one batch's binary column must stay under 2 GiB: 1 GiB / rows, within
    64 KiB … 4 MiB (107 KB with Spark's default of 10 000)."""
    return int(max(64 << 10, min(4 << 20, (1 << 30) // max(1, int(max_records_per_batch)))))


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def to_blocks(tables: Iterable[pa.Table], by: str, n: int, direct: bool, values: Sequence[int],
              max_bytes: int) -> Iterator[pa.RecordBatch]:
    """The Spark rows that send ``tables``' rows to their partitions, in blocks of at
    most about ``max_bytes`` (a block holds at least one row)."""
    held: dict[int, list[pa.Table]] = {}
    sizes: dict[int, int] = {}

    def send(part: int) -> pa.RecordBatch:
        table = pa.concat_tables(held.pop(part))
        sizes.pop(part)
        step = max(1, int(max_bytes * table.num_rows // max(1, table.nbytes)))
        blocks = [_ipc(table.slice(a, step)) for a in range(0, table.num_rows, step)]
        return pa.RecordBatch.from_arrays(
            [pa.array([values[part]] * len(blocks), pa.int64()), pa.array(blocks, pa.binary())],
            names=[PARTITION, BLOCK],
        )

    for table in tables:
        if not table.num_rows:
            continue
        dest = destinations(table.column(by).to_numpy(), n, direct)
        order = np.argsort(dest, kind="stable")
        cuts = np.flatnonzero(np.r_[True, np.diff(dest[order]) != 0, True])
        for a, b in itertools.pairwise(cuts):
            part = int(dest[order[a]])
            piece = table.take(order[a:b])
            held.setdefault(part, []).append(piece)
            sizes[part] = sizes.get(part, 0) + piece.nbytes
            if sizes[part] >= max_bytes:
                yield send(part)
        if sum(sizes.values()) >= HELD_BYTES:
            for part in list(held):
                yield send(part)
    for part in list(held):
        yield send(part)


def from_blocks(batches: Iterable[pa.RecordBatch]) -> pa.Table | None:
    """The rows of the blocks in ``batches`` (a ``BLOCK`` column), or ``None``."""
    tables = []
    for batch in batches:
        column = batch.column(BLOCK)
        for i in range(batch.num_rows):
            tables.append(pa.ipc.open_stream(column[i].as_buffer()).read_all())
    return pa.concat_tables(tables) if tables else None


def made(source: Any, produce: Any, schema: Any) -> Any:
    """``source.mapInArrow`` (Spark ``schema``) of ``produce``'s tables, remembered in :data:`MADE`."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for table in produce(batches):
            yield from table.to_batches()

    out = source.mapInArrow(run, schema)
    MADE[out] = (source, produce)
    return out


def table_of(batches: Iterable[pa.RecordBatch]) -> pa.Table | None:
    """The rows of plain Arrow ``batches`` as one table, or ``None``."""
    batches = [b for b in batches if b.num_rows]
    return pa.Table.from_batches(batches) if batches else None
