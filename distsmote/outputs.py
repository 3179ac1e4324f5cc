"""Where a job's output goes: a Parquet dataset or a Delta table, whole or one partition.

An :class:`Output` is used in four steps, each driven by the job:

1. :meth:`Output.prepare` (before anything is written): recover from killed runs,
   refuse an existing output without ``overwrite`` (a partition may always be
   replaced: that is what a rerun does), refuse a schema that differs from the existing
   table's.
2. :meth:`Output.write`: the engine writes part files (``Engine.write_parts``) into a
   hidden staging directory (Parquet) or the table's partition directory (Delta).
3. :meth:`Output.commit`: Parquet: the all-or-nothing rename of :mod:`distsmote.commit`
   (of the partition directory only, when partitioned); Delta: one transaction that
   replaces the partition (:mod:`distsmote.delta`).
4. :meth:`Output.abort` after a failure or a signal: nothing that looks complete is left.
"""

from __future__ import annotations

import logging
import posixpath
import uuid
from abc import ABC, abstractmethod
from typing import Any

import pyarrow as pa

from distsmote.engines.files import PartFile
from distsmote.paths import redact

log = logging.getLogger("distsmote")


class Output(ABC):
    """One dataset or table (partition) a job writes."""

    def __init__(self, path: str, *, partition: dict, partition_types: dict, overwrite: bool,
                 protect: tuple[str, ...] = ()) -> None:
        self.path = path.rstrip("/")
        self.partition = dict(partition)
        self.partition_types = dict(partition_types)
        self.overwrite = overwrite
        self.protect = protect
        self.token = uuid.uuid4().hex[:12]
        self.committed = False

    @property
    def target(self) -> str:
        """The directory this run replaces: the dataset, or its partition directory."""
        from distsmote.delta import partition_path

        sub = partition_path(self.partition)
        return posixpath.join(self.path, sub) if sub else self.path

    @abstractmethod
    def prepare(self, engine: Any) -> None:
        """Recovery and checks of the existing output, before anything is read or written."""

    @abstractmethod
    def check_schema(self, data_schema: pa.Schema) -> None:
        """Refuse data whose columns or types differ from the existing table's."""

    @abstractmethod
    def write(self, engine: Any, frame: Any, label: str | None, copies: list[str] = ()) -> list[PartFile]:
        """Write the frame's part files (invisible to readers until the commit), after
        copies of the input files ``copies`` (:mod:`distsmote.input_copy`)."""

    @abstractmethod
    def commit(self, parts: list[PartFile], data_schema: pa.Schema, manifest: dict) -> dict:
        """Make the written files the output, atomically; return what the manifest records."""

    @abstractmethod
    def abort(self) -> None:
        """Undo this run's writes after a failure (best effort, never raises)."""


class ParquetOutput(Output):
    """A Parquet dataset directory, committed by staging and rename."""

    format = "parquet"

    def prepare(self, engine: Any) -> None:
        from distsmote import commit
        from distsmote.inputs import is_delta

        self.store = engine.store(self.path)
        self.owner = commit.Owner.new()
        if self.store.exists(self.path) and is_delta(self.path):
            raise commit.OutputExistsError(
                f"output {redact(self.path)!r} is a Delta table; pass --format delta to write to it"
            )
        commit.recover(self.store, self.target, protect=self.protect)
        if not self.partition:
            if self.store.exists(self.path) and not self.overwrite:
                raise commit.OutputExistsError(
                    f"output {redact(self.path)!r} already exists; pass --overwrite to replace it"
                )

    def check_schema(self, data_schema: pa.Schema) -> None:
        if self.partition:
            _check_parquet_schema(self.path, self.target, data_schema)

    def write(self, engine: Any, frame: Any, label: str | None, copies: list[str] = ()) -> list[PartFile]:
        from distsmote import commit

        from distsmote.engines.files import make_directory

        self.staging = commit.sibling(self.target, "staging", self.owner)
        log.info("writing %s", redact(self.target))
        make_directory(self.staging)  # a run's staging exists from its first write on
        return engine.write_parts(frame, self.staging, label=label, token=self.token, copies=copies)

    def commit(self, parts: list[PartFile], data_schema: pa.Schema, manifest: dict) -> dict:
        from distsmote import commit
        from distsmote.engines.files import keep_only

        stray = keep_only(self.staging, parts)
        if stray:
            log.info("removed %d file(s) of failed task attempts: %s", len(stray), ", ".join(stray))
        commit.commit(self.store, self.staging, self.target, self.overwrite or bool(self.partition),
                      self.owner, on_commit=lambda: setattr(self, "committed", True))
        return {"path": redact(self.target)}

    def abort(self) -> None:
        from distsmote import commit

        if hasattr(self, "owner"):
            commit.abort(self.store, self.target, self.owner)


def _check_parquet_schema(root: str, target: str, data_schema: pa.Schema) -> None:
    """Refuse a partition whose columns or types differ from the dataset's other files."""
    import fsspec

    from distsmote.delta import OutputSchemaError
    from distsmote.reading import data_files, read_footer

    fs, base = fsspec.core.url_to_fs(root)
    if not fs.exists(base):
        return
    _, skip = fsspec.core.url_to_fs(target)
    others = [f for f in data_files(fs, base) if not f.startswith(skip.rstrip("/") + "/")]
    if not others:
        return
    theirs = read_footer(fs, others[0])
    _compare(data_schema, theirs, f"the existing dataset {redact(root)!r} (file {redact(others[0])!r})",
             OutputSchemaError)


def _compare(mine: pa.Schema, theirs: pa.Schema, what: str, error: type[Exception]) -> None:
    def norm(t: pa.DataType) -> pa.DataType:
        return pa.string() if t in (pa.string(), pa.large_string()) else t

    if set(mine.names) != set(theirs.names):
        extra, missing = sorted(set(mine.names) - set(theirs.names)), sorted(set(theirs.names) - set(mine.names))
        which = f"has no column {missing[0]!r}" if missing else f"has column {extra[0]!r}"
        raise error(f"this run's output {which}, unlike {what}; write to a new output or drop the old one")
    for f in mine:
        other = theirs.field(f.name).type
        if norm(f.type) != norm(other):
            raise error(f"column {f.name!r} is {f.type} in this run's output but {other} in {what}; "
                        "cast the input column, or write to a new output")


class DeltaOutput(Output):
    """A Delta Lake table, committed in one transaction through delta-rs."""

    format = "delta"

    def prepare(self, engine: Any) -> None:
        import fsspec

        from distsmote import commit
        from distsmote.delta import DeltaWrite
        from distsmote.inputs import is_delta

        fs, root = fsspec.core.url_to_fs(self.path)
        if fs.exists(root) and not is_delta(self.path) and fs.ls(root):
            raise commit.OutputExistsError(
                f"output {redact(self.path)!r} exists and is not a Delta table; choose another output "
                "(or --format parquet to replace it as a Parquet dataset)"
            )
        self.delta = DeltaWrite(self.path, self.partition, self.partition_types)
        if self.delta.table is not None and not self.partition and not self.overwrite:
            raise commit.OutputExistsError(
                f"output Delta table {redact(self.path)!r} already exists; pass --overwrite to replace "
                "its contents (in one new version), or --partition-by to replace one partition"
            )
        self.stage = "prepared"

    def check_schema(self, data_schema: pa.Schema) -> None:
        self.delta.check_schema(data_schema)

    def write(self, engine: Any, frame: Any, label: str | None, copies: list[str] = ()) -> list[PartFile]:
        log.info("writing %s", redact(self.target))
        self.stage = "writing"
        return engine.write_parts(frame, self.delta.directory, label=label, token=self.token, copies=copies)

    def commit(self, parts: list[PartFile], data_schema: pa.Schema, manifest: dict) -> dict:
        from distsmote.delta import MANIFEST_KEY, ConcurrentRunError

        self.stage = "committing"
        try:
            version = self.delta.commit(parts, data_schema, {MANIFEST_KEY: manifest})
        except ConcurrentRunError:
            self.stage = "writing"  # certainly not committed: our files may go
            raise
        finally:
            if self.delta.done:
                self.stage = "committed"
        self.committed = True
        return {"path": redact(self.path), "delta_version": version}

    def abort(self) -> None:
        # Only files certainly not committed are removed; after an unclear commit error
        # they stay (unreferenced files are harmless; VACUUM removes them).
        if getattr(self, "stage", None) == "writing":
            self.delta.discard(self.token)


def make_output(fmt: str, path: str, **kwargs: Any) -> Output:
    """The :class:`Output` for ``--format``."""
    return {"parquet": ParquetOutput, "delta": DeltaOutput}[fmt](path, **kwargs)
