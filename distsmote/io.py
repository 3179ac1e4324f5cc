"""Parquet in, Parquet out, per engine.

Output is written into a hidden staging directory beside the destination and then
committed by :mod:`distsmote.commit`, so a failed or killed run never leaves anything at
the output path that looks complete.  Inputs are checked first by
:mod:`distsmote.reading`.  Paths may be local or any fsspec URL (Spark: any
Hadoop-supported URL).
"""

from __future__ import annotations

import posixpath
from typing import Any

import fsspec

from distsmote._faults import fault_point


def _fs(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(path)
    return fs, root


# -- per-engine readers and writers -------------------------------------------------------


def read_parquet(engine: str, path: str, session: Any = None, schema: Any = None) -> Any:
    """Open a Parquet file or dataset directory lazily (eagerly for ``local``).

    Parameters
    ----------
    schema : pyarrow.Schema, optional
        Read every file with these column types (the unified schema of files whose
        types were widened, see :mod:`distsmote.reading`).
    """
    if engine == "local":
        import pandas as pd

        return pd.read_parquet(path) if schema is None else pd.read_parquet(path, schema=schema)
    if engine == "dask":
        import dask.dataframe as dd

        frame = dd.read_parquet(path)
        if schema is None:
            return frame
        # dask reads each file with its own types (meta from the first): cast lazily
        return frame.astype(_numeric_dtypes(schema))
    reader = session.read
    if schema is not None:
        from pyspark.sql.pandas.types import from_arrow_schema

        reader = reader.schema(from_arrow_schema(schema))
    return reader.parquet(path)


def _numeric_dtypes(schema: Any) -> dict[str, Any]:
    """numpy dtypes of a schema's int and float columns (the only ones that widen)."""
    import pyarrow as pa

    return {
        f.name: f.type.to_pandas_dtype()
        for f in schema
        if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
    }


def write_part(pdf: Any, directory: str, index: int) -> int:
    """Write one partition as ``part-NNNNN.parquet``; return its row count.

    The file name depends only on the partition number, so a retried task overwrites
    its own file and never adds a second copy.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fault_point("write")
    fs, root = _fs(directory)
    table = pa.Table.from_pandas(pdf, preserve_index=False)
    with fs.open(posixpath.join(root, f"part-{index:05d}.parquet"), "wb") as fh:
        pq.write_table(table, fh, use_dictionary=dictionary_columns(table.schema))
    return table.num_rows


def dictionary_columns(schema: Any) -> list[str]:
    """Columns worth dictionary-encoding: all but floats.

    Interpolated float features are nearly all distinct, so trying a dictionary first
    (Parquet's default) only costs time: about 4x the write time of plain encoding.
    """
    import pyarrow as pa

    return [f.name for f in schema if not pa.types.is_floating(f.type)]


def write_parquet(engine: str, frame: Any, path: str) -> int:
    """Write ``frame`` as a Parquet dataset directory at ``path``; return rows written.

    On Dask, partitions are written as they are computed and progress is reported
    (:mod:`distsmote.progress`: a live bar on a terminal, a line every 10 % in logs).
    """
    fs, root = _fs(path)
    if engine == "local":
        fs.makedirs(root, exist_ok=True)
        return write_part(frame, path, 0)
    if engine == "dask":
        import dask
        from distributed import get_client

        from distsmote.progress import follow

        fs.makedirs(root, exist_ok=True)
        writer = dask.delayed(write_part, pure=True)
        jobs = [writer(part, path, i) for i, part in enumerate(frame.to_delayed())]
        try:
            client = get_client()
        except ValueError:  # no distributed client: the local scheduler
            return int(sum(dask.compute(*jobs)))
        return int(sum(follow(client.compute(jobs), "write", unit="partitions", count=int)))
    frame.write.mode("errorifexists").parquet(path)
    return -1
