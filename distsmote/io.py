"""Parquet in, Parquet out, with an all-or-nothing commit.

Output is written to a hidden staging directory beside the destination, marked with
``_SUCCESS`` and only then renamed into place, so a failed or killed run never leaves
anything at the output path that looks complete.  Paths may be local or any fsspec URL
(Spark: any Hadoop-supported URL).
"""

from __future__ import annotations

import posixpath
import uuid
from typing import Any

import fsspec


class OutputExistsError(FileExistsError):
    """The output path exists and ``overwrite`` was not requested."""


def _fs(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(path)
    return fs, root


def check_paths(input_path: str, output_path: str, overwrite: bool) -> None:
    """Fail before any work if the input is missing or the output would be clobbered."""
    fs_in, p_in = _fs(input_path)
    if not fs_in.exists(p_in):
        raise FileNotFoundError(f"input {input_path!r} does not exist")
    fs_out, p_out = _fs(output_path)
    if fs_out.exists(p_out) and not overwrite:
        raise OutputExistsError(
            f"output {output_path!r} already exists; pass --overwrite to replace it"
        )
    if posixpath.normpath(p_in) == posixpath.normpath(p_out) and fs_in.protocol == fs_out.protocol:
        raise ValueError("output must differ from input")


def staging_path(output_path: str) -> str:
    """A hidden sibling of ``output_path`` to write into before the commit."""
    head, tail = posixpath.split(output_path.rstrip("/"))
    return posixpath.join(head, f".{tail}.staging-{uuid.uuid4().hex[:12]}")


def commit(staging: str, output_path: str, overwrite: bool) -> None:
    """Mark ``staging`` complete and move it to ``output_path``."""
    fs, p_stage = _fs(staging)
    _, p_out = _fs(output_path)
    fs.touch(posixpath.join(p_stage, "_SUCCESS"))
    if fs.exists(p_out):
        if not overwrite:
            raise OutputExistsError(f"output {output_path!r} appeared while the job ran")
        fs.rm(p_out, recursive=True)
    fs.mv(p_stage, p_out, recursive=True)


def discard(staging: str) -> None:
    """Remove a staging directory after a failure (best effort)."""
    fs, p = _fs(staging)
    try:
        if fs.exists(p):
            fs.rm(p, recursive=True)
    except OSError:
        pass


# -- per-engine readers and writers -------------------------------------------------------


def read_parquet(engine: str, path: str, session: Any = None) -> Any:
    """Open a Parquet file or dataset directory lazily (eagerly for ``local``)."""
    if engine == "local":
        import pandas as pd

        return pd.read_parquet(path)
    if engine == "dask":
        import dask.dataframe as dd

        return dd.read_parquet(path)
    return session.read.parquet(path)


def write_parquet(engine: str, frame: Any, path: str, progress: bool = False) -> None:
    """Write ``frame`` as a Parquet dataset directory at ``path`` (which must not exist)."""
    if engine == "local":
        fs, p = _fs(path)
        fs.makedirs(p, exist_ok=True)
        with fs.open(posixpath.join(p, "part-00000.parquet"), "wb") as fh:
            frame.to_parquet(fh, index=False)
        return
    if engine == "dask":
        from distributed import get_client, progress as show_progress

        job = frame.to_parquet(path, write_index=False, compute=False, write_metadata_file=False)
        try:
            client = get_client()
        except ValueError:
            job.compute()
            return
        future = client.compute(job)
        if progress:
            show_progress(future)
            print()
        future.result()
        return
    frame.write.mode("errorifexists").parquet(path)


def spark_commit(session: Any, staging: str, output_path: str, overwrite: bool) -> None:
    """Commit with the Hadoop FileSystem API, so any Spark-readable URL works."""
    jvm = session._jvm
    conf = session._jsc.hadoopConfiguration()
    src = jvm.org.apache.hadoop.fs.Path(staging)
    dst = jvm.org.apache.hadoop.fs.Path(output_path)
    fs = src.getFileSystem(conf)
    if not fs.exists(jvm.org.apache.hadoop.fs.Path(src, "_SUCCESS")):
        fs.create(jvm.org.apache.hadoop.fs.Path(src, "_SUCCESS")).close()
    if fs.exists(dst):
        if not overwrite:
            raise OutputExistsError(f"output {output_path!r} appeared while the job ran")
        fs.delete(dst, True)
    if not fs.rename(src, dst):
        raise OSError(f"could not move {staging!r} to {output_path!r}")


def spark_discard(session: Any, staging: str) -> None:
    """Remove a Spark staging directory after a failure (best effort)."""
    try:
        jvm = session._jvm
        path = jvm.org.apache.hadoop.fs.Path(staging)
        path.getFileSystem(session._jsc.hadoopConfiguration()).delete(path, True)
    except Exception:
        pass
