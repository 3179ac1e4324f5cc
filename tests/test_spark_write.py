"""Spark's part files: generated rows written where they are made (``engines/spark_parts.py``).

What ``SparkEngine.write_parts`` promises, on the test cluster: only the run's
``part-<token>-<task>.parquet`` files land in the directory, with the frame's Arrow
schema (types and nullability, timestamps included), Snappy and no dictionary for
floats; the rows and bytes it reports are the files'.
"""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from distsmote import SMOTE
from distsmote.engines.files import merge_counts
from distsmote.engines.spark import SparkEngine
from distsmote.engines.spark_parts import part_rows

from _data import assert_same_rows, make_frame


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


def test_files_have_the_frames_schema_and_pyarrow_like_layout(spark, typed, tmp_path):
    engine = SparkEngine(spark)
    engine.label_stats(typed, "y", [])  # the classes, as a sampler's statistics find them
    parts = engine.write_parts(typed, str(tmp_path), label="y", token="tok")

    names = [p.name for p in parts]
    assert _listing(tmp_path) == sorted(names) and len(names) == 3
    assert all(n.startswith("part-tok-") and n.endswith(".parquet") for n in names)
    want = engine.arrow_schema(typed)
    for p in parts:
        meta = pq.read_metadata(p.path)
        assert meta.created_by.startswith("parquet-cpp-arrow")
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
