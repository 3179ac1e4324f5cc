"""Spark's part files, written by Spark's own Parquet writer (no input row leaves the JVM).

Not the default (``SparkEngine.write_parts`` uses it only when the session conf
``spark.distsmote.nativeWrite`` is ``true``): on SMOTE's benchmark (5 M rows x 16
float32 in, 9.8 M out, ``local[*]`` on 2 cores) it wrote no faster than Python tasks
writing with pyarrow, and with more CPU: Spark's Parquet writer (parquet-mr) spends
more per value than moving the rows to Python as Arrow and writing them there, and the
synthetic rows still cross from the Python generation tasks into the JVM.  The default
(:mod:`distsmote.engines.spark_parts`) writes synthetic rows where they are made.

:func:`write_parts` writes a frame with ``DataFrameWriter.parquet`` into a hidden
working directory of the run, ``<directory>/.spark-<token>``, under Spark's commit
protocol: a task attempt writes under ``_temporary`` and only the attempt that the
driver lets commit is moved into place, so a failed or retried attempt never leaves a
duplicate or half-written file.  When the job has committed, each part file is renamed
into ``directory`` as ``part-<token>-<task>.parquet`` (the names of
:func:`distsmote.engines.files.part_name`, which the Parquet and Delta commits expect),
and the working directory, with Spark's ``_SUCCESS`` and checksum files, is removed.

What the driver learns without reading the data back:

* rows and bytes of each file, from its Parquet footer and the file system;
* rows per class of the label column, from one :class:`pyspark.sql.Observation` of the
  write: one conditional count per class the engine has seen in this label
  (:func:`remember_classes`, fed by ``SparkEngine.label_stats``), a count of null labels
  and of all rows.  The counts are exact when they add up to the rows the footers hold;
  if they do not (a class the engine never saw), the label column alone of the written
  files is counted by a Spark job instead.  The observation covers the whole write, so
  the class counts of a write are reported on its first part file (``merge_counts`` of
  the parts is exact; a single part's ``counts`` is not that file's own).

The files are written like :func:`distsmote.engines.files.write_batches`: Snappy,
row groups of about :data:`~distsmote.engines.files.ROW_GROUP_BYTES` (at most
:data:`~distsmote.engines.files.ROW_GROUP_ROWS` rows), dictionary encoding for all but
float columns, timestamps as INT64 microseconds (not Spark's default INT96).
"""

from __future__ import annotations

import logging
import posixpath
import re
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from distsmote._strategy import normalise_label
from distsmote.engines.files import ROW_GROUP_BYTES, ROW_GROUP_ROWS, PartFile, dictionary_columns, make_directory
from distsmote.engines.spark_interrupts import interruptible

log = logging.getLogger("distsmote")

#: Classes seen per session by ``label_stats``: ``{(column, type): {values}}``.
_SEEN: "weakref.WeakKeyDictionary[Any, dict[tuple[str, str], set]]" = weakref.WeakKeyDictionary()

#: More classes than this are not counted by observation (one expression each).
MAX_OBSERVED_CLASSES = 256

_SPARK_NAME = re.compile(r"^part-(\d+)-.*?-c(\d+)(\.[A-Za-z0-9]+)*\.parquet$")


def remember_classes(spark: Any, column: str, data_type: Any, values: Any) -> None:
    """Record the classes ``label_stats`` found in ``column`` (of Spark type ``data_type``),
    so a later write of that column can count them by observation."""
    try:
        seen = _SEEN.setdefault(spark, {})
    except TypeError:  # not weak-referenceable: count by reading back
        return
    seen.setdefault((column, data_type.simpleString()), set()).update(v for v in values if v is not None)


def _candidates(spark: Any, column: str, data_type: Any) -> list:
    try:
        return list(_SEEN.get(spark, {}).get((column, data_type.simpleString()), ()))
    except TypeError:
        return []


def _write_options(arrow_schema: Any) -> dict[str, str]:
    """Parquet writer options that match :func:`~distsmote.engines.files.write_batches`."""
    options = {
        "compression": "snappy",
        "parquet.block.size": str(ROW_GROUP_BYTES),
        "parquet.block.row.count.limit": str(ROW_GROUP_ROWS),
        # Neither is in pyarrow's files by default; both cost CPU on every value or page.
        "parquet.page.write-checksum.enabled": "false",
        "parquet.size.statistics.enabled": "false",
    }
    plain = set(arrow_schema.names) - set(dictionary_columns(arrow_schema))
    for name in sorted(plain):
        options[f"parquet.enable.dictionary#{name}"] = "false"
    return options


def _final_name(spark_name: str, token: str, fallback: int) -> str:
    """``part-<token>-<task>.parquet`` for Spark's ``part-<task>-<uuid>-c<n>.<codec>.parquet``
    (``-c<n>`` kept when a task wrote more than one file)."""
    m = _SPARK_NAME.match(spark_name)
    task, extra = (int(m.group(1)), int(m.group(2))) if m else (fallback, 0)
    more = f"-c{extra:03d}" if extra else ""
    return f"part-{token}-{task:05d}{more}.parquet"


def _footer_rows(fs: Any, path: str) -> int:
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as fh:
        return int(pq.read_metadata(fh).num_rows)


def _publish(work: str, directory: str, token: str) -> list[PartFile]:
    """Rename the part files Spark committed in ``work`` into ``directory``; remove ``work``."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(work)
    _, dest = fsspec.core.url_to_fs(directory)
    names = sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(root, detail=False))
    parts = []
    for i, name in enumerate(n for n in names if n.startswith("part-") and n.endswith(".parquet")):
        src = posixpath.join(root, name)
        final = _final_name(name, token, i)
        rows = _footer_rows(fs, src)
        fs.mv(src, posixpath.join(dest, final))
        size = int(fs.size(posixpath.join(dest, final)))
        parts.append(PartFile(posixpath.join(directory.rstrip("/"), final), final, size, rows, {}))
    fs.rm(root, recursive=True)  # Spark's _SUCCESS and .crc files
    return parts


def _remove(work: str) -> None:
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(work)
        if fs.exists(root):
            fs.rm(root, recursive=True)
    except Exception:  # noqa: BLE001 - best effort; a hidden directory is never read
        log.debug("could not remove %s", work, exc_info=True)


def _observed_counts(metrics: dict, classes: list, total: int) -> dict | None:
    """``{class: rows}`` from the observed metrics, or ``None`` when they do not add up."""
    if int(metrics.get("rows", -1)) != total:
        return None
    counts = {normalise_label(v): int(metrics[f"c{i}"]) for i, v in enumerate(classes)}
    counts = {k: n for k, n in counts.items() if n}
    nulls = int(metrics.get("nulls", 0))
    if nulls:
        counts[None] = nulls
    return counts if sum(counts.values()) == total else None


def _read_counts(spark: Any, parts: list[PartFile], label: str) -> dict:
    """Rows per class of ``label`` in the written files (reads that column only)."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(*[p.path for p in parts]).groupBy(F.col(f"`{label}`").alias("k")).count()
    counts = {normalise_label(r["k"]): int(r["count"]) for r in frame.collect()}  # one row per class
    return {k: n for k, n in counts.items() if n}


def write_parts(spark: Any, frame: Any, directory: str, *, label: str | None, token: str,
                arrow_schema: Any, stage: Callable[[str], Any]) -> list[PartFile]:
    """Write ``frame`` into ``directory`` with Spark's Parquet writer; return its parts.

    Parameters
    ----------
    spark : SparkSession
        The frame's session.
    frame : pyspark.sql.DataFrame
        What to write.
    directory : str
        The staging (Parquet) or table (Delta) directory the commit takes the files from.
    label : str or None
        The column whose rows per class are reported.
    token : str
        The run's token, in every file name.
    arrow_schema : pyarrow.Schema
        The schema of the files (chooses the columns written without a dictionary).
    stage : callable
        ``stage(name)``: the progress context of the write.

    Returns
    -------
    list of PartFile
        One per file; the write's class counts are on the first.
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    make_directory(directory)
    work = posixpath.join(directory.rstrip("/"), f".spark-{token}")
    fields = {f.name: f.dataType for f in frame.schema.fields}
    counted = label is not None and label in fields
    classes = _candidates(spark, label, fields[label]) if counted else []
    classes = classes if len(classes) <= MAX_OBSERVED_CLASSES else []
    metrics = [F.count(F.lit(1)).alias("rows")]
    if counted:
        col = F.col(f"`{label}`")
        metrics.append(F.count_if(col.isNull()).alias("nulls"))
        metrics += [F.count_if(col == F.lit(v)).alias(f"c{i}") for i, v in enumerate(classes)]
    observation = Observation(f"distsmote-write-{uuid.uuid4().hex[:12]}")
    writer = frame.observe(observation, *metrics).write.mode("errorifexists")
    for key, value in _write_options(arrow_schema).items():
        writer = writer.option(key, value)
    has_timestamps = any(isinstance(t, (T.TimestampType, T.TimestampNTZType)) for t in fields.values())
    conf_key = "spark.sql.parquet.outputTimestampType"
    before = spark.conf.get(conf_key, None) if has_timestamps else None
    try:
        if has_timestamps:  # read by the session when the write is planned
            spark.conf.set(conf_key, "TIMESTAMP_MICROS")
        with stage("write"):
            interruptible(lambda: writer.parquet(work))
        parts = _publish(work, directory, token)
    except BaseException:
        _remove(work)
        raise
    finally:
        if has_timestamps:
            spark.conf.set(conf_key, before) if before is not None else spark.conf.unset(conf_key)
    if counted and parts:
        total = sum(p.rows for p in parts)
        counts = _observed_counts(observation.get, classes, total)
        if counts is None:
            log.info("counting the classes of %r in the written files", label)
            with stage("counting classes"):
                counts = interruptible(lambda: _read_counts(spark, parts, label))
        first = parts[0]
        parts[0] = PartFile(first.path, first.name, first.size, first.rows, counts)
    return parts
