"""Part files: what an engine's write task does, and what it reports to the driver.

Every engine writes a frame the same way: each task (a Dask partition, a Spark
partition, the whole pandas frame) writes one Parquet file whose name depends only on
the run's token, the task's number and its attempt, so a retried task never adds a
second copy of its rows.  The file is written under a hidden temporary name and renamed
when complete, so a part file is never half-written.  The task returns a
:class:`PartFile`, a few numbers, so the driver can commit the files (a directory
rename, or one Delta transaction) and report class counts without reading the output
back.

Only the files that successful attempts reported are committed.  A failed attempt can
outlive its failure: on Spark, when one Python worker of a task fails, the writer of the
same task may see a normal end of its input and finish a file with part of the rows.
That file has its own attempt's name, so it can never replace the good one, and
:func:`keep_only` removes it before a Parquet commit (a Delta commit lists its files).
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from distsmote._faults import fault_point


@dataclass(frozen=True)
class PartFile:
    """One written part file.

    Attributes
    ----------
    path : str
        Its full path or URL.
    name : str
        Its base name.
    size : int
        Bytes.
    rows : int
        Rows.
    counts : dict
        ``{class: rows}`` of the label column (empty without a label).
    copy_of : str or None
        The input file it is a byte-for-byte copy of (:func:`copy_part`).
    """

    path: str
    name: str
    size: int
    rows: int
    counts: dict = field(default_factory=dict)
    copy_of: str | None = None


def part_name(token: str, index: int, attempt: int = 0) -> str:
    """``part-<token>-<index>.parquet`` for a task's first attempt, with ``-a<attempt>``
    before the suffix for a retry."""
    retry = f"-a{attempt}" if attempt else ""
    return f"part-{token}-{index:05d}{retry}.parquet"


@contextlib.contextmanager
def published(fs: Any, root: str, name: str) -> Iterator[Any]:
    """Open ``root/name`` for writing under a hidden temporary name; rename it into
    place when the block completes, remove it if the block fails."""
    path = posixpath.join(root, name)
    tmp = posixpath.join(root, f".{name}.tmp")
    try:
        with fs.open(tmp, "wb") as fh:
            yield fh
        fs.mv(tmp, path)
    except BaseException:
        try:
            fs.rm(tmp)
        except Exception:  # noqa: BLE001 - best effort; hidden files are never read
            pass
        raise


def keep_only(directory: str, parts: list["PartFile"]) -> list[str]:
    """Remove the part files and temporary files in ``directory`` that no successful
    attempt reported (files of failed attempts); return their names."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(directory)
    keep = {p.name for p in parts}
    stray = []
    for path in fs.ls(root, detail=False):
        name = posixpath.basename(path.rstrip("/"))
        if name not in keep and (name.startswith("part-") or name.startswith(".part-")):
            fs.rm(path)
            stray.append(name)
    return stray


def dictionary_columns(schema: Any) -> list[str]:
    """Columns worth dictionary-encoding: all but floats.

    Interpolated float features are nearly all distinct, so trying a dictionary first
    (Parquet's default) only costs time: about 4x the write time of plain encoding.
    """
    import pyarrow as pa

    return [f.name for f in schema if not pa.types.is_floating(f.type)]


def label_counts(table: Any, label: str | None) -> dict:
    """``{class: rows}`` of ``label`` in an Arrow table (plain Python keys)."""
    from distsmote._strategy import normalise_label

    if not label or label not in table.column_names or table.num_rows == 0:
        return {}
    counts = table.column(label).value_counts().to_pylist()
    return {normalise_label(d["values"]): int(d["counts"]) for d in counts}


def make_directory(directory: str) -> None:
    """Create ``directory`` from the driver before the tasks write.

    Tasks never create it: a task still running after its run failed (Dask cannot stop
    a running task) then finds the directory gone once the run aborted, and fails
    instead of leaving a file behind.  On object stores, where directories do not
    exist, this is a no-op.
    """
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(directory)
        fs.makedirs(root, exist_ok=True)
    except Exception:  # noqa: BLE001 - a URL fsspec cannot open: its writes fail with a clear error
        pass


#: A part file's row groups hold about this many bytes of Arrow data (or 1 M rows),
#: however small the batches a task streams (Spark's Arrow batches are 10 000 rows).
ROW_GROUP_BYTES = 64 * 1024 * 1024
ROW_GROUP_ROWS = 1_000_000


def write_batches(batches: Iterator[Any], schema: Any, directory: str, token: str, index: int,
                  label: str | None, attempt: int = 0) -> PartFile:
    """Stream Arrow record batches into one part file of ``directory`` (fault point
    ``write``), cast to ``schema``, in row groups of about :data:`ROW_GROUP_BYTES`."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = fsspec.core.url_to_fs(directory)  # made by the driver (make_directory)
    fault_point("write")
    name = part_name(token, index, attempt)
    rows, counts, pending, size = 0, {}, [], [0, 0]  # size: pending bytes and rows

    def flush(writer: Any) -> None:
        nonlocal rows
        if not pending:
            return
        table = pa.concat_tables(pending)
        pending.clear()
        size[:] = [0, 0]
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        rows += table.num_rows
        for k, n in label_counts(table, label).items():
            counts[k] = counts.get(k, 0) + n

    with published(fs, root, name) as fh, pq.ParquetWriter(fh, schema, use_dictionary=dictionary_columns(schema)) as w:
        for batch in batches:
            pending.append(pa.Table.from_batches([batch]).cast(schema))
            size[0] += pending[-1].nbytes
            size[1] += pending[-1].num_rows
            if size[0] >= ROW_GROUP_BYTES or size[1] >= ROW_GROUP_ROWS:
                flush(w)
        flush(w)
    url = posixpath.join(directory.rstrip("/"), name)
    return PartFile(url, name, int(fs.size(posixpath.join(root, name))), rows, counts)


def write_table(table: Any, directory: str, token: str, index: int, label: str | None) -> PartFile:
    """:func:`write_batches` for a whole Arrow table."""
    return write_batches(iter(table.to_batches()), table.schema, directory, token, index, label)


def write_pandas(pdf: Any, directory: str, token: str, index: int, label: str | None) -> PartFile:
    """:func:`write_table` for a pandas partition."""
    import pyarrow as pa

    return write_table(pa.Table.from_pandas(pdf, preserve_index=False), directory, token, index, label)


#: Bytes per read when copying an input file.
COPY_CHUNK = 8 * 1024 * 1024


def copy_part(source: str, directory: str, token: str, index: int, label: str | None,
              attempt: int = 0) -> PartFile:
    """Copy one input Parquet file, byte for byte, into a part file of ``directory``.

    The task of an output's copied input rows (see :mod:`distsmote.input_copy`): the
    file is streamed under a hidden temporary name and renamed when complete, as
    :func:`write_batches` does (fault point ``write``).  Its rows come from the input
    file's footer and its class counts from its ``label`` column; a copy of fewer or more
    bytes than the input file has (it changed meanwhile) fails the task, before anything
    is committed.
    """
    import fsspec
    import pyarrow.parquet as pq

    fs, root = fsspec.core.url_to_fs(directory)  # made by the driver (make_directory)
    fault_point("write")
    name = part_name(token, index, attempt)
    src_fs, src_path = fsspec.core.url_to_fs(source)
    with src_fs.open(src_path, "rb") as src:
        original = pq.ParquetFile(src)
        rows = original.metadata.num_rows
        counts = label_counts(original.read(columns=[label]), label) if label else {}
        src.seek(0)
        size = 0
        with published(fs, root, name) as dst:
            while chunk := src.read(COPY_CHUNK):
                dst.write(chunk)
                size += len(chunk)
    expected = int(src_fs.size(src_path))
    if size != expected:
        from distsmote.paths import redact

        raise OSError(f"the copy of input file {redact(source)!r} has {size} bytes, not {expected}; "
                      "rerun the job (nothing was committed)")
    url = posixpath.join(directory.rstrip("/"), name)
    return PartFile(url, name, size, rows, counts, copy_of=source)


def merge_counts(parts: list[PartFile]) -> dict:
    """Class counts summed over part files."""
    out: dict = {}
    for p in parts:
        for k, n in p.counts.items():
            out[k] = out.get(k, 0) + n
    return out
