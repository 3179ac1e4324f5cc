"""Checking a Parquet input on the driver before any engine reads it.

Only file listings and Parquet footers are read, never the data.  Every problem is a
one-line :class:`InputFileError` naming the file (and the column): a missing path, a
directory without Parquet files, a file that is not Parquet or is truncated, and
schema drift between files.

Schema rules, applied column by column over every file:

* Every file must have the same set of columns (their order may differ).
* Types must be equal, except for lossless widening, which is accepted: floats widen
  to the widest float (``float32`` with ``float64`` gives ``float64``), integers to the
  widest integer (``int32`` with ``int64`` gives ``int64``; an unsigned integer joins
  signed ones only if a wider signed type holds it, e.g. ``uint32`` with ``int64``),
  and ``string`` with ``large_string`` gives ``large_string``.  Every engine then reads
  every file with the unified types, so the output has them too.
* Anything else (an integer column that is a float in another file, a string that is a
  number elsewhere, timestamps of different units) is refused.
"""

from __future__ import annotations

import posixpath
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from distsmote.paths import redact


class InputFileError(ValueError):
    """An input file cannot be read as part of one Parquet dataset."""


def _display(fs: Any, path: str) -> str:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    shown = path if protocol in ("file", "local") else fs.unstrip_protocol(path)
    return redact(shown)


def _hidden(relative: str) -> bool:
    """Readers skip names starting with ``_`` or ``.`` (``_SUCCESS``, ``.crc``, ``_temporary``)."""
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def data_files(fs: Any, root: str) -> list[str]:
    """The files a Parquet reader would read under ``root`` (or ``root`` itself)."""
    if fs.isfile(root):
        return [root]
    base = root.rstrip("/")
    return sorted(f for f in fs.find(base) if not _hidden(posixpath.relpath(f, base)))


def read_footer(fs: Any, path: str) -> pa.Schema:
    """The Arrow schema in one file's Parquet footer, or a one-line reason it has none."""
    import pyarrow.parquet as pq

    try:
        with fs.open(path, "rb") as fh:
            return pq.read_schema(fh)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = _why_unreadable(fs, path, exc)
    raise InputFileError(f"cannot read input file {_display(fs, path)!r}: {reason}")


def _why_unreadable(fs: Any, path: str, exc: BaseException) -> str:
    try:
        size = int(fs.size(path))
        with fs.open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as err:
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
    if size == 0:
        return "the file is empty (0 bytes), not a Parquet file"
    if head != b"PAR1":
        return "not a Parquet file (it does not start with the Parquet magic bytes 'PAR1')"
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"truncated or corrupt Parquet file ({detail})"


def list_data_files(path: str) -> tuple[Any, str, list[str]]:
    """``(filesystem, root, data files)`` of a Parquet file or dataset directory.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    InputFileError
        No Parquet file under a directory.
    """
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    if not fs.exists(root):
        raise FileNotFoundError(f"input {redact(path)!r} does not exist")
    files = data_files(fs, root)
    if not files:
        raise InputFileError(
            f"no Parquet files under {redact(path)!r} (names starting with '_' or '.' are ignored)"
        )
    return fs, root, files


def unify_files(fs: Any, files: list[str]) -> tuple[pa.Schema, bool, pa.Schema | None]:
    """Read the files' footers (in parallel) and unify them: ``(schema, widened,
    exact)``, where ``exact`` is the schema every file has, column order and
    nullability included (``None`` when they differ)."""
    with ThreadPoolExecutor(max_workers=min(16, len(files))) as pool:
        schemas = list(pool.map(lambda f: read_footer(fs, f), files))
    named = [(_display(fs, f), s) for f, s in zip(files, schemas)]
    schema = unify_schemas(named)
    exact = schemas[0] if all(s.equals(schemas[0]) for s in schemas[1:]) else None
    return schema, any(not _same_types(s, schema) for s in schemas), exact


def _same_types(schema: pa.Schema, target: pa.Schema) -> bool:
    return all(schema.field(f.name).type == f.type for f in target)


def unify_schemas(named: list[tuple[str, pa.Schema]]) -> pa.Schema:
    """One schema for ``[(file, schema), ...]``, or an error naming the file and column."""
    first_file, first = named[0]
    columns = list(first.names)
    for file, schema in named[1:]:
        extra = [c for c in schema.names if c not in columns]
        if extra:
            raise InputFileError(
                f"input file {file!r} has column {extra[0]!r}, which {first_file!r} does not have; "
                "every input file must have the same columns"
            )
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise InputFileError(
                f"input file {file!r} has no column {missing[0]!r}, which {first_file!r} has; "
                "every input file must have the same columns"
            )
    fields = []
    for name in columns:
        typed = [(file, schema.field(name).type) for file, schema in named]
        fields.append(pa.field(name, unify_types(name, typed)))
    return pa.schema(fields, metadata=first.metadata)


def unify_types(column: str, typed: list[tuple[str, pa.DataType]]) -> pa.DataType:
    """The one type all files' ``column`` widens to without loss (see the module docstring)."""
    first_file, result = typed[0]
    for file, t in typed[1:]:
        widened = _widen(result, t)
        if widened is None:
            raise InputFileError(
                f"column {column!r} is {t} in input file {file!r} but {result} in {first_file!r}; "
                "these types do not widen to one (floats widen to floats, integers to integers). "
                "Cast the column to one type in every file"
            )
        result = widened
    return result


def _widen(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    if a == b:
        return a
    t = pa.types
    if t.is_floating(a) and t.is_floating(b):
        return a if a.bit_width >= b.bit_width else b
    if t.is_integer(a) and t.is_integer(b):
        if t.is_signed_integer(a) == t.is_signed_integer(b):
            return a if a.bit_width >= b.bit_width else b
        signed, unsigned = (a, b) if t.is_signed_integer(a) else (b, a)
        return signed if signed.bit_width > unsigned.bit_width else None
    strings = (pa.string(), pa.large_string())
    if a in strings and b in strings:
        return pa.large_string()
    return None
