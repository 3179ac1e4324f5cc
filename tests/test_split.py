"""train_test_split: exact per-class counts, a partition of the input, engine-independent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _data import canonical, make_frame
from distsmote.split import train_test_split


def _table(seed: int = 0) -> pd.DataFrame:
    frame = make_frame({"no": 700, "yes": 120, "maybe": 31}, n_features=3, seed=seed)
    frame["geo"] = np.array(["FR", "DE", "ES"])[np.arange(len(frame)) % 3]
    frame["n"] = (np.arange(len(frame)) % 7).astype(np.int64)
    return frame


def _with_duplicates() -> pd.DataFrame:
    """Classes made (partly or wholly) of identical rows, so groups straddle boundaries."""
    base = _table(1).iloc[:200]
    copies = pd.concat([base.iloc[[0]]] * 40 + [base.iloc[[1]]] * 9, ignore_index=True)
    lonely = base.iloc[[2]].assign(y="solo")
    return pd.concat([base, copies, pd.concat([lonely] * 10)], ignore_index=True)


def _expected(frame: pd.DataFrame, fraction: float) -> dict:
    return {c: int(np.floor(fraction * n + 0.5)) for c, n in frame["y"].value_counts().items()}


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.05, 0.93])
def test_stratified_counts_exact_and_a_partition(fraction):
    frame = _table().assign(row=np.arange(851))  # unique rows: sides must be disjoint
    train, test = train_test_split(frame, "y", fraction, seed=3)
    assert test["y"].value_counts().to_dict() == _expected(frame, fraction)
    assert set(train["row"]).isdisjoint(test["row"])
    assert canonical(pd.concat([train, test])).equals(canonical(frame))
    assert list(train.columns) == list(frame.columns) and (train.dtypes == frame.dtypes).all()


@pytest.mark.parametrize("seed", range(4))
def test_identical_rows_straddling_the_boundary_keep_counts_exact(seed):
    frame = _with_duplicates()
    train, test = train_test_split(frame, "y", 0.3, seed=seed)
    assert test["y"].value_counts().to_dict() == _expected(frame, 0.3)
    # "solo" is 10 identical rows: 3 copies must go to test, 7 to train.
    assert (test["y"] == "solo").sum() == 3 and (train["y"] == "solo").sum() == 7
    assert canonical(pd.concat([train, test])).equals(canonical(frame))


def test_unstratified_overall_count_exact():
    frame = _with_duplicates()
    frame.loc[frame.index[:5], "y"] = None  # labels may be missing without stratification
    train, test = train_test_split(frame, "y", 0.25, stratify=False, seed=2)
    assert len(test) == int(np.floor(0.25 * len(frame) + 0.5))
    assert canonical(pd.concat([train, test])).equals(canonical(frame))


def test_seed_changes_the_split_and_row_order_does_not():
    frame = _table()
    _, a = train_test_split(frame, "y", 0.2, seed=0)
    _, b = train_test_split(frame.sample(frac=1.0, random_state=5), "y", 0.2, seed=0)
    _, c = train_test_split(frame, "y", 0.2, seed=1)
    assert canonical(a).equals(canonical(b))
    assert not canonical(a).equals(canonical(c))
    assert len(a) == len(c)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"label": "target"}, "Label column 'target' is not in the table"),
        ({"test_fraction": 0.0}, "strictly between 0 and 1"),
        ({"test_fraction": 1.0}, "strictly between 0 and 1"),
        ({"test_fraction": "0.2"}, "strictly between 0 and 1"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    args = {"label": "y", "test_fraction": 0.2, **kwargs}
    with pytest.raises(ValueError, match=match):
        train_test_split(_table(), args.pop("label"), args.pop("test_fraction"), **args)


def test_missing_labels_refused_when_stratified():
    frame = _table()
    frame.loc[3, "y"] = None
    with pytest.raises(ValueError, match="Label column 'y' has 1 missing values"):
        train_test_split(frame, "y", 0.2)


@pytest.mark.parametrize("partitions", [1, 4])
def test_dask_matches_pandas(dask_client, partitions):
    import dask.dataframe as dd

    frame = _with_duplicates()
    expected = [canonical(side) for side in train_test_split(frame, "y", 0.3, seed=7)]
    ddf = dd.from_pandas(frame.sample(frac=1.0, random_state=partitions), npartitions=partitions)
    train, test = train_test_split(ddf, "y", 0.3, seed=7)
    assert isinstance(test, dd.DataFrame)  # lazy: nothing collected but counts and hashes
    assert canonical(train.compute()).equals(expected[0])
    assert canonical(test.compute()).equals(expected[1])


def test_spark_matches_pandas(spark):
    frame = _with_duplicates()
    expected = [canonical(side) for side in train_test_split(frame, "y", 0.3, seed=7)]
    sdf = spark.createDataFrame(frame.sample(frac=1.0, random_state=3)).repartition(3)
    train, test = train_test_split(sdf, "y", 0.3, seed=7)
    assert train.schema == sdf.schema
    assert canonical(train.toPandas()).equals(expected[0])
    assert canonical(test.toPandas()).equals(expected[1])
