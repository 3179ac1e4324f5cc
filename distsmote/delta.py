"""Delta Lake tables through delta-rs (the ``deltalake`` package): no JVM, any engine.

Reading: :func:`delta_files` lists the data files of one table version (the latest,
or a pinned ``--version``) with their partition values, for every engine to read as
plain Parquet.  Deletion vectors and column mapping are refused (their files alone do
not give the table's rows).

Writing: the engines' tasks write Parquet part files into the table directory, under
its ``key=value`` partition directories; they are invisible until the driver commits
the list of files, which is small, in **one** Delta transaction
(:meth:`DeltaTable.create_write_transaction`, or
:func:`deltalake.transaction.create_table_with_add_actions` for a new table).  A run
replaces exactly the partition it writes (an overwrite with partition filters), so a
retried or repeated run for one day is idempotent and the history shows one version
per run.  The transaction is checked against the version read before the files were
written (optimistic concurrency): of two runs on one partition, one commits and the
other fails with :class:`ConcurrentRunError`.  A run that fails or is killed before the
commit leaves the table at its previous version; its unreferenced files are removed
when it fails, or by ``VACUUM`` after a kill.

``dask-deltatable`` reads Delta tables into Dask, but its ``to_deltalake`` has no
overwrite (no partition replace) and it does not serve Spark or pandas; the few lines
here serve all three engines alike.
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from distsmote.engines.files import PartFile
from distsmote.paths import redact

log = logging.getLogger("distsmote")

#: Key of the run manifest in a commit's metadata (see ``DeltaTable.history()``).
MANIFEST_KEY = "distsmote.manifest"


class DeltaInputError(ValueError):
    """A Delta table cannot be read as asked (no such table or version, unsupported feature)."""


class ConcurrentRunError(RuntimeError):
    """Another run committed to the same table partition first."""


class OutputSchemaError(ValueError):
    """The output's schema differs from the existing table's."""


def _deltalake() -> Any:
    from distsmote._optional import require

    return require("deltalake", "Delta Lake tables need the deltalake package", "deltalake")


def _uri(path: str) -> str:
    """A path delta-rs accepts (local paths absolute)."""
    import os

    from distsmote.paths import split_scheme

    scheme, rest = split_scheme(path)
    if scheme in ("", "file", "local"):
        return os.path.abspath(rest if scheme else path)
    return path


def open_table(path: str, version: int | None = None) -> Any:
    """The ``DeltaTable`` at ``path`` (at ``version``), or a one-line error."""
    dl = _deltalake()
    try:
        latest = dl.DeltaTable(_uri(path))
    except Exception as exc:  # noqa: BLE001 - delta-rs raises several kinds
        raise DeltaInputError(f"cannot open Delta table {redact(path)!r}: {_first(exc)}") from None
    if version is None or version == latest.version():
        return latest
    if version < 0 or version > latest.version():
        raise DeltaInputError(
            f"Delta table {redact(path)!r} has no version {version}; its latest version is "
            f"{latest.version()} (pass --version between 0 and {latest.version()}, or none for the latest)"
        )
    try:
        return dl.DeltaTable(_uri(path), version=version)
    except Exception as exc:  # noqa: BLE001 - e.g. the log was cleaned up past it
        raise DeltaInputError(
            f"Delta table {redact(path)!r} cannot be read at version {version} ({_first(exc)}); "
            f"its latest version is {latest.version()}"
        ) from None


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def arrow_schema(table: Any) -> pa.Schema:
    """A table's schema as a ``pyarrow.Schema``."""
    return pa.schema(table.schema().to_arrow())


def delta_files(path: str, version: int | None) -> tuple:
    """``(files, sizes, partition values, partition types, data schema, version)``."""
    table = open_table(path, version)
    protocol = table.protocol()
    features = set(protocol.reader_features or [])
    unsupported = features & {"deletionVectors", "columnMapping"}
    if unsupported:
        raise DeltaInputError(
            f"Delta table {redact(path)!r} uses {sorted(unsupported)}, which distsmote cannot read "
            "file by file; rewrite it without them (e.g. OPTIMIZE/REORG, or a copy)"
        )
    schema = arrow_schema(table)
    keys = list(table.metadata().partition_columns)
    types = {k: schema.field(k).type for k in keys}
    data_schema = pa.schema([f for f in schema if f.name not in keys])
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    actions.sort(key=lambda a: a["path"])
    root = table.table_uri.rstrip("/")
    files = [_file_url(root, a["path"]) for a in actions]
    sizes = [int(a["size_bytes"]) for a in actions]
    parts = [{k: a.get(f"partition.{k}") for k in keys} for a in actions]
    return files, sizes, parts, types, data_schema, int(table.version())


def _file_url(root: str, relative: str) -> str:
    from urllib.parse import unquote

    url = posixpath.join(root, unquote(relative))
    return url[len("file://"):] if url.startswith("file://") else url


def partition_path(partition: dict) -> str:
    """``key=value/...`` of a partition (Hive style, as Delta writers lay files out)."""
    from urllib.parse import quote

    from distsmote.inputs import HIVE_NULL

    return "/".join(
        f"{quote(str(k), safe='')}={HIVE_NULL if v is None else quote(_value_text(v), safe='')}"
        for k, v in partition.items()
    )


def _value_text(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


@dataclass
class DeltaWrite:
    """One run's write into a Delta table partition (see the module docstring).

    Create it before any file is written: it records the version the run read, which
    the commit is checked against.
    """

    path: str
    partition: dict
    partition_types: dict

    def __post_init__(self) -> None:
        dl = _deltalake()
        self.table = dl.DeltaTable(_uri(self.path)) if dl.DeltaTable.is_deltatable(_uri(self.path)) else None
        self.read_version = None if self.table is None else int(self.table.version())
        self.done = False

    @property
    def directory(self) -> str:
        """Where the part files go: the table's partition directory."""
        sub = partition_path(self.partition)
        return posixpath.join(self.path.rstrip("/"), sub) if sub else self.path.rstrip("/")

    def full_schema(self, data_schema: pa.Schema) -> pa.Schema:
        """The table schema: the data columns, then the partition columns."""
        return pa.schema([*data_schema, *(pa.field(k, t) for k, t in self.partition_types.items())])

    def check_schema(self, data_schema: pa.Schema) -> None:
        """Refuse output whose columns or types differ from the existing table's."""
        if self.table is None:
            return
        dl = _deltalake()
        mine = dl.Schema.from_arrow(self.full_schema(data_schema))
        theirs = self.table.schema()
        keys = list(self.table.metadata().partition_columns)
        if keys != list(self.partition):
            raise OutputSchemaError(
                f"output Delta table {redact(self.path)!r} is partitioned by {keys}, "
                f"but this run writes partitions by {list(self.partition)}; pass --partition-by "
                f"{','.join(keys) or '(nothing)'} or choose another output"
            )
        mine_f = {f.name: f.type for f in mine.fields}
        theirs_f = {f.name: f.type for f in theirs.fields}
        if set(mine_f) != set(theirs_f):
            extra, missing = sorted(set(mine_f) - set(theirs_f)), sorted(set(theirs_f) - set(mine_f))
            what = f"has no column {missing[0]!r}" if missing else f"has column {extra[0]!r}"
            raise OutputSchemaError(
                f"this run's output {what}, unlike the existing Delta table {redact(self.path)!r} "
                f"(its columns: {sorted(theirs_f)}); write to a new table or drop the old one"
            )
        for name, t in mine_f.items():
            if t != theirs_f[name]:
                raise OutputSchemaError(
                    f"column {name!r} is {_type_text(t)} in this run's output but "
                    f"{_type_text(theirs_f[name])} in the existing Delta table {redact(self.path)!r}; "
                    "cast the input column, or write to a new table"
                )

    def commit(self, parts: list[PartFile], data_schema: pa.Schema, metadata: dict) -> int:
        """Commit the part files in one transaction; return the new table version.

        Raises
        ------
        ConcurrentRunError
            Another run committed to this partition since this one read the table.
        """
        dl = _deltalake()
        from deltalake.transaction import AddAction, create_table_with_add_actions

        from distsmote._faults import fault_point

        now = int(time.time() * 1000)
        values = {k: None if v is None else _value_text(v) for k, v in self.partition.items()}
        sub = partition_path(self.partition)
        adds = [
            AddAction(posixpath.join(sub, p.name) if sub else p.name, p.size, values, now, True,
                      json.dumps({"numRecords": p.rows}))
            for p in parts
        ]
        schema = dl.Schema.from_arrow(self.full_schema(data_schema))
        props = dl.CommitProperties(custom_metadata={k: json.dumps(v) if not isinstance(v, str) else v
                                                     for k, v in metadata.items()})
        fault_point("delta.commit")
        try:
            if self.table is None:
                create_table_with_add_actions(_uri(self.path), schema, adds, mode="error",
                                              partition_by=list(self.partition) or None,
                                              commit_properties=props)
            else:
                filters = [(k, "=", v) for k, v in values.items()] or None
                self.table.create_write_transaction(adds, "overwrite", schema, list(self.partition) or None,
                                                    filters, commit_properties=props)
        except Exception as exc:  # noqa: BLE001 - delta-rs errors by message
            text = str(exc)
            if "concurrent" in text.lower() or "already exists" in text.lower() or "version" in text.lower() \
                    and "exist" in text.lower():
                where = f" partition {sub}" if sub else ""
                raise ConcurrentRunError(
                    f"another run committed to Delta table {redact(self.path)!r}{where} while this one ran "
                    f"(it read version {self.read_version if self.read_version is not None else '(none)'}); "
                    "nothing of this run was committed: rerun it to replace the partition again"
                ) from None
            raise
        self.done = True
        fault_point("delta.committed")
        return int(dl.DeltaTable(_uri(self.path)).version())

    def discard(self, parts_dir_token: str) -> None:
        """Remove this run's own (uncommitted) part files: names carry the run's token."""
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(self.directory)
            for f in fs.glob(posixpath.join(root, f"part-{parts_dir_token}-*.parquet")):
                fs.rm(f)
        except Exception:  # noqa: BLE001 - best effort; VACUUM removes what is left
            log.debug("could not remove uncommitted files of %s", redact(self.path), exc_info=True)


def _type_text(t: Any) -> str:
    text = str(t)
    return text.removeprefix("PrimitiveType(").removesuffix(")").strip('"')


def history(path: str, limit: int | None = None) -> list[dict]:
    """The table's history (newest first), each entry with its manifest decoded if any."""
    table = open_table(path)
    out = []
    for h in table.history(limit):
        entry = dict(h)
        if isinstance(entry.get(MANIFEST_KEY), str):
            try:
                entry[MANIFEST_KEY] = json.loads(entry[MANIFEST_KEY])
            except ValueError:
                pass
        out.append(entry)
    return out
