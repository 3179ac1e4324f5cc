"""SMOTE for classes larger than the driver: generation from the distributed kNN join.

A tiny ``driver_budget`` forces the join path; in exact mode its output must be the same
multiset of rows as the broadcast path's, on every engine and partitioning.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distsmote import SMOTE
from distsmote._plan import copy_scores, even_keyed_children, keyed_children, nth_score
from distsmote._validation import DistSmoteInputError
from distsmote.engines.local import LocalEngine

from _data import assert_same_rows, make_frame

ROLES = dict(indicator="synthetic", passthrough=["note"], id_column="rid")


def _frame() -> pd.DataFrame:
    """Three classes whose targets are not multiples of their sizes (extra children),
    float32 features, copies of rows within the class and across classes."""
    frame = make_frame({"a": 700, "b": 131, "c": 67}, seed=4, dtype=np.float32)
    b = frame.index[frame["y"] == "b"]
    frame = pd.concat([frame, frame.loc[[b[0]] * 3 + [b[1]]]], ignore_index=True)  # 4 and 2 copies
    twin = frame.loc[[b[2]]].assign(y="c")  # the same features in another class
    frame = pd.concat([frame, twin], ignore_index=True).sample(frac=1.0, random_state=1).reset_index(drop=True)
    frame["note"] = pd.Series([f"n{i}" for i in range(len(frame))], dtype=object)
    frame["rid"] = np.arange(len(frame), dtype=np.int64)
    return frame


def _smote(budget) -> SMOTE:
    return SMOTE(sampling_strategy="not majority", k_neighbors=5, random_state=11, knn="exact",
                 driver_budget=budget)


@pytest.fixture(scope="module")
def reference():
    frame = _frame()
    return frame, _smote("2GiB").resample(frame, label="y", **ROLES)


def _check(out: pd.DataFrame, reference) -> None:
    frame, expected = reference
    assert out["y"].value_counts().to_dict() == {"a": 700, "b": 700, "c": 700}
    assert_same_rows(out, expected)


def test_join_path_equals_broadcast_path_in_process(reference):
    frame, expected = reference
    out = _smote(1).resample(frame, label="y", **ROLES)
    _check(out, reference)
    new = out[out["synthetic"]]
    assert new["note"].isna().all()
    assert new["rid"].is_unique and not set(new["rid"]) & set(frame["rid"])


def test_join_path_equals_broadcast_path_on_dask(dask_client, reference):
    import dask.dataframe as dd

    frame, _ = reference
    out = _smote("1KiB").resample(dd.from_pandas(frame, npartitions=5), label="y", **ROLES).compute()
    _check(out.reset_index(drop=True), reference)


def test_join_path_equals_broadcast_path_on_spark(spark, reference):
    frame, _ = reference
    sdf = spark.createDataFrame(frame).repartition(7)
    out = _smote(1).resample(sdf, label="y", **ROLES).toPandas()
    out["synthetic"] = out["synthetic"].astype(bool)
    _check(out, reference)


class _NoCollect(LocalEngine):
    """The in-process engine, refusing to collect class rows to the driver (the join's
    quantizer sample, bounded by its own cap, may still reach it)."""

    def collect_rows(self, frame, label, classes, columns):
        raise AssertionError("the join path collected class rows to the driver")


def test_join_path_keeps_class_rows_off_the_driver(reference):
    frame, expected = reference
    sampler = _smote(1)
    sampler._validate()
    engine = _NoCollect()
    info = sampler._describe(engine, frame, "y", "synthetic", dict(passthrough=["note"], id_column="rid"))
    _check(sampler.run(engine, frame, info), reference)


def test_budget_refuses_what_the_join_path_cannot_do():
    frame = make_frame({0: 300, 1: 40}, seed=2)
    frame["day"] = pd.Series(["d1", "d2"] * 170, dtype=object)
    with pytest.raises(DistSmoteInputError, match=r"over driver_budget .*partition_columns"):
        _smote(1).resample(frame, label="y", partition_columns=["day"])
    with pytest.raises(DistSmoteInputError, match=r"driver_budget .* Got 'lots'"):
        _smote("lots").resample(frame.drop(columns="day"), label="y")
    # Within the budget the partition columns work as before.
    out = _smote("1MiB").resample(frame, label="y", partition_columns=["day"])
    assert out["y"].value_counts().to_dict() == {0: 300, 1: 300}


@settings(max_examples=60, deadline=None)
@given(
    mult=st.lists(st.integers(1, 5), min_size=1, max_size=40),
    n_new=st.integers(0, 400),
    seed=st.integers(0, 2**32),
    salt=st.integers(0, 2**16),
)
def test_even_keyed_allocation(mult, n_new, seed, salt):
    mult = np.asarray(mult, np.int64)
    keys = (np.arange(len(mult), dtype=np.int64) * 7919 + salt) * (-1) ** np.arange(len(mult))
    n = int(mult.sum())
    got = even_keyed_children(keys, mult, n_new, seed, 3)
    assert got.sum() == n_new
    base = n_new // n
    assert ((got >= mult * base) & (got <= mult * (base + 1))).all()  # floor or ceil per copy
    order = np.random.default_rng(seed).permutation(len(keys))  # independent of key order
    np.testing.assert_array_equal(even_keyed_children(keys[order], mult[order], n_new, seed, 3), got[order])
    extra = n_new % n
    if extra:  # the threshold found from one bin of copies is the same
        h, k, c, _ = copy_scores(seed, 3, keys, mult)
        top = h >> np.uint64(48)
        cut = np.sort(top)[extra - 1]
        below = int((top < cut).sum())
        in_bin = top == cut
        threshold = nth_score(h[in_bin], k[in_bin], c[in_bin], extra - below)
        np.testing.assert_array_equal(keyed_children(keys, mult, n_new, n, seed, 3, threshold), got)


def test_approximate_join_path_finds_the_true_neighbours():
    """Recall@5 of the join path's neighbour lists (IVF cells of about 2 048 rows,
    ``generation_nprobe`` of them per row) against brute force, on clustered data."""
    import faiss

    from distsmote import _join_kernels as jk
    from distsmote.neighbors.config import KnnConfig
    from distsmote.neighbors.join import knn_join
    from distsmote.neighbors.table import KEY, prepare_table, table_meta
    from distsmote.samplers.join_generation import join_knn_config

    rng = np.random.default_rng(3)
    n, d, k = 60_000, 8, 5
    centres = rng.normal(0, 4, size=(32, d))
    x = (centres[rng.integers(0, 32, n)] + rng.standard_normal((n, d))).astype(np.float32)
    frame = pd.DataFrame(x, columns=[f"c{j}" for j in range(d)]).assign(y=1)
    engine = LocalEngine()
    table = prepare_table(engine, frame, "y", list(frame.columns[:d]), [1], "float32")
    points = engine.shuffle_map(table, KEY, jk.merge_copies, d, table_meta(d, "float32"), 4)
    knn = join_knn_config(KnnConfig(method="ivf", nlist=n // 2048))
    assert knn.join_nprobe == 4
    lists, info = knn_join(engine, points, k=k, n_rows=n, n_features=d, dtype="float32", n_classes=1, knn=knn,
                           finish=jk.neighbour_lists, finish_args=(k, d, "float32"),
                           finish_meta=jk.stage1_meta(d, k, "float32"), seed=0)
    assert info.mode == "approximate" and info.n_cells == n // 2048
    px = points[[f"f{j}" for j in range(d)]].to_numpy(np.float32)
    keys = points[KEY].to_numpy()
    queries = rng.choice(len(px), 2_000, replace=False)
    index = faiss.IndexFlatL2(d)
    index.add(px)
    truth = index.search(px[queries], k + 1)[1][:, 1:]
    got = lists.set_index(KEY).loc[keys[queries], [f"__n{j}" for j in range(k)]].to_numpy()
    recall = np.mean([len(set(keys[t]) & set(g)) / k for t, g in zip(truth, got)])
    assert recall >= 0.98, recall
