"""TomekLinks and EditedNearestNeighbours: imbalanced-learn as the oracle, on every engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from imblearn.under_sampling import EditedNearestNeighbours as ImbENN
from imblearn.under_sampling import TomekLinks as ImbTomek
from sklearn.datasets import make_classification
from sklearn.neighbors import NearestNeighbors

from distsmote import EditedNearestNeighbours, TomekLinks
from distsmote._validation import DistSmoteInputError

from _data import assert_same_rows, make_frame


def _rows(X, y) -> list[tuple]:
    return sorted(map(tuple, np.column_stack([X, np.asarray(y)]).tolist()))


def _data(n_classes: int, n: int = 1500, seed: int = 1):
    weights = {2: [0.7], 3: [0.55, 0.3]}[n_classes]
    return make_classification(
        n_samples=n, n_features=6, n_informative=4, n_classes=n_classes,
        weights=weights, class_sep=0.8, random_state=seed,
    )


STRATEGIES = ["auto", "all", "majority", "not majority"]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_tomek_removes_what_imblearn_removes(n_classes, strategy):
    X, y = _data(n_classes)
    ref = ImbTomek(sampling_strategy=strategy).fit_resample(X, y)
    ours = TomekLinks(sampling_strategy=strategy, knn="exact").fit_resample(X, y)
    assert len(ref[1]) < len(y)  # the data has links to remove
    assert _rows(*ours) == _rows(*ref)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("kind_sel", ["all", "mode"])
def test_enn_removes_what_imblearn_removes(n_classes, strategy, kind_sel):
    X, y = _data(n_classes)
    ref = ImbENN(sampling_strategy=strategy, kind_sel=kind_sel).fit_resample(X, y)
    ours = EditedNearestNeighbours(sampling_strategy=strategy, kind_sel=kind_sel, knn="exact").fit_resample(X, y)
    assert len(ref[1]) < len(y)
    assert _rows(*ours) == _rows(*ref)


@pytest.mark.parametrize("n_neighbors", [1, 4, 6])
def test_enn_neighbour_counts_and_class_lists(n_neighbors):
    X, y = _data(3, n=800, seed=5)
    for strategy in ([0], [1, 2]):
        ref = ImbENN(sampling_strategy=strategy, n_neighbors=n_neighbors, kind_sel="mode").fit_resample(X, y)
        ours = EditedNearestNeighbours(
            sampling_strategy=strategy, n_neighbors=n_neighbors, kind_sel="mode"
        ).fit_resample(X, y)  # knn="auto": exact at this size
        assert _rows(*ours) == _rows(*ref)


def test_string_labels_and_pandas_input_keep_types():
    frame = make_frame({"ok": 400, "fraud": 60, "review": 90}, n_features=3, seed=2, dtype=np.float32)
    X, y = frame.drop(columns="y"), frame["y"]
    Xr, yr = EditedNearestNeighbours(sampling_strategy="all").fit_resample(X, y)
    Xi, yi = ImbENN(sampling_strategy="all").fit_resample(X.to_numpy(np.float64), y.to_numpy())
    assert isinstance(Xr, pd.DataFrame) and list(Xr.columns) == list(X.columns)
    assert (Xr.dtypes == np.float32).all()
    assert isinstance(yr, pd.Series) and yr.name == "y"
    assert sorted(zip(map(tuple, Xr.to_numpy(np.float64).tolist()), yr)) == sorted(
        zip(map(tuple, Xi.tolist()), yi)
    )


def test_resample_frame_with_indicator():
    frame = make_frame({0: 200, 1: 50}, seed=3)
    out = TomekLinks().resample(frame, label="y", indicator="synthetic")
    assert list(out.columns) == [*frame.columns, "synthetic"]
    assert not out["synthetic"].any()
    assert len(out) <= len(frame)


# -- duplicates and ties ------------------------------------------------------------------


def test_duplicates_never_neighbour_themselves():
    # Two copies of a class-0 row with a class-1 row next to them: the class-1 row's
    # nearest neighbour is a copy, but each copy's nearest neighbour is the other copy,
    # so there is no Tomek link and ENN(k=1) keeps both copies.
    x = np.array([[0.0, 0.0], [0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.0, 5.1], [9.0, 9.0]])
    y = np.array([0, 0, 1, 1, 1, 0])
    X_t, y_t = TomekLinks(sampling_strategy="all").fit_resample(x, y)
    assert len(y_t) == len(y)
    X_e, y_e = EditedNearestNeighbours(sampling_strategy="all", n_neighbors=1).fit_resample(x, y)
    # Removed: the class-1 row at (0.1, 0) (its neighbour is a copy of class 0) and the
    # lone class-0 row at (9, 9) (its neighbour is class 1).
    assert _rows(X_e, y_e) == _rows(x[[0, 1, 3, 4]], y[[0, 1, 3, 4]])


def test_duplicated_rows_match_imblearn():
    X, y = _data(2, n=600, seed=8)
    X = np.vstack([X, X[:150]])  # 150 rows appear twice, with the same label
    y = np.concatenate([y, y[:150]])
    for cleaner, ref in [
        (TomekLinks(sampling_strategy="all"), ImbTomek(sampling_strategy="all")),
        (EditedNearestNeighbours(sampling_strategy="all"), ImbENN(sampling_strategy="all")),
    ]:
        assert _rows(*cleaner.fit_resample(X, y)) == _rows(*ref.fit_resample(X, y))


def test_ties_are_broken_the_same_on_any_row_order():
    # Integer grid: many neighbours at exactly equal distances.
    rng = np.random.default_rng(0)
    X = rng.integers(0, 6, size=(700, 3)).astype(np.float64)
    y = rng.integers(0, 3, size=700)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=y)
    outs = []
    for seed in range(3):
        shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        outs.append(EditedNearestNeighbours(sampling_strategy="all", kind_sel="mode").resample(shuffled, "y"))
    assert_same_rows(outs[0], outs[1])
    assert_same_rows(outs[0], outs[2])


# -- approximate mode -----------------------------------------------------------------------


def test_approximate_removals_close_to_exact():
    X, y = make_classification(
        n_samples=30_000, n_features=16, n_informative=6, n_redundant=4, n_clusters_per_class=3,
        weights=[0.8], class_sep=1.2, random_state=3,
    )
    X = X.astype(np.float32)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(16)]).assign(y=y)
    for make in (lambda knn: TomekLinks(sampling_strategy="all", knn=knn),
                 lambda knn: EditedNearestNeighbours(sampling_strategy="all", knn=knn)):
        exact = make("exact").resample(frame, "y")
        approx_sampler = make("ivf")
        approx = approx_sampler.resample(frame, "y")
        assert approx_sampler.join_info_.mode == "approximate"
        removed_exact = len(frame) - len(exact)
        merged = frame.merge(exact.assign(_e=1), how="left").merge(approx.assign(_a=1), how="left")
        differ = int((merged["_e"].isna() != merged["_a"].isna()).sum())
        assert removed_exact > 100
        assert differ < 0.01 * removed_exact, (differ, removed_exact)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sampler, match",
    [
        (TomekLinks(sampling_strategy=0.5), "ratio"),
        (TomekLinks(sampling_strategy={0: 10}), "The 'sampling_strategy' parameter of TomekLinks must be"),
        (TomekLinks(sampling_strategy="minority"), "minority"),
        (TomekLinks(sampling_strategy=[7]), "not present"),
        (EditedNearestNeighbours(kind_sel="any"), "kind_sel"),
        (EditedNearestNeighbours(n_neighbors=0), "n_neighbors"),
        (EditedNearestNeighbours(n_neighbors=NearestNeighbors()), "NearestNeighbors"),
        (TomekLinks(knn="hnsw"), "hnsw"),
        (EditedNearestNeighbours(n_neighbors=20), "at least 21 rows"),
    ],
)
def test_bad_parameters_are_named(sampler, match):
    frame = make_frame({0: 12, 1: 6}, seed=1)
    with pytest.raises(ValueError, match=match):
        sampler.resample(frame, label="y")


def test_bad_input_is_named():
    frame = make_frame({0: 30, 1: 10}, seed=1)
    frame.loc[3, "f1"] = np.nan
    with pytest.raises(DistSmoteInputError, match="'f1'"):
        TomekLinks().resample(frame, label="y")
    with pytest.raises(DistSmoteInputError, match="'label'"):
        TomekLinks().resample(frame.dropna(), label="label")


# -- other engines ------------------------------------------------------------------------------
