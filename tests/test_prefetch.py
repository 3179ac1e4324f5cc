"""One pass for statistics and collection (``engines/base.py``: ``Prefetch``).

An oversampler's class-statistics pass also brings back the rows of each partition's
smaller classes, within an even share of the driver budget, and the collection that
follows uses them instead of reading the data again.  A class that some partition kept
back (its largest class there, or over its share) is collected by the usual pass: the
rows, and so the output, never depend on which way they came.
"""

from __future__ import annotations

import logging

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from distsmote import SMOTE
from distsmote.engines.base import Prefetch, prefetch_rows
from distsmote.engines.dask import DaskEngine
from distsmote.engines.spark import SparkEngine
from distsmote.inputs import resolve_input

from _data import assert_same_rows, make_frame

COLUMNS = ("f0", "f1", "f2", "f3", "y")


def test_a_partition_returns_its_smaller_classes_within_its_share():
    pdf = make_frame({0: 50, 1: 8, 2: 5}, seed=1)
    rows, held = prefetch_rows(pdf, "y", Prefetch(COLUMNS, 1), max_rows=13)
    assert held == [0] and sorted(rows["y"]) == [1] * 8 + [2] * 5
    assert_same_rows(rows, pdf.loc[pdf["y"] != 0, list(COLUMNS)])
    rows, held = prefetch_rows(pdf, "y", Prefetch(COLUMNS, 1), max_rows=12)  # over its share
    assert sorted(held) == [0, 1, 2] and rows.empty
    minority_only = pdf[pdf["y"] == 2]
    rows, held = prefetch_rows(minority_only, "y", Prefetch(COLUMNS, 1), max_rows=100)
    assert held == [2] and rows.empty  # its largest class is the minority: kept back


def _skewed() -> list[pd.DataFrame]:
    """Four partitions; in the last, class 1 is the largest."""
    parts = [make_frame({0: 300, 1: 20, 2: 10}, seed=s) for s in range(3)]
    return [*parts, make_frame({0: 5, 1: 40}, seed=7)]


def _dask(parts: list[pd.DataFrame]) -> dd.DataFrame:
    return dd.concat([dd.from_pandas(p, npartitions=1) for p in parts])


@pytest.mark.parametrize("budget, complete", [(2**30, {2}), (64, set())])
def test_dask_collection_uses_what_the_statistics_pass_brought_back(dask_client, budget, complete, caplog):
    parts = _skewed()
    data, frame = pd.concat(parts, ignore_index=True), _dask(parts)
    engine = DaskEngine()
    stats = engine.label_stats(frame, "y", ["f0"], Prefetch(COLUMNS, budget))
    assert stats.counts == {0: 905, 1: 100, 2: 30}
    assert set(engine._prefetched.complete) == complete
    for classes in ([2], [1, 2]):
        want = data.loc[data["y"].isin(classes), list(COLUMNS)]
        with caplog.at_level(logging.INFO, logger="distsmote"):
            caplog.clear()
            got = engine.collect_rows(frame, "y", classes, list(COLUMNS))
        served = "brought back by the class statistics' pass" in caplog.text
        assert served == (set(classes) <= complete)
        assert_same_rows(got, want)
        engine.label_stats(frame, "y", ["f0"], Prefetch(COLUMNS, budget))  # taken once: fetch again


def test_smote_output_does_not_depend_on_the_prefetch(dask_client):
    """SMOTE on Dask, served from the statistics pass or not, equals the pandas path."""
    for parts in (_skewed(), [make_frame({0: 300, 1: 20}, seed=s) for s in range(3)]):
        want = SMOTE(random_state=4).resample(pd.concat(parts, ignore_index=True), label="y")
        got = SMOTE(random_state=4).resample(_dask(parts), label="y").compute()
        assert_same_rows(got, want)


def test_spark_file_scan_brings_the_rows_back_with_its_statistics(spark, tmp_path):
    parts = _skewed()
    data = pd.concat(parts, ignore_index=True)
    root = tmp_path / "in"
    root.mkdir()
    for i, part in enumerate(parts):  # 4 files of under 4 MiB: one task, whose largest class is 0
        part.to_parquet(root / f"p{i}.parquet", index=False)
    engine = SparkEngine(spark)
    frame = engine.read(resolve_input(str(root)))
    stats = engine.label_stats(frame, "y", ["f0"], Prefetch(COLUMNS, 2**30))
    assert stats.counts == {0: 905, 1: 100, 2: 30}
    assert set(engine._prefetched.complete) == {1, 2}
    got = engine.collect_rows(frame, "y", [1, 2], list(COLUMNS))
    assert engine._prefetched is None  # served, then forgotten
    assert_same_rows(got, engine.collect_rows(frame.select("*"), "y", [1, 2], list(COLUMNS)))
    want = SMOTE(random_state=4).resample(data, label="y")
    out = SMOTE(random_state=4).resample(frame, label="y")
    assert_same_rows(out.toPandas().astype(want.dtypes.to_dict()), want)
    assert np.isfinite(got[["f0", "f1"]].to_numpy()).all()
