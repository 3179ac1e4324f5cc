"""ADASYN and Borderline-SMOTE against imbalanced-learn, with exact search.

The per-row weights (ADASYN) and the danger sets (Borderline-SMOTE) equal
imbalanced-learn's on binary and multi-class data with duplicated rows; synthetic rows
lie on the right segments; totals are exact.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.neighbors import NearestNeighbors

from distsmote import ADASYN, BorderlineSMOTE
from distsmote._plan import allocate_children, canonical_order
from distsmote.engines.local import LocalEngine
from distsmote.samplers.frame_info import describe
from distsmote.samplers.oversampling import collect_class_rows

from _data import on_some_segment


def _dataset(n_classes: int, duplicates: bool, seed: int):
    weights = [0.15, 0.85] if n_classes == 2 else [0.1, 0.25, 0.65]
    X, y = make_classification(
        1500, n_features=5, n_informative=3, n_redundant=0, n_classes=n_classes,
        n_clusters_per_class=1, weights=weights, flip_y=0.02, random_state=seed,
    )
    if duplicates:  # exact copies of some rows (same features and label)
        X, y = np.vstack([X, X[:60]]), np.r_[y, y[:60]]
    return X, y


def _class_rows(sampler, X, y):
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame["y"] = y
    engine = LocalEngine()
    info = describe(engine, frame, "y")
    targets = sampler._resolve(info)
    rows = collect_class_rows(engine, frame, info, {c: n for c, n in targets.items() if n > 0})
    return engine, frame, info, rows


def _other_counts(X, y, cls, m):
    """imbalanced-learn's count: other-class rows among the m nearest (k+1, first dropped)."""
    nn = NearestNeighbors(n_neighbors=m + 1).fit(X)
    Xc = X[y == cls]
    nns = nn.kneighbors(Xc, return_distance=False)[:, 1:]
    return (y[nns] != cls).sum(axis=1), Xc


CASES = [(2, False, 0), (2, True, 1), (3, False, 2), (3, True, 3)]


@pytest.mark.parametrize("n_classes, duplicates, seed", CASES)
def test_adasyn_weights_equal_imblearn(n_classes, duplicates, seed):
    X, y = _dataset(n_classes, duplicates, seed)
    sampler = ADASYN(knn="exact", random_state=0)
    engine, frame, info, rows = _class_rows(sampler, X, y)
    ours = sampler.weights(engine, frame, info, rows)
    assert len(rows) == n_classes - 1
    for r, w in zip(rows, ours):
        theirs, Xc = _other_counts(X, y, r.value, 5)
        np.testing.assert_array_equal(w, theirs[canonical_order(Xc)])
        assert w.sum() > 0


@pytest.mark.parametrize("n_classes, duplicates, seed", CASES)
@pytest.mark.parametrize("m", [10, 6])
def test_borderline_danger_set_equals_imblearn(n_classes, duplicates, seed, m):
    from imblearn.over_sampling import BorderlineSMOTE as ImbBorderline

    X, y = _dataset(n_classes, duplicates, seed)
    sampler = BorderlineSMOTE(knn="exact", m_neighbors=m, random_state=0)
    engine, frame, info, rows = _class_rows(sampler, X, y)
    masks, _, _ = sampler.danger(engine, frame, info, rows)
    theirs = ImbBorderline(m_neighbors=m, random_state=0)
    theirs.fit_resample(X, y)
    for r, mask in zip(rows, masks):
        idx = np.flatnonzero(y == r.value)
        expected = np.isin(idx, theirs.in_danger_indices.get(r.value, []))
        np.testing.assert_array_equal(mask, expected[canonical_order(X[idx])])
        assert 0 < mask.sum() < len(mask)


def test_adasyn_geometry_counts_and_weighting():
    X, y = _dataset(2, True, 5)
    sampler = ADASYN(knn="exact", random_state=7)
    X_res, y_res = sampler.fit_resample(X, y)
    lo, hi = np.argsort(np.bincount(y))  # minority, majority
    assert (y_res == lo).sum() == (y == hi).sum()  # exact total ('auto')
    np.testing.assert_array_equal(X_res[: len(X)], X)
    new = X_res[len(X):]
    assert on_some_segment(X[y == lo], new, 5)


def test_borderline_geometry_kinds_1_and_2():
    X, y = _dataset(2, False, 6)
    b1 = BorderlineSMOTE(knn="exact", random_state=1)
    X1, y1 = b1.fit_resample(X, y)
    lo, hi = np.argsort(np.bincount(y))  # minority, majority
    assert (y1 == lo).sum() == (y == hi).sum()
    engine, frame, info, rows = _class_rows(b1, X, y)
    masks, _, _ = b1.danger(engine, frame, info, rows)
    danger = rows[0].x[masks[0]]
    minority = X[y == lo]
    # borderline-1: seeds are danger rows, partners their 5 nearest rows of the class.
    assert on_some_segment(danger, X1[len(X):], 5, pool=minority)
    b2 = BorderlineSMOTE(kind="borderline-2", knn="exact", random_state=1)
    X2, y2 = b2.fit_resample(X, y)
    assert (y2 == lo).sum() == (y == hi).sum()
    # borderline-2: partners among the 5 nearest rows of all classes; toward another
    # class the step is u·v with v < 0.5.
    assert on_some_segment(danger, X2[len(X):], 5, pool=X, pool_same=(y == lo), other_max_u=0.5)
    assert not on_some_segment(danger, X2[len(X):], 5, pool=minority)


def test_adasyn_without_other_class_neighbours_raises_imblearn_error():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(100, 1, (40, 2))])
    y = np.r_[[0] * 200, [1] * 40]
    with pytest.raises(RuntimeError, match="Not any neigbours belong to the majority class"):
        ADASYN(knn="exact").fit_resample(X, y)


def test_borderline_without_danger_rows_generates_nothing_and_warns(caplog):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(100, 1, (40, 2))])
    y = np.r_[[0] * 200, [1] * 40]
    with caplog.at_level(logging.WARNING, logger="distsmote"):
        X_res, y_res = BorderlineSMOTE(knn="exact").fit_resample(X, y)
    assert len(X_res) == len(X) and "no row in danger" in caplog.text


@settings(max_examples=80, deadline=None)
@given(
    weights=st.lists(st.integers(0, 6), min_size=1, max_size=60).filter(lambda w: sum(w) > 0),
    n_new=st.integers(0, 3000),
    seed=st.integers(0, 2**40),
)
def test_weighted_allocation_is_exact_largest_remainder(weights, n_new, seed):
    w = np.array(weights)
    counts = allocate_children(len(w), n_new, seed, 0, weights=w)
    assert counts.sum() == n_new
    share = n_new * w / w.sum()
    assert (counts >= np.floor(share)).all() and (counts <= np.floor(share) + 1).all()
    assert (counts[w == 0] == 0).all()
    np.testing.assert_array_equal(counts, allocate_children(len(w), n_new, seed, 0, weights=w))
