"""Plain Parquet inputs read by Spark's Python tasks (``engines/spark_files.py``).

A frame ``SparkEngine.read`` made from listed Parquet files with plain columns is a
file scan: its class statistics, collected rows and copy in a write run in Python tasks
that read the files, and must give exactly what the JVM path gives for the same frame
(``frame.select("*")`` is not a file scan, so it takes the JVM path).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distsmote import SMOTE
from distsmote.engines.files import merge_counts
from distsmote.engines.spark import SparkEngine
from distsmote.engines.spark_files import MIN_UNIT_BYTES, FileScan, scan_of
from distsmote.engines.spark_parts import part_rows
from distsmote.inputs import resolve_input

from _data import assert_same_rows, make_frame


def _write(frame: pd.DataFrame, root, files: int, row_group_size: int = 1_000) -> str:
    os.makedirs(root, exist_ok=True)
    bounds = np.linspace(0, len(frame), files + 1).astype(int)
    for i in range(files):
        part = frame.iloc[bounds[i]:bounds[i + 1]]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), os.path.join(root, f"p{i}.parquet"),
                       row_group_size=row_group_size)
    return str(root)


@pytest.fixture
def dirty(tmp_path) -> tuple[str, pd.DataFrame]:
    """Three files, several row groups each; NaN, ±inf and null features; a null label."""
    frame = make_frame({0: 900, 1: 120, 2: 60}, seed=5, dtype=np.float32)
    frame["y"] = frame["y"].astype("Int64")
    frame.loc[3, "f0"] = np.nan
    frame.loc[7, "f1"] = np.inf
    frame.loc[8, "f1"] = -np.inf
    frame["n"] = pd.array(range(len(frame)), dtype="Int32")
    frame.loc[11, "n"] = None
    frame.loc[13, "y"] = None
    frame["s"] = [f"v{i % 3}" for i in range(len(frame))]
    return _write(frame, tmp_path / "dirty", files=3, row_group_size=100), frame


def test_units_split_large_files_by_row_groups_and_pack_small_ones(tmp_path):
    scan = FileScan(("a", "b", "c", "d"), (MIN_UNIT_BYTES // 2, MIN_UNIT_BYTES // 2, 3 * MIN_UNIT_BYTES,
                                           MIN_UNIT_BYTES // 4), pa.schema([("x", pa.float32())]), 8)
    assert scan.units() == [
        (("a", 0, 1), ("b", 0, 1)),
        (("c", 0, 3),), (("c", 1, 3),), (("c", 2, 3),),
        (("d", 0, 1),),
    ]
    # A file's shares read every row group once, in order, whatever the number of shares.
    table = pa.table({"x": np.arange(1_000, dtype=np.float32)})
    path = str(tmp_path / "one.parquet")
    pq.write_table(table, path, row_group_size=70)  # 15 row groups
    whole = FileScan((path,), (1,), table.schema)
    for shares in (1, 2, 4, 15, 20):
        got = [b for i in range(shares) for b in whole.batches(((path, i, shares),), ["x"])]
        assert pa.Table.from_batches(got, table.schema).equals(table)


def test_only_plain_unfiltered_inputs_are_file_scans(spark, dirty, tmp_path):
    engine = SparkEngine(spark)
    frame = engine.read(resolve_input(dirty[0]))
    assert scan_of(frame) is not None
    assert scan_of(frame.select("*")) is None
    assert scan_of(engine.read(resolve_input(dirty[0], where="f0 > 0"))) is None
    dated = pd.DataFrame({"x": [1.0, 2.0], "day": pd.to_datetime(["2024-01-01", "2024-01-02"]).date, "y": [0, 1]})
    assert scan_of(engine.read(resolve_input(_write(dated, tmp_path / "dated", files=1)))) is None
    # Columns that are not the files' own (partition columns found in the paths).
    source = resolve_input(dirty[0])
    extra = pa.schema([*source.schema, pa.field("day", pa.int32())])
    assert FileScan.of(source, engine.arrow_schema(frame), 2) is not None
    assert FileScan.of(source, extra, 2) is None


def test_statistics_and_collected_rows_equal_the_jvm_paths(spark, dirty):
    path, data = dirty
    engine = SparkEngine(spark)
    frame = engine.read(resolve_input(path))
    features = ["f0", "f1", "f2", "f3", "n", "s"]
    fast, jvm = engine.label_stats(frame, "y", features), engine.label_stats(frame.select("*"), "y", features)
    assert fast == jvm
    assert fast.counts == {int(k): int(v) for k, v in data["y"].value_counts().items()}
    assert fast.null_labels == 1 and fast.nonfinite == {"f0": 1, "f1": 2, "n": 1}

    columns = ["f0", "f1", "n", "s", "y"]
    got = engine.collect_rows(frame, "y", [1, 2], columns)
    want = engine.collect_rows(frame.select("*"), "y", [1, 2], columns)
    assert len(got) == int(data["y"].isin([1, 2]).sum())
    assert got.dtypes.to_dict() == want.dtypes.to_dict()
    assert_same_rows(got, want)


def test_smote_output_written_from_the_files_equals_the_jvm_write(spark, tmp_path):
    """SMOTE over a file scan (with an indicator column): the write reads the input files
    and runs the generation in its own tasks, so no Python task hands rows to the JVM; the
    files hold the same rows and counts as a write of the same frame through the JVM."""
    src = _write(make_frame({0: 2_000, 1: 150}, seed=9, dtype=np.float32), tmp_path / "in", files=4,
                 row_group_size=250)
    engine = SparkEngine(spark)
    frame = engine.read(resolve_input(src))
    out = SMOTE(random_state=2).resample(frame, label="y", indicator="synthetic")
    schema = engine.arrow_schema(out)
    plan = str(part_rows(spark, out, schema, str(tmp_path / "x"), "y", "t")._jdf.queryExecution().optimizedPlan())
    assert not [line for line in plan.splitlines() if "MapInArrow" in line and "[path#" not in line]
    assert "Relation" not in plan  # no JVM scan of the input

    a = engine.write_parts(out, str(tmp_path / "a"), label="y", token="a")
    b = engine.write_parts(out.select("*"), str(tmp_path / "b"), label="y", token="b")
    assert merge_counts(a) == merge_counts(b) == {0: 2_000, 1: 2_000}
    got, want = pd.read_parquet(tmp_path / "a"), pd.read_parquet(tmp_path / "b")
    assert_same_rows(got, want)
    assert int(got["synthetic"].sum()) == 1_850 and got["synthetic"].dtype == bool
    assert all(pq.read_schema(p.path).equals(schema, check_metadata=False) for p in a)


def test_listed_plain_files_are_read_with_their_schema_as_spark_infers_it(spark, dirty, tmp_path):
    """The reader gets the footers' schema (no inference job), and the frame's schema is
    the one Spark infers: the same types, every column nullable, even a required one."""
    required = pa.schema([pa.field("x", pa.float64(), nullable=False), pa.field("k", pa.int8()),
                          pa.field("y", pa.int64(), nullable=False)])
    path = tmp_path / "required"
    path.mkdir()
    pq.write_table(pa.table({"x": [1.0, 2.0], "k": [1, 2], "y": [0, 1]}, schema=required), path / "a.parquet")
    engine = SparkEngine(spark)
    for root in (dirty[0], str(path)):
        source = resolve_input(root)
        assert engine.read(source).schema == spark.read.parquet(*source.files).schema
