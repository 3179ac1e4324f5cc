"""SMOTE on Dask and Spark (real clusters on 127.0.0.1): same output as in-process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distsmote import SMOTE

from _data import assert_same_rows, make_frame

KNN = {
    "exact": "exact",
    # Force the approximate path on small classes so determinism is checked for IVF too.
    "ivf": {"method": "ivf", "exact_max_rows": 0, "nlist": 6, "nprobe": 2},
}


@pytest.fixture(scope="module")
def frame():
    f = make_frame({0: 700, 1: 90, 2: 55}, n_features=5, seed=4, dtype=np.float32)
    f["count"] = np.arange(len(f), dtype=np.int64) % 17
    return f


@pytest.fixture(scope="module")
def reference(frame):
    return {
        name: SMOTE(random_state=21, knn=knn).resample(frame, label="y", indicator="synthetic")
        for name, knn in KNN.items()
    }


@pytest.mark.parametrize("knn", sorted(KNN))
@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_dask_matches_in_process(dask_client, frame, reference, knn, partitions):
    import dask.dataframe as dd

    shuffled = frame.sample(frac=1.0, random_state=partitions)
    ddf = dd.from_pandas(shuffled, npartitions=partitions)
    out = SMOTE(random_state=21, knn=KNN[knn]).resample(ddf, label="y", indicator="synthetic")
    assert isinstance(out, dd.DataFrame)  # lazy
    assert out.npartitions > ddf.npartitions  # originals keep their partitions
    result = out.compute()
    assert result.dtypes.to_dict() == reference[knn].dtypes.to_dict()
    assert_same_rows(result, reference[knn])


@pytest.mark.parametrize("knn", sorted(KNN))
def test_spark_matches_in_process(spark, frame, reference, knn):
    sdf = spark.createDataFrame(frame).repartition(5)
    out = SMOTE(random_state=21, knn=KNN[knn]).resample(sdf, label="y", indicator="synthetic")
    types = {f.name: f.dataType.simpleString() for f in out.schema.fields}
    assert types == {**{f"f{i}": "float" for i in range(5)}, "y": "bigint", "count": "bigint", "synthetic": "boolean"}
    result = out.toPandas()
    result["y"] = result["y"].astype(reference[knn]["y"].dtype)
    assert_same_rows(result, reference[knn])


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


def test_spark_output_is_lazy_and_counts_are_exact(spark):
    frame = make_frame({0: 500, 1: 40, 2: 70}, seed=3)
    sdf = spark.createDataFrame(frame)
    sampler = SMOTE(random_state=1, sampling_strategy={1: 200, 2: 300})
    out = sampler.resample(sdf, label="y")
    counts = {r["y"]: r["count"] for r in out.groupBy("y").count().collect()}
    assert counts == {0: 500, 1: 200, 2: 300}
    assert sampler.sampling_strategy_ == {1: 160, 2: 230}


MIXES = [{0: 400, 1: 30}, {0: 60, 1: 400, 2: 150}]


@pytest.mark.parametrize("counts", MIXES)
@pytest.mark.parametrize("strategy", ["auto", "all", "minority"])
def test_counts_match_imblearn_on_dask_and_spark(dask_client, spark, counts, strategy):
    import dask.dataframe as dd
    from imblearn.over_sampling import SMOTE as ImbSMOTE

    frame = make_frame(counts, n_features=3, seed=len(counts))
    X, y = frame.drop(columns="y").to_numpy(), frame["y"].to_numpy()
    _, y_ref = ImbSMOTE(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
    expected = pd.Series(y_ref).value_counts().to_dict()
    sampler = SMOTE(sampling_strategy=strategy, random_state=0)
    got_dask = sampler.resample(dd.from_pandas(frame, npartitions=3), label="y")["y"].value_counts().compute().to_dict()
    got_spark = {r["y"]: r["count"] for r in sampler.resample(spark.createDataFrame(frame), label="y").groupBy("y").count().collect()}
    assert got_dask == expected and got_spark == expected


@pytest.mark.parametrize(
    "mutate, params, message",
    [
        (lambda f: f.assign(y=1), {}, "needs to have more than 1 class"),
        (lambda f: f.assign(flag=True), {}, "['flag'] are not numeric"),
        (lambda f: f, {"sampling_strategy": "majority"}, "cannot be used with over-sampler"),
        (lambda f: f, {"sampling_strategy": {5: 100}}, "The {5} target class is/are not present"),
    ],
)
def test_errors_on_dask_and_spark(dask_client, spark, mutate, params, message):
    import dask.dataframe as dd

    frame = mutate(make_frame({0: 80, 1: 20}))
    for distributed_frame in (dd.from_pandas(frame, npartitions=2), spark.createDataFrame(frame)):
        with pytest.raises(ValueError) as err:
            SMOTE(random_state=0, **params).resample(distributed_frame, label="y")
        assert message in str(err.value)
