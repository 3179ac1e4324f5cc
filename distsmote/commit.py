"""The output commit: an all-or-nothing replace that a rerun can finish or undo.

A run writes into a hidden *staging* sibling of the output, then commits:

1. ``commit.begin``: drop any ``_SUCCESS`` the engine left in staging; write the
   journal ``_OWNER`` into staging (who runs, whether an old output is replaced and
   whether it was marked complete).
2. ``commit.unmark``: remove the old output's ``_SUCCESS``, so that from here on
   nothing at the output path claims to be complete.
3. ``commit.aside``: rename the old output to a hidden *aside* sibling.
4. ``commit.move``: rename staging to the output path.
5. ``commit.mark``: write ``_SUCCESS``.  This is the commit point.
6. ``commit.cleanup``: remove ``_OWNER`` from the output and the aside copy
   (``commit.done`` follows it).

Each step name is also a fault point (:mod:`distsmote._faults`), so tests kill a run
at every step.  A reader therefore sees either the old dataset (marked complete as
before), or the new one, or a directory without ``_SUCCESS``; never a mix of old and
new files, never incomplete data under ``_SUCCESS``.

Staging and aside directories carry their owner in their names,
``.<output>.staging-<host>-<pid>-<random>`` and ``.<output>.aside-<same>``.  Before a
run writes anything, :func:`recover` looks at the siblings of its output: a directory
whose owner is dead (same host, process gone) is the debris of a killed run, which is
undone (the old output is restored and re-marked) or, past the commit point, finished.
Directories of live runs and of other hosts are left alone.

Everything goes through a tiny :class:`Store` (exists, rename, delete, touch, read and
write a small file, list names), implemented for fsspec (local paths and fsspec URLs)
and for the Hadoop FileSystem of a SparkSession (any URL Spark can write).  On local
filesystems and HDFS a directory rename is atomic.  On object stores a "rename" copies
then deletes object by object: the invariants above still hold (``_SUCCESS`` is removed
first and written last), but a kill during a rename can leave the *old* copy split in
two, which recovery then leaves unmarked rather than guess.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distsmote._faults import fault_point
from distsmote.paths import redact

log = logging.getLogger("distsmote")

SUCCESS = "_SUCCESS"
OWNER = "_OWNER"


class OutputExistsError(FileExistsError):
    """The output path exists and ``overwrite`` was not requested."""


# -- stores -----------------------------------------------------------------------------


class Store(ABC):
    """The few filesystem operations the commit needs; paths are URL-form strings."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a file or directory exists at ``path``."""

    @abstractmethod
    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst`` (which must not exist)."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove a file or directory tree; a missing path is not an error."""

    @abstractmethod
    def write_text(self, path: str, text: str) -> None:
        """Create or replace a small file."""

    @abstractmethod
    def read_text(self, path: str) -> str | None:
        """A small file's text, ``None`` if it does not exist."""

    @abstractmethod
    def names(self, directory: str) -> list[str]:
        """Base names of the entries of ``directory`` (empty if it does not exist)."""

    def touch(self, path: str) -> None:
        """Create an empty file."""
        self.write_text(path, "")


class FsspecStore(Store):
    """A :class:`Store` over an fsspec filesystem (local paths and fsspec URLs)."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.fs, _ = fsspec.core.url_to_fs(url)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def rename(self, src: str, dst: str) -> None:
        self.fs.mv(src, dst, recursive=True)

    def delete(self, path: str) -> None:
        try:
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass

    def write_text(self, path: str, text: str) -> None:
        self.fs.makedirs(posixpath.dirname(path.rstrip("/")), exist_ok=True)
        self.fs.pipe_file(path, text.encode())

    def read_text(self, path: str) -> str | None:
        try:
            return self.fs.cat_file(path).decode()
        except (FileNotFoundError, IsADirectoryError):
            return None

    def names(self, directory: str) -> list[str]:
        try:
            entries = self.fs.ls(directory, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [posixpath.basename(str(e).rstrip("/")) for e in entries]


class HadoopStore(Store):
    """A :class:`Store` over the Hadoop FileSystem of a SparkSession."""

    def __init__(self, session: Any) -> None:
        self._jvm = session._jvm
        self._conf = session._jsc.hadoopConfiguration()

    def _fs(self, path: str) -> tuple[Any, Any]:
        p = self._jvm.org.apache.hadoop.fs.Path(path)
        return p.getFileSystem(self._conf), p

    def exists(self, path: str) -> bool:
        fs, p = self._fs(path)
        return bool(fs.exists(p))

    def rename(self, src: str, dst: str) -> None:
        fs, s = self._fs(src)
        _, d = self._fs(dst)
        if not fs.rename(s, d):
            raise OSError(f"could not rename {redact(src)!r} to {redact(dst)!r}")

    def delete(self, path: str) -> None:
        fs, p = self._fs(path)
        if fs.exists(p):
            fs.delete(p, True)

    def write_text(self, path: str, text: str) -> None:
        fs, p = self._fs(path)
        out = fs.create(p, True)
        try:
            out.write(bytearray(text.encode()))
        finally:
            out.close()

    def read_text(self, path: str) -> str | None:
        fs, p = self._fs(path)
        if not fs.exists(p) or fs.getFileStatus(p).isDirectory():
            return None
        stream = fs.open(p)
        try:
            return str(self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def names(self, directory: str) -> list[str]:
        fs, p = self._fs(directory)
        if not fs.exists(p) or not fs.getFileStatus(p).isDirectory():
            return []
        return [str(s.getPath().getName()) for s in fs.listStatus(p)]


# -- owners -----------------------------------------------------------------------------


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


@dataclass(frozen=True)
class Owner:
    """Who made a staging or aside directory: ``<host>-<pid>-<random>``."""

    host: str
    pid: int
    nonce: str

    def __str__(self) -> str:
        return f"{self.host}-{self.pid}-{self.nonce}"

    @classmethod
    def new(cls) -> "Owner":
        """An owner token for this process."""
        return cls(_host(), os.getpid(), uuid.uuid4().hex[:12])

    @classmethod
    def parse(cls, text: str) -> "Owner | None":
        """The owner encoded in ``text`` (a token), or ``None``."""
        m = re.fullmatch(r"(?P<host>.+)-(?P<pid>\d+)-(?P<nonce>[0-9a-f]{12})", text)
        return cls(m["host"], int(m["pid"]), m["nonce"]) if m else None

    def is_dead(self) -> bool:
        """True only when certainly dead: same host and no such (non-zombie) process."""
        if self.host != _host():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            return False


def _split(output: str) -> tuple[str, str]:
    output = output.rstrip("/")
    return posixpath.dirname(output) or ".", posixpath.basename(output)


def sibling(output: str, kind: str, owner: Owner) -> str:
    """The hidden ``kind`` (``"staging"`` or ``"aside"``) sibling of ``output``."""
    head, tail = _split(output)
    return posixpath.join(head, f".{tail}.{kind}-{owner}")


def _join(directory: str, name: str) -> str:
    return posixpath.join(directory.rstrip("/"), name)


# -- commit -----------------------------------------------------------------------------


def commit(store: Store, staging: str, output: str, overwrite: bool, owner: Owner,
           on_commit: Callable[[], None] | None = None) -> None:
    """Replace ``output`` by the fully written ``staging`` (see the module docstring).

    ``on_commit`` is called right after the commit point (``_SUCCESS`` written).
    """
    output = output.rstrip("/")
    fault_point("commit.begin")
    store.delete(_join(staging, SUCCESS))  # Spark's own marker: only the commit marks
    replaces = store.exists(output)
    if replaces and not overwrite:
        raise OutputExistsError(f"output {redact(output)!r} appeared while the job ran")
    replaces_complete = replaces and store.exists(_join(output, SUCCESS))
    journal = {"owner": str(owner), "replaces": replaces, "replaces_complete": replaces_complete}
    store.write_text(_join(staging, OWNER), json.dumps(journal))
    aside = sibling(output, "aside", owner)
    fault_point("commit.unmark")
    if replaces_complete:
        store.delete(_join(output, SUCCESS))
    fault_point("commit.aside")
    if replaces:
        store.rename(output, aside)
    fault_point("commit.move")
    store.rename(staging, output)
    fault_point("commit.mark")
    store.touch(_join(output, SUCCESS))
    if on_commit is not None:
        on_commit()
    fault_point("commit.cleanup")
    store.delete(_join(output, OWNER))
    if replaces:
        store.delete(aside)
    fault_point("commit.done")


def _journal(store: Store, directory: str) -> dict | None:
    text = store.read_text(_join(directory, OWNER))
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def recover(store: Store, output: str, protect: tuple[str, ...] = ()) -> None:
    """Undo or finish the commits of dead runs on ``output``; remove their debris.

    Safe to call at the start of every run: directories of live processes and of
    other hosts are left alone, and so is anything overlapping a ``protect`` path
    (the input).
    """
    from distsmote.paths import overlap

    output = output.rstrip("/")
    head, tail = _split(output)
    found: dict[str, set[str]] = {}
    pattern = re.compile(rf"\.{re.escape(tail)}\.(staging|aside)-(.+)")
    for name in store.names(head):
        m = pattern.fullmatch(name)
        if m and not any(overlap(p, posixpath.join(head, name)) for p in protect):
            found.setdefault(m[2], set()).add(m[1])
    out_journal = _journal(store, output) if store.exists(output) else None
    if out_journal and isinstance(out_journal.get("owner"), str):
        found.setdefault(out_journal["owner"], set()).add("output")
    for token, kinds in sorted(found.items()):
        owner = Owner.parse(token)
        if owner is None or not owner.is_dead():
            if owner is not None and owner.host != _host():
                log.info("left %s alone: it belongs to a run on host %s", redact(output), owner.host)
            continue
        _recover_one(store, output, owner, kinds, out_journal)


def _recover_one(store: Store, output: str, owner: Owner, kinds: set[str], out_journal: dict | None,
                 level: int = logging.INFO) -> None:
    staging, aside = sibling(output, "staging", owner), sibling(output, "aside", owner)
    warn = max(level, logging.WARNING) if level >= logging.INFO else level
    success = _join(output, SUCCESS)
    what = f"the stopped run {owner.pid} on {owner.host}"
    if "staging" in kinds:
        journal = _journal(store, staging)
        if journal is not None:  # killed during the commit, before the move
            mark = bool(journal.get("replaces_complete"))
            if "aside" in kinds:
                if store.exists(output):  # a copy-based rename was cut short
                    store.delete(output)
                    mark = False
                    log.log(warn, "old output %s may be incomplete (an interrupted object-store rename); "
                                "it is left without _SUCCESS", redact(output))
                store.rename(aside, output)
            elif not store.exists(output):
                mark = False
            if mark and not store.exists(success):
                store.touch(success)
            log.log(warn, "undid the interrupted commit of %s: %s is as before", what, redact(output))
        store.delete(staging)
        log.log(level, "removed staging directory %s of %s", redact(staging), what)
    elif "output" in kinds:  # moved into place
        if store.exists(success):  # past the commit point: finish the cleanup
            store.delete(_join(output, OWNER))
            store.delete(aside)
            log.log(level, "finished the commit of %s", what)
        else:
            store.delete(output)
            if "aside" in kinds:
                store.rename(aside, output)
                if out_journal and out_journal.get("replaces_complete"):
                    store.touch(success)
            log.log(warn, "undid the interrupted commit of %s: %s is as before", what, redact(output))
    elif "aside" in kinds:  # committed; only the aside copy was left
        if store.exists(output):
            store.delete(aside)
        else:
            store.rename(aside, output)
            log.log(warn, "restored %s from the aside copy of %s (not marked complete)",
                        redact(output), what)


def abort(store: Store, output: str, owner: Owner) -> None:
    """After a failure or signal in this process: undo (or finish) its own commit and
    remove its staging directory, as :func:`recover` would for a dead run.

    Best effort: errors are logged at debug level, never raised over the original one;
    whatever is left, the next run's :func:`recover` handles.
    """
    output = output.rstrip("/")
    try:
        kinds = {k for k in ("staging", "aside") if store.exists(sibling(output, k, owner))}
        journal = _journal(store, output) if store.exists(output) else None
        if journal and journal.get("owner") == str(owner):
            kinds.add("output")
        if kinds:
            _recover_one(store, output, owner, kinds, journal, level=logging.DEBUG)
    except Exception:  # noqa: BLE001 - never hide the original failure
        log.debug("could not clean up after %s", redact(output), exc_info=True)
