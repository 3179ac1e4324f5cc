"""Resolving an input on the driver: which files to read, with which schema.

An input is a Parquet file, a Parquet dataset directory (Hive-style ``key=value``
partition directories allowed) or a Delta Lake table, local or at any fsspec URL.
:func:`resolve_input` lists its files (a Delta table: those of the pinned or latest
version), keeps those of the partitions ``--where`` selects, reads their footers only
and unifies their schemas (:mod:`distsmote.reading`).  The result, a :class:`Source`,
is what every engine's ``read`` takes, so all engines read exactly the same files.

Partition columns are not features: each must have a single value in the selection
(a daily job reads one day), which the job writes back into its output's partition
path and manifest.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pyarrow as pa

from distsmote.paths import redact
from distsmote.reading import InputFileError, list_data_files, read_footer
from distsmote.where import Condition, WhereError, parse_where

log = logging.getLogger("distsmote")

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


@dataclass(frozen=True)
class Source:
    """The files an engine reads, and how.

    Attributes
    ----------
    path : str
        The input as given.
    format : {"parquet", "delta"}
    files : list of str or None
        Data files (paths or URLs); ``None``: the engine reads ``path`` itself (Spark on
        a URL fsspec cannot open).
    sizes : list of int
        Bytes of each file.
    schema : pyarrow.Schema or None
        The data files' unified schema (partition columns excluded).
    widened : bool
        Whether files must be read with ``schema`` (their types differ from it).
    partition : dict
        ``{partition column: its one value}`` of the selection.
    partition_types : dict
        ``{partition column: pyarrow type}``.
    row_filter : list of Condition
        Conditions on data columns, pushed down to the reader.
    version : int or None
        The Delta table version read.
    where : str or None
        The ``--where`` text.
    file_schema : pyarrow.Schema or None
        Parquet input: the schema every data file has exactly (column order and
        nullability included), which lets a job copy the files into its output;
        ``None`` when the files differ or are not Parquet files of a listed dataset.
    """

    path: str
    format: str
    files: list[str] | None
    sizes: list[int] = field(default_factory=list)
    schema: pa.Schema | None = None
    widened: bool = False
    partition: dict = field(default_factory=dict)
    partition_types: dict = field(default_factory=dict)
    row_filter: list[Condition] = field(default_factory=list)
    version: int | None = None
    where: str | None = None
    file_schema: pa.Schema | None = None

    def describe(self) -> dict:
        """The input part of the run manifest."""
        out: dict[str, Any] = {"path": redact(self.path), "format": self.format}
        if self.version is not None:
            out["delta_version"] = self.version
        if self.where:
            out["where"] = self.where
        if self.partition:
            out["partition"] = {k: _text(v) for k, v in self.partition.items()}
        if self.files is not None:
            out["files"] = [{"path": redact(f), "bytes": s} for f, s in zip(self.files, self.sizes)]
            out["bytes"] = int(sum(self.sizes))
        return out


def _text(value: Any) -> str | None:
    return None if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def is_delta(path: str) -> bool:
    """Whether ``path`` is a Delta table (has a ``_delta_log`` directory)."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(path)
        return bool(fs.isdir(posixpath.join(root.rstrip("/"), "_delta_log")))
    except Exception:  # noqa: BLE001 - cannot look: not a Delta table we can read
        return False


def resolve_input(path: str, *, fmt: str = "auto", where: str | None = None,
                  version: int | None = None) -> Source:
    """List, select and check an input's files (footers only).

    Raises
    ------
    FileNotFoundError
        The input does not exist.
    InputFileError, WhereError, DeltaInputError
        Unreadable or mismatched files, a ``--where`` that selects nothing or names an
        unknown column, a partition column with several values, a missing version.
    """
    conds = parse_where(where)
    if fmt == "auto":
        fmt = "delta" if is_delta(path) else "parquet"
    if version is not None and fmt != "delta":
        raise InputFileError(f"--version {version} needs a Delta table, but input {redact(path)!r} "
                             "is not one (it has no _delta_log)")
    if fmt == "delta":
        from distsmote.delta import delta_files

        files, sizes, parts, types, schema, version = delta_files(path, version)
        widened = True  # read every file with the table's schema
    else:
        files, sizes, parts, types, schema, widened = _parquet_files(path)
    selected = _select(path, files, parts, types, schema, conds, where)
    files = [files[i] for i in selected]
    sizes = [sizes[i] for i in selected]
    exact = None
    if fmt == "parquet":  # footers of the selected files only
        schema, widened, sizes, exact = _footers(files)
    partition = _single_values(path, [parts[i] for i in selected], types, where)
    row_filter = [c for c in conds if c.column not in types]
    _check_literals(row_filter, schema, where)
    return Source(path, fmt, files, sizes, schema, widened, partition, types, row_filter, version, where,
                  file_schema=exact)


def _parquet_files(path: str) -> tuple:
    fs, root, found = list_data_files(path)
    base = root.rstrip("/")
    parts = [_hive_values(posixpath.relpath(f, base)) if f != root else {} for f in found]
    keys = sorted({k for p in parts for k in p})
    for i, p in enumerate(parts):
        if set(p) != set(keys):
            raise InputFileError(
                f"input file {_url(fs, found[i])!r} is not under the same partition directories "
                f"({', '.join(k + '=...' for k in keys)}) as the others"
            )
    types = {k: _infer_type([p[k] for p in parts]) for k in keys}
    parts = [{k: _cast(v, types[k]) for k, v in p.items()} for p in parts]
    sizes = [0] * len(found)
    urls = [_url(fs, f) for f in found]
    return urls, sizes, parts, types, None, False


def _url(fs: Any, path: str) -> str:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if protocol in ("file", "local") else fs.unstrip_protocol(path)


def _hive_values(relative: str) -> dict:
    out = {}
    for segment in relative.split("/")[:-1]:
        if "=" in segment:
            key, _, value = segment.partition("=")
            out[unquote(key)] = None if value == HIVE_NULL else unquote(value)
    return out


def _infer_type(values: list[str | None]) -> pa.DataType:
    present = [v for v in values if v is not None]
    try:
        [int(v) for v in present]
    except ValueError:
        return pa.string()
    return pa.int64() if present else pa.string()


def _cast(value: str | None, typ: pa.DataType) -> Any:
    if value is None:
        return None
    return int(value) if pa.types.is_integer(typ) else value


def _footers(files: list[str]) -> tuple[pa.Schema, bool, list[int], pa.Schema | None]:
    import fsspec

    from distsmote.reading import unify_files

    fs, _ = fsspec.core.url_to_fs(files[0])
    roots = [fsspec.core.url_to_fs(f)[1] for f in files]
    schema, widened, exact = unify_files(fs, roots)
    return schema, widened, [int(fs.size(f)) for f in roots], exact


def _select(path: str, files: list[str], parts: list[dict], types: dict, schema: pa.Schema | None,
            conds: list[Condition], where: str | None) -> list[int]:
    known = set(types) | (set(schema.names) if schema is not None else set())
    if schema is None and files:  # Parquet: columns from one footer (all are checked later)
        import fsspec

        fs, root = fsspec.core.url_to_fs(files[0])
        known |= set(read_footer(fs, root).names)
    for c in conds:
        if c.column not in known:
            raise WhereError(f"--where names column {c.column!r}, which input {redact(path)!r} does not "
                             f"have; its columns: {sorted(known)}")
    on_parts = [c for c in conds if c.column in types]
    selected = [i for i, p in enumerate(parts) if all(c.test(p[c.column]) for c in on_parts)]
    if not selected:
        shown = sorted({"/".join(f"{k}={_text(v)}" for k, v in p.items()) for p in parts})
        listing = ", ".join(shown[:5]) + (f", ... ({len(shown)} in all)" if len(shown) > 5 else "")
        what = "partition" if on_parts else "file"
        raise WhereError(f"--where {where!r} matches no {what} of input {redact(path)!r}"
                         + (f"; its partitions: {listing}" if shown else " (the table is empty)"))
    return selected


def _check_literals(conds: list[Condition], schema: pa.Schema | None, where: str | None) -> None:
    """Refuse a row condition whose value cannot compare with its column's type."""
    if schema is None:
        return
    for c in conds:
        typ = schema.field(c.column).type
        values = c.value if c.op == "in" else (c.value,)
        numeric = pa.types.is_integer(typ) or pa.types.is_floating(typ)
        text = pa.types.is_string(typ) or pa.types.is_large_string(typ)
        bad = [v for v in values if (numeric and (isinstance(v, str) or isinstance(v, bool)))
               or (text and not isinstance(v, str))]
        if bad:
            raise WhereError(
                f"--where {where!r} compares column {c.column!r} ({typ}) with {bad[0]!r}; "
                + ("write the number unquoted" if numeric else "quote the text, e.g. 'abc'")
            )


def _single_values(path: str, parts: list[dict], types: dict, where: str | None) -> dict:
    out = {}
    for key in types:
        values = sorted({_text(p[key]) for p in parts}, key=str)
        if len(values) > 1:
            shown = ", ".join(map(str, values[:4])) + (", ..." if len(values) > 4 else "")
            raise WhereError(
                f"the input {redact(path)!r} selection spans {len(values)} values of partition column "
                f"{key!r} ({shown}); select one, e.g. --where \"{key} = '{values[-1]}'\""
            )
        out[key] = parts[0][key] if parts else None
    return out
