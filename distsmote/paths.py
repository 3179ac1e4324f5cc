"""Where data lives: comparing input and output locations, and hiding credentials.

Everything here is pure string work (plus symlink resolution for local paths), so it
runs before any engine starts and is the same for the local, Dask and Spark engines.

A location is reduced to a *store* (which filesystem or bucket) and a *key* (the path
inside it).  Local paths, ``file://`` URLs and relative paths are made absolute and
their symlinks resolved; URL schemes that name the same service (``s3``, ``s3a``,
``s3n``; ``gs``, ``gcs``; ``abfs``, ``abfss``, ``az``) are the same store.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

#: URL schemes that address one service under several names.
_SCHEME_FAMILY = {
    "s3a": "s3",
    "s3n": "s3",
    "gcs": "gs",
    "abfss": "abfs",
    "az": "abfs",
    "adl": "abfs",
    "wasbs": "wasb",
    "local": "file",
}

#: Schemes whose URL authority is part of the path (no bucket or host).
_PATH_LIKE = {"file", "memory"}


class UnsafePathsError(ValueError):
    """The output would overwrite, sit inside or contain the input."""


@dataclass(frozen=True)
class Location:
    """A path reduced to the store it lives in and its key there.

    Attributes
    ----------
    store : str
        ``"file"`` for local paths, else ``"<scheme family>://<bucket or host>"``.
    keys : tuple of str
        The key without trailing or doubled slashes, then its ``..``-normalised form
        (object stores take ``a/../b`` literally; comparing both forms is safe either way).
    """

    store: str
    keys: tuple[str, ...]


def split_scheme(path: str) -> tuple[str, str]:
    """``("s3", "bucket/key")`` for a URL, ``("", path)`` for a plain path.

    A single letter before ``:`` is a Windows drive, not a scheme.
    """
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]+)://", path)
    if not match:
        return "", path
    return match.group(1).lower(), path[match.end():]


def locate(path: str, cwd: str | None = None) -> Location:
    """Reduce ``path`` (a local path or URL) to a :class:`Location`."""
    scheme, rest = split_scheme(path.strip())
    family = _SCHEME_FAMILY.get(scheme, scheme) or "file"
    if family == "file":
        local = rest if scheme else path.strip()
        if not posixpath.isabs(local):
            local = os.path.join(cwd or os.getcwd(), local)
        return Location("file", _key_forms(os.path.realpath(local)))
    if family in _PATH_LIKE:  # credentials, if any, are not part of the path
        return Location(family, _key_forms("/" + re.sub(r"^[^/@]*:[^/@]*@", "", rest)))
    parts = urlsplit(f"{family}://{rest}")
    authority = (parts.hostname or "").lower()
    if parts.port:
        authority = f"{authority}:{parts.port}"
    if family in ("hdfs", "viewfs") and not authority:
        authority = "*"  # the default namenode: could be any of them
    return Location(f"{family}://{authority}", _key_forms("/" + parts.path))


def _key_forms(key: str) -> tuple[str, ...]:
    cleaned = re.sub(r"/+", "/", key).rstrip("/") or "/"
    normal = posixpath.normpath(cleaned)
    return (cleaned,) if normal == cleaned else (cleaned, normal)


def _same_store(a: Location, b: Location) -> bool:
    if a.store == b.store:
        return True
    hdfs = ("hdfs://", "viewfs://")
    return a.store.endswith("://*") and b.store.startswith(hdfs) or (
        b.store.endswith("://*") and a.store.startswith(hdfs)
    )


def _within(inner: str, outer: str) -> bool:
    return inner == outer or outer == "/" or inner.startswith(outer + "/")


def overlap(input_path: str, output_path: str, cwd: str | None = None) -> str | None:
    """How the output overlaps the input: ``"equals"``, ``"inside"``, ``"contains"`` or ``None``."""
    a, b = locate(input_path, cwd), locate(output_path, cwd)
    if not _same_store(a, b):
        return None
    for ka in a.keys:
        for kb in b.keys:
            if ka == kb:
                return "equals"
    for ka in a.keys:
        for kb in b.keys:
            if _within(kb, ka):
                return "inside"
            if _within(ka, kb):
                return "contains"
    return None


def check_distinct(input_path: str, output_path: str, cwd: str | None = None) -> None:
    """Refuse an output that equals, sits inside or contains the input.

    Raises
    ------
    UnsafePathsError
        Naming both paths (credentials hidden) and the relation.
    """
    location = locate(output_path, cwd)
    if all(k == "/" for k in location.keys):
        raise UnsafePathsError(
            f"output {redact(output_path)!r} is the root of a filesystem or bucket; "
            "choose a directory inside it"
        )
    relation = overlap(input_path, output_path, cwd)
    if relation is None:
        return
    what = {
        "equals": "is the input",
        "inside": "is inside the input",
        "contains": "contains the input",
    }[relation]
    raise UnsafePathsError(
        f"output {redact(output_path)!r} {what} {redact(input_path)!r}; writing it would "
        "destroy or change the input. Choose an output outside the input"
    )


# -- credentials ------------------------------------------------------------------------

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>[^/@\s'\":]*:[^/@\s'\"]*)@")
_QUERY = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"?]*)\?(?P<query>[^\s'\"#]*)")


def redact(text: str) -> str:
    """Hide URL credentials in ``text``: ``user:secret@`` and query-string values.

    ``s3://KEY:SECRET@bucket/x?token=abc`` becomes ``s3://***@bucket/x?token=***``;
    a ``container@account`` authority without a colon (Azure) is kept.
    """
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", str(text))

    def _query(m: re.Match) -> str:
        pairs = [p.split("=", 1)[0] + "=***" if "=" in p else p for p in m.group("query").split("&")]
        return f"{m.group('scheme')}?{'&'.join(pairs)}"

    return _QUERY.sub(_query, text)
