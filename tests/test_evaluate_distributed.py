"""evaluate above the in-memory limit: models train on the real Dask and Spark test clusters."""

from __future__ import annotations

import pytest

from distsmote.datasets import CHURN_LABEL, make_churn
from distsmote.evaluate import run_evaluation

EXACT = ("precision", "recall", "f1", "balanced_accuracy")


@pytest.fixture(scope="module")
def churn():
    return make_churn(2500, seed=4)


@pytest.fixture(scope="module")
def in_memory(churn):
    ev = run_evaluation(churn, CHURN_LABEL, "none,smote,tomek-links", "lr,dt", seed=0, view_rows=300)
    return ev.metrics.set_index(["sampler", "model", "metric"])["mean"]


def _spy_collects(monkeypatch, engine_cls) -> list:
    sizes = []
    original = engine_cls.collect_small

    def spy(self, frame, max_rows):
        out = original(self, frame, max_rows)
        sizes.append(len(out))
        return out

    monkeypatch.setattr(engine_cls, "collect_small", spy)
    return sizes


def test_dask_path_matches_in_memory_and_collects_only_samples(dask_client, churn, in_memory, monkeypatch):
    import dask.dataframe as dd

    from distsmote.engines.dask import DaskEngine

    sizes = _spy_collects(monkeypatch, DaskEngine)
    ddf = dd.from_pandas(churn, npartitions=3)
    ev = run_evaluation(ddf, CHURN_LABEL, "none,tomek-links", "lr,dt", seed=0, in_memory_limit=1000,
                        view_rows=300, tree_sample_rows=2000)
    assert ev.path.startswith("distributed on dask: dask-ml LogisticRegression")
    # Only bounded samples reach the client: the 2-D view's (300 rows), the tree models'
    # (at most tree_sample_rows) and the samplers' own; never the 2500-row table.
    assert sizes.count(300) == 3 and max(sizes) <= 2000 < len(churn)
    got = ev.metrics.set_index(["sampler", "model", "metric"])["mean"]
    for s in ("none", "tomek-links"):
        for metric in EXACT:  # same split, same resampled rows, same scikit-learn tree
            assert got[(s, "dt", metric)] == pytest.approx(in_memory[(s, "dt", metric)], abs=1e-12), (s, metric)
        for metric in ("roc_auc", "average_precision"):  # histogram-based: within the bin width
            assert got[(s, "dt", metric)] == pytest.approx(in_memory[(s, "dt", metric)], abs=2e-3)
        for metric in (*EXACT, "roc_auc", "average_precision"):  # dask-ml's solver vs scikit-learn's
            assert got[(s, "lr", metric)] == pytest.approx(in_memory[(s, "lr", metric)], abs=0.02), (s, metric)
    counts = ev.counts.set_index(["sampler", "class"])["after"]
    assert counts[("tomek-links", 0)] < 1600 and counts[("tomek-links", 1)] == 400
    assert "removed" in set(ev.views["tomek-links"]["kind"])


def test_spark_path_trains_mllib_models(spark, churn, in_memory, monkeypatch):
    from distsmote.engines.spark import SparkEngine

    sizes = _spy_collects(monkeypatch, SparkEngine)
    sdf = spark.createDataFrame(churn).repartition(2)
    # One sampler keeps this test short (each Spark job costs seconds); the samplers
    # themselves are tested on Spark elsewhere.
    ev = run_evaluation(sdf, CHURN_LABEL, "none", "lr", seed=0, in_memory_limit=1000, view_rows=300)
    assert ev.path.startswith("distributed on spark: Spark MLlib LogisticRegression")
    assert sizes.count(300) == 2 and max(sizes) < len(churn)
    got = ev.metrics.set_index(["sampler", "model", "metric"])["mean"]
    for s in ("none",):
        for metric in (*EXACT, "roc_auc", "average_precision"):
            assert got[(s, "lr", metric)] == pytest.approx(in_memory[(s, "lr", metric)], abs=0.02), (s, metric)
    assert ev.counts.set_index(["sampler", "class"])["after"].to_dict() == {("none", 0): 1600, ("none", 1): 400}
    assert set(ev.views["none"]["kind"]) == {"original"} and len(ev.views["none"]) == 300


def test_multiclass_above_the_limit_is_refused_clearly(dask_client):
    import dask.dataframe as dd

    from _data import make_frame

    ddf = dd.from_pandas(make_frame({"a": 300, "b": 100, "c": 50}, seed=1), npartitions=2)
    with pytest.raises(ValueError, match="distributed path scores binary labels only"):
        run_evaluation(ddf, "y", "none", "lr", in_memory_limit=10)
