"""Part files: a failed attempt never leaves a file that a commit or a reader takes."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from distsmote.engines.files import PartFile, keep_only, part_name, published, write_table


def test_retries_get_their_own_names():
    assert part_name("tok", 3) == "part-tok-00003.parquet"
    assert part_name("tok", 3, 1) == "part-tok-00003-a1.parquet"
    assert len({part_name("tok", 3, a) for a in range(4)}) == 4


def test_a_failed_write_leaves_no_file(tmp_path):
    import fsspec

    fs = fsspec.filesystem("file")
    with pytest.raises(RuntimeError):
        with published(fs, str(tmp_path), "part-x-00000.parquet") as fh:
            fh.write(b"half a file")
            raise RuntimeError("task failed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_a_complete_write_appears_only_at_its_end(tmp_path):
    import fsspec

    fs = fsspec.filesystem("file")
    with published(fs, str(tmp_path), "part-x-00000.parquet") as fh:
        fh.write(b"data")
        assert [p.name for p in tmp_path.iterdir()] == [".part-x-00000.parquet.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["part-x-00000.parquet"]


def test_keep_only_removes_what_no_successful_attempt_reported(tmp_path):
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": [0, 1, 1]})
    good = write_table(table, str(tmp_path), "tok", 0, "y")
    assert good == PartFile(str(tmp_path / good.name), good.name, good.size, 3, {0: 1, 1: 2})
    # a failed attempt's leftovers: a finished file with part of the rows, a temporary file
    (tmp_path / part_name("tok", 1)).write_bytes(b"partial rows of attempt 0")
    (tmp_path / ".part-tok-00001-a1.parquet.tmp").write_bytes(b"")
    (tmp_path / "_OWNER").write_text("journal")  # not a part file: kept
    assert sorted(keep_only(str(tmp_path), [good])) == [".part-tok-00001-a1.parquet.tmp", "part-tok-00001.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_OWNER", good.name]
    assert len(pd.read_parquet(tmp_path / good.name)) == 3


def test_streamed_batches_make_large_row_groups(tmp_path, monkeypatch):
    """Small batches (Spark streams 10 000-row Arrow batches) are gathered into row
    groups; every row, its types and the class counts are kept."""
    import pyarrow.parquet as pq

    import distsmote.engines.files as files

    schema = pa.schema([("x", pa.float32()), ("y", pa.int64())])
    batches = [pa.record_batch([pa.array([float(i)] * 1000, pa.float32()), pa.array([i % 3] * 1000)], schema=schema)
               for i in range(25)]
    part = files.write_batches(iter(batches), schema, str(tmp_path), "tok", 0, "y")
    meta = pq.ParquetFile(part.path).metadata
    assert (meta.num_row_groups, part.rows, part.counts) == (1, 25_000, {0: 9000, 1: 8000, 2: 8000})
    monkeypatch.setattr(files, "ROW_GROUP_ROWS", 10_000)
    part = files.write_batches(iter(batches), schema, str(tmp_path), "tok", 1, "y")
    groups = pq.ParquetFile(part.path).metadata
    assert [groups.row_group(i).num_rows for i in range(groups.num_row_groups)] == [10_000, 10_000, 5_000]
    assert pq.read_table(part.path).schema == schema
