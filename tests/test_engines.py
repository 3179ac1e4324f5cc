"""Engine edge cases on the real clusters: empty partitions, label types, input errors.

The sampler × engine equality checks live in tests/test_common.py."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from distsmote import SMOTE

from _data import assert_same_rows, make_frame


def test_dask_empty_partitions_and_string_labels(dask_client):
    import dask.dataframe as dd

    frame = make_frame({"legit": 300, "fraud": 30}, seed=8)
    ref = SMOTE(random_state=2).resample(frame, label="y")
    parts = [frame.iloc[:0], frame.iloc[:100], frame.iloc[:0], frame.iloc[100:], frame.iloc[:0]]
    ddf = dd.from_delayed([__import__("dask").delayed(p) for p in parts], meta=frame.iloc[:0])
    out = SMOTE(random_state=2).resample(ddf, label="y").compute()
    assert_same_rows(out, ref)


def test_spark_bool_labels_and_empty_partitions(spark):
    frame = make_frame({False: 200, True: 25}, seed=9)
    ref = SMOTE(random_state=5).resample(frame, label="y")
    sdf = spark.createDataFrame(frame).repartition(12)  # some partitions are empty
    out = SMOTE(random_state=5).resample(sdf, label="y").toPandas()
    assert out["y"].value_counts().to_dict() == {False: 200, True: 200}
    out["y"] = out["y"].astype(bool)
    assert_same_rows(out, ref)


def test_dask_errors_before_any_output(dask_client, tmp_path):
    import dask.dataframe as dd

    frame = make_frame({0: 60, 1: 12})
    frame.loc[7, "f3"] = np.inf
    ddf = dd.from_pandas(frame, npartitions=3)
    with pytest.raises(ValueError, match=r"'f3' \(1 rows\)"):
        SMOTE(random_state=0).resample(ddf, label="y")
    with pytest.raises(ValueError, match="Label column 'label' not found"):
        SMOTE(random_state=0).resample(ddf, label="label")


def test_spark_errors_name_the_culprit(spark):
    frame = make_frame({0: 60, 1: 12})
    frame.loc[3, "f0"] = np.nan
    sdf = spark.createDataFrame(frame)
    with pytest.raises(ValueError, match=r"'f0' \(1 rows\)"):
        SMOTE(random_state=0).resample(sdf, label="y")
    with pytest.raises(ValueError, match=r"\['city'\] are not numeric"):
        SMOTE(random_state=0).resample(sdf.selectExpr("*", "'x' as city"), label="y")
    small = spark.createDataFrame(make_frame({0: 60, 1: 3}))
    with pytest.raises(ValueError, match="Class 1 has 3 row"):
        SMOTE(random_state=0).resample(small, label="y")


@pytest.mark.parametrize("engine_name", ["dask", "spark"])
def test_combined_samplers_compute_the_smote_output_once(engine_name, request):
    """SMOTEENN persists its SMOTE output (Dask futures on the workers, a Spark
    MEMORY_AND_DISK cache) before the cleaning join's passes read it."""
    from unittest import mock

    from distsmote import SMOTEENN

    frame = make_frame({0: 300, 1: 40}, seed=11)
    if engine_name == "dask":
        import dask.dataframe as dd
        from distributed import futures_of

        from distsmote.engines.dask import DaskEngine as engine_cls

        request.getfixturevalue("dask_client")
        data = dd.from_pandas(frame, npartitions=3)
    else:
        from distsmote.engines.spark import SparkEngine as engine_cls

        data = request.getfixturevalue("spark").createDataFrame(frame)
    kept = []
    original = engine_cls.persist

    def persist(self, f):
        kept.append(original(self, f))
        return kept[-1]

    with mock.patch.object(engine_cls, "persist", persist):
        out = SMOTEENN(random_state=0).resample(data, label="y")
        n = len(out) if engine_name == "dask" else out.count()
    assert len(kept) == 1 and n > 0
    if engine_name == "dask":
        assert len(futures_of(kept[0])) == kept[0].npartitions
    else:
        assert kept[0].is_cached and kept[0].storageLevel.useDisk and kept[0].storageLevel.useMemory
        kept[0].unpersist()


@pytest.mark.parametrize("engine_name", ["local", "dask", "spark"])
def test_anti_join_computes_the_keys_in_the_filtering_task(engine_name, request):
    """``anti_join(..., by=(fn, handle))`` keeps the rows whose computed key is absent
    from the key set, without the key column; on Dask no task of its graph holds a keyed
    copy of the frame (one would run as soon as the frame exists and wait for the keys)."""
    from distsmote.engines.local import LocalEngine
    from distsmote.neighbors.join import row_keys

    frame = make_frame({0: 200, 1: 30}, seed=5)
    features = [c for c in frame.columns if c != "y"]
    key_fn, spec = row_keys(LocalEngine(), "y", features, (0, 1))
    keys = key_fn(frame, spec)
    removed = pd.DataFrame({"k": keys[::3]})
    expected = frame.loc[~np.isin(keys, removed["k"].to_numpy())]
    if engine_name == "local":
        engine, data, rm = LocalEngine(), frame, removed
    elif engine_name == "dask":
        import dask.dataframe as dd

        from distsmote.engines.dask import DaskEngine

        engine = DaskEngine(request.getfixturevalue("dask_client"))
        data, rm = dd.from_pandas(frame, npartitions=3), dd.from_pandas(removed, npartitions=2)
    else:
        from distsmote.engines.spark import SparkEngine

        spark = request.getfixturevalue("spark")
        engine = SparkEngine(spark)
        data, rm = spark.createDataFrame(frame), spark.createDataFrame(removed)
    out = engine.anti_join(data, rm, "k", by=row_keys(engine, "y", features, (0, 1)))
    if engine_name == "dask":
        from dask.utils import key_split

        tasks = {key_split(k) for k in out.__dask_graph__()}
        assert "drop_keys" in tasks and "add_column" not in tasks, tasks
        out = out.compute()
    elif engine_name == "spark":
        out = out.toPandas()
    assert list(out.columns) == list(frame.columns)
    assert len(out) == len(expected) < len(frame)
    assert_same_rows(out, expected)


@pytest.mark.parametrize("engine_name", ["local", "dask", "spark"])
def test_direct_shuffle_gives_each_value_a_partition_of_its_own(engine_name, request):
    """``shuffle_map(direct=True)``: values 0 … n − 1 of ``by`` land in n different
    ``fn`` calls, whole, and the values' payload columns arrive intact.  (Hashed, 13
    values in 13 partitions put some together on Dask and Spark.)"""
    n = 13
    rng = np.random.default_rng(3)
    g = rng.integers(0, n, 2_000).astype(np.int32)
    frame = pd.DataFrame({"g": g, "x": rng.normal(size=len(g))})
    meta = pd.DataFrame({"g": np.array([], np.int64), "values": np.array([], np.int64),
                         "rows": np.array([], np.int64), "x": np.array([], np.float64)})

    def per_call(pdf: pd.DataFrame, payload, threads: int) -> pd.DataFrame:
        return pd.DataFrame({"g": [int(pdf["g"].min())], "values": [pdf["g"].nunique()],
                             "rows": [len(pdf)], "x": [float(pdf["x"].sum())]})

    if engine_name == "local":
        from distsmote.engines.local import LocalEngine

        engine, data = LocalEngine(), frame
    elif engine_name == "dask":
        import dask.dataframe as dd

        from distsmote.engines.dask import DaskEngine

        engine = DaskEngine(request.getfixturevalue("dask_client"))
        data = dd.from_pandas(frame, npartitions=3)
    else:
        from distsmote.engines.spark import SparkEngine

        spark = request.getfixturevalue("spark")
        engine = SparkEngine(spark)
        data = spark.createDataFrame(frame).repartition(3)
    out = engine.shuffle_map(data, "g", per_call, engine.broadcast(None), meta, n, direct=True)
    out = out.compute() if engine_name == "dask" else out.toPandas() if engine_name == "spark" else out
    out = out.sort_values("g", ignore_index=True)
    assert out["values"].tolist() == [1] * n
    assert out["g"].tolist() == list(range(n))
    assert out["rows"].tolist() == np.bincount(g, minlength=n).tolist()
    expected = frame.groupby("g")["x"].sum().to_numpy()
    np.testing.assert_allclose(out["x"].to_numpy(), expected)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux-only")
def test_release_free_memory_returns_freed_heap_pages():
    """Heap pages freed below a live block stay resident until the worker trims them
    between tasks (glibc only gives back the heap's top on its own)."""
    import psutil

    from distsmote._heap import release_free_memory

    proc = psutil.Process()
    blocks = [bytearray(b"x" * 65536) for _ in range(6000)]  # ~375 MiB of heap blocks
    del blocks[:-1]  # freed, but under the last block: not returned by free()
    before = proc.memory_info().rss
    release_free_memory()
    after = proc.memory_info().rss
    assert before - after > 200 * 2**20, (before >> 20, after >> 20)


def _allocator_settings() -> dict:
    import os

    return {name: os.environ.get(name) for name in ("MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_")}


def test_embedded_cluster_workers_get_the_allocator_settings():
    """The embedded cluster's workers start with two malloc arenas and glibc's adaptive
    trimming (no ``MALLOC_TRIM_THRESHOLD_``, which Dask sets by default)."""
    from distsmote.config import JobConfig
    from distsmote.engines.dask_session import dask_client

    with dask_client(JobConfig(dask={"n_workers": 1})) as client:
        settings = client.run(_allocator_settings)
    assert list(settings.values()) == [{"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": None}]
