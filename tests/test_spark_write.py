"""Spark's part files: generated rows written where they are made (``engines/spark_parts.py``),
and, with ``spark.distsmote.nativeWrite``, Spark's own Parquet writer (``engines/spark_write.py``).

What the native ``SparkEngine.write_parts`` promises, on the test cluster: only the run's
``part-<token>-<task>.parquet`` files land in the directory (no ``_SUCCESS``, checksum
or working files, nothing after a failed job), with the frame's Arrow schema (types and
nullability), Snappy, capped row groups, no dictionary for floats; the rows and bytes
it reports are the files', and its class counts are exact whether they come from the
write's observation or, for classes the engine never saw, from counting the files.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distsmote import SMOTE
from distsmote.engines import spark_write
from distsmote.engines.files import merge_counts
from distsmote.engines.spark import NATIVE_WRITE, SparkEngine
from distsmote.engines.spark_parts import part_rows

from _data import assert_same_rows, make_frame


@pytest.fixture
def native(spark):
    """Spark's own Parquet writer for this test."""
    spark.conf.set(NATIVE_WRITE, "true")
    yield
    spark.conf.unset(NATIVE_WRITE)


def _python_to_jvm(frame) -> int:
    """Python (``mapInArrow``) nodes of the plan that output data rows, not file reports."""
    plan = str(frame._jdf.queryExecution().optimizedPlan())
    return sum(1 for line in plan.splitlines() if "MapInArrow" in line and "[path#" not in line)


def test_generated_rows_are_written_by_the_tasks_that_make_them(spark, tmp_path):
    """SMOTE's output (input rows + generated rows): the write stage runs the generation
    itself, so the synthetic rows never go to the JVM and back; the files hold the same
    rows, in the same number of files, as a write of the frame's rows as Spark has them."""
    frame = spark.createDataFrame(make_frame({0: 400, 1: 50, 2: 30}, seed=4)).repartition(3)
    out = SMOTE(random_state=3).resample(frame, label="y")
    engine = SparkEngine(spark)
    schema = engine.arrow_schema(out)
    fused = part_rows(spark, out, schema, str(tmp_path / "x"), "y", "t")
    plain = part_rows(spark, out.select("*"), schema, str(tmp_path / "x"), "y", "t")
    assert _python_to_jvm(fused) == 0  # every Python task returns one row per file
    assert _python_to_jvm(plain) == 1  # the generation hands its rows to the JVM

    a = engine.write_parts(out, str(tmp_path / "a"), label="y", token="a")
    b = engine.write_parts(out.select("*"), str(tmp_path / "b"), label="y", token="b")
    assert [p.name.replace("-a-", "-") for p in sorted(a, key=lambda p: p.name)] == \
        [p.name.replace("-b-", "-") for p in sorted(b, key=lambda p: p.name)]
    assert merge_counts(a) == merge_counts(b) == {0: 400, 1: 400, 2: 400}
    assert [p.rows for p in a] == [p.rows for p in b]
    assert_same_rows(pd.read_parquet(tmp_path / "a"), pd.read_parquet(tmp_path / "b"))
    assert pq.read_schema(a[-1].path).equals(schema, check_metadata=False)


def _listing(path) -> list[str]:
    return sorted(os.listdir(path))


@pytest.fixture
def typed(spark):
    """A frame of every column type a job writes, some columns not nullable."""
    from pyspark.sql import types as T

    schema = T.StructType([
        T.StructField("i8", T.ByteType(), False),
        T.StructField("i16", T.ShortType(), True),
        T.StructField("i32", T.IntegerType(), True),
        T.StructField("i64", T.LongType(), False),
        T.StructField("f32", T.FloatType(), False),
        T.StructField("f64", T.DoubleType(), True),
        T.StructField("flag", T.BooleanType(), True),
        T.StructField("city", T.StringType(), True),
        T.StructField("day", T.DateType(), True),
        T.StructField("at", T.TimestampType(), True),
        T.StructField("y", T.LongType(), True),
    ])
    at = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    rows = [(i % 100, i, i * 3, i, i / 7, i / 3, i % 2 == 0, f"c{i % 5}", dt.date(2024, 1, 1 + i % 28),
             at + dt.timedelta(seconds=i), [0, 1, 2, None][i % 4]) for i in range(400)]
    return spark.createDataFrame(rows, schema).repartition(3)


@pytest.mark.parametrize("writer", ["python", "native"])
def test_files_have_the_frames_schema_and_pyarrow_like_layout(spark, typed, tmp_path, writer, request):
    if writer == "native":
        request.getfixturevalue("native")
    engine = SparkEngine(spark)
    engine.label_stats(typed, "y", [])  # the classes, as a sampler's statistics find them
    parts = engine.write_parts(typed, str(tmp_path), label="y", token="tok")

    names = [p.name for p in parts]
    assert _listing(tmp_path) == sorted(names) and len(names) == 3
    assert all(n.startswith("part-tok-") and n.endswith(".parquet") for n in names)
    want = engine.arrow_schema(typed)
    for p in parts:
        meta = pq.read_metadata(p.path)
        # Spark's writer (no row went to Python) or pyarrow's
        assert meta.created_by.startswith("parquet-mr" if writer == "native" else "parquet-cpp-arrow")
        assert pq.read_schema(p.path).equals(want, check_metadata=False), pq.read_schema(p.path)
        assert (p.rows, p.size) == (meta.num_rows, os.path.getsize(p.path))
        columns = {meta.schema.column(i).name: meta.row_group(0).column(i) for i in range(meta.num_columns)}
        assert {c.compression for c in columns.values()} == {"SNAPPY"}
        assert not columns["f32"].has_dictionary_page and not columns["f64"].has_dictionary_page
        assert columns["city"].has_dictionary_page
    assert sum(p.rows for p in parts) == 400
    assert merge_counts(parts) == {0: 100, 1: 100, 2: 100, None: 100}
    got = pq.read_table(str(tmp_path)).to_pandas()
    assert got["at"].min() == pd.Timestamp("2024-05-01 12:30:00+00:00")  # INT64 micros, not INT96


def test_row_groups_are_capped(spark, native, tmp_path, monkeypatch):
    from pyspark.sql import functions as F

    monkeypatch.setattr(spark_write, "ROW_GROUP_ROWS", 1000)
    frame = spark.range(0, 5000, 1, numPartitions=1).select(F.col("id"), F.rand(3).cast("float").alias("x"))
    (part,) = SparkEngine(spark).write_parts(frame, str(tmp_path), token="rg")
    meta = pq.read_metadata(part.path)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000] * 5


def test_unseen_classes_are_counted_from_the_files(spark, native, tmp_path, caplog):
    from pyspark.sql import functions as F

    frame = spark.range(0, 1000, 1, numPartitions=4).select(F.col("id"), (F.col("id") % 3).alias("fresh"))
    engine = SparkEngine(spark)
    caplog.set_level(logging.INFO, logger="distsmote")
    parts = engine.write_parts(frame, str(tmp_path / "a"), label="fresh", token="a")
    assert merge_counts(parts) == {0: 334, 1: 333, 2: 333}
    assert "counting the classes of 'fresh'" in caplog.text  # never seen: no observation to trust

    caplog.clear()
    engine.label_stats(frame.where("fresh < 2"), "fresh", [])  # two of the three classes
    parts = engine.write_parts(frame, str(tmp_path / "b"), label="fresh", token="b")
    assert merge_counts(parts) == {0: 334, 1: 333, 2: 333}
    assert "counting the classes" in caplog.text  # class 2 was not observed: counted

    caplog.clear()
    engine.label_stats(frame, "fresh", [])
    parts = engine.write_parts(frame, str(tmp_path / "c"), label="fresh", token="c")
    assert merge_counts(parts) == {0: 334, 1: 333, 2: 333}
    assert "counting the classes" not in caplog.text  # observed during the write


def test_empty_frame(spark, native, tmp_path):
    frame = spark.range(0, 0).selectExpr("id", "cast(id as float) as x", "id % 2 as y")
    parts = SparkEngine(spark).write_parts(frame, str(tmp_path), label="y", token="e")
    assert sum(p.rows for p in parts) == 0 and merge_counts(parts) == {}
    assert _listing(tmp_path) == sorted(p.name for p in parts)


def test_failed_job_leaves_nothing(spark, native, tmp_path):
    def fail(batches):
        for _ in batches:
            raise RuntimeError("boom")
        yield pa.RecordBatch.from_pylist([], schema=pa.schema([("id", pa.int64())]))

    frame = spark.range(0, 100, 1, numPartitions=2).mapInArrow(fail, "id long")
    with pytest.raises(Exception, match="boom"):
        SparkEngine(spark).write_parts(frame, str(tmp_path), token="f")
    assert _listing(tmp_path) == []
