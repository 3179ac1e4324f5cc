"""SMOTE through the public API on the in-process engine (fit_resample and pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imblearn.over_sampling import SMOTE as ImbSMOTE
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from distsmote import SMOTE, KnnConfig
from distsmote._plan import allocate_children

from _data import on_some_segment, assert_same_rows, make_frame


def _xy(frame, label="y"):
    return frame.drop(columns=label).to_numpy(), frame[label].to_numpy()


# -- counts --------------------------------------------------------------------------------

MIXES = [
    {0: 300, 1: 40},
    {0: 40, 1: 300, 2: 90},
    {"fraud": 25, "ok": 400, "review": 60, "chargeback": 12},
]


@pytest.mark.parametrize("counts", MIXES)
@pytest.mark.parametrize("strategy", ["auto", "minority", "not minority", "all"])
def test_counts_match_imblearn(counts, strategy):
    X, y = _xy(make_frame(counts))
    _, y_ours = SMOTE(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
    _, y_ref = ImbSMOTE(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
    assert pd.Series(y_ours).value_counts().to_dict() == pd.Series(y_ref).value_counts().to_dict()


@pytest.mark.parametrize(
    "counts, strategy",
    [
        ({0: 300, 1: 40}, 0.37),
        ({0: 300, 1: 40}, {1: 299}),
        ({0: 40, 1: 300, 2: 90}, {0: 41, 2: 250}),
        ({0: 40, 1: 300, 2: 90}, lambda y: {0: 100, 2: 100}),
    ],
)
def test_counts_match_imblearn_for_ratios_dicts_and_callables(counts, strategy):
    X, y = _xy(make_frame(counts))
    _, y_ours = SMOTE(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
    _, y_ref = ImbSMOTE(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
    assert pd.Series(y_ours).value_counts().to_dict() == pd.Series(y_ref).value_counts().to_dict()


# -- geometry ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    m=st.integers(6, 25),
    d=st.integers(1, 4),
    k=st.integers(1, 5),
    n_new=st.integers(1, 80),
    seed=st.integers(0, 2**32),
    data_seed=st.integers(0, 2**16),
    duplicates=st.booleans(),
)
def test_geometry_and_counts_property(m, d, k, n_new, seed, data_seed, duplicates):
    rng = np.random.default_rng(data_seed)
    minority = rng.normal(size=(m, d)).round(1 if duplicates else 12)
    majority = rng.normal(5, 1, size=(m + n_new, d))
    X = np.vstack([majority, minority])
    y = np.array([0] * len(majority) + [1] * m)
    X_res, y_res = SMOTE(k_neighbors=min(k, m - 1), random_state=seed, knn="exact").fit_resample(X, y)
    assert (y_res == 1).sum() == m + n_new and (y_res == 0).sum() == m + n_new
    np.testing.assert_array_equal(X_res[: len(X)], X)
    assert on_some_segment(minority, X_res[len(X):], min(k, m - 1))


@settings(max_examples=60, deadline=None)
@given(n_rows=st.integers(1, 500), n_new=st.integers(0, 5000), seed=st.integers(0, 2**40))
def test_allocation_is_even_and_reproducible(n_rows, n_new, seed):
    counts = allocate_children(n_rows, n_new, seed, 0)
    assert counts.sum() == n_new
    assert set(np.unique(counts)) <= {n_new // n_rows, -(-n_new // n_rows)}
    np.testing.assert_array_equal(counts, allocate_children(n_rows, n_new, seed, 0))


def test_allocation_extra_rows_depend_on_seed():
    a = allocate_children(1000, 1500, 1, 0)
    b = allocate_children(1000, 1500, 2, 0)
    assert (a != b).any()


def test_children_spread_evenly_over_seed_rows():
    """Every seed row gets ⌊N/m⌋ or ⌈N/m⌉ children (seeds recovered from the geometry)."""
    seeds = 1.5 ** np.arange(30)  # 1-D, growing gaps: the nearest neighbour of x_i is x_{i-1}
    X = np.concatenate([seeds, 1e6 + np.arange(500.0)])[:, None]
    y = np.array([1] * 30 + [0] * 500)
    X_res, _ = SMOTE(random_state=3, k_neighbors=1, knn="exact").fit_resample(X, y)
    new = X_res[len(X):, 0]
    # A child in (x_{i-1}, x_i] belongs to x_i; the first interval is shared by x_0 and x_1.
    owner = np.searchsorted(seeds, new, side="left")
    per_seed = np.bincount(np.maximum(owner, 1), minlength=30)
    lo, hi = 470 // 30, 470 // 30 + 1
    assert set(per_seed[2:]) <= {lo, hi}
    assert 2 * lo <= per_seed[1] <= 2 * hi
    assert per_seed.sum() == 470


# -- API contract --------------------------------------------------------------------------


def test_numpy_in_numpy_out_originals_first():
    X, y = _xy(make_frame({0: 200, 1: 20}))
    X32 = X.astype(np.float32)
    X_res, y_res = SMOTE(random_state=0).fit_resample(X32, y)
    assert isinstance(X_res, np.ndarray) and X_res.dtype == np.float32
    assert isinstance(y_res, np.ndarray) and len(X_res) == len(y_res) == 400
    np.testing.assert_array_equal(X_res[:220], X32)
    np.testing.assert_array_equal(y_res[:220], y)
    assert (y_res[220:] == 1).all()


def test_pandas_in_pandas_out_keeps_columns_and_dtypes():
    frame = make_frame({"a": 100, "b": 10})
    frame["count"] = np.arange(len(frame), dtype=np.int32)
    X, y = frame.drop(columns="y"), frame["y"].rename("target")
    X_res, y_res = SMOTE(random_state=0).fit_resample(X, y)
    assert list(X_res.columns) == list(X.columns)
    assert X_res.dtypes.to_dict() == X.dtypes.to_dict()
    assert isinstance(y_res, pd.Series) and y_res.name == "target"
    assert y_res.value_counts().to_dict() == {"a": 100, "b": 100}


def test_resample_adds_indicator_and_keeps_schema():
    frame = make_frame({0: 100, 1: 10}, dtype=np.float32)
    out = SMOTE(random_state=0).resample(frame, label="y", indicator="is_synthetic")
    assert list(out.columns) == [*frame.columns, "is_synthetic"]
    assert out.dtypes.drop("is_synthetic").to_dict() == frame.dtypes.to_dict()
    assert out["is_synthetic"].dtype == bool
    assert not out["is_synthetic"].iloc[:110].any() and out["is_synthetic"].iloc[110:].all()
    assert_same_rows(out.iloc[:110].drop(columns="is_synthetic"), frame)


@pytest.mark.parametrize("labels", [(0, 1), ("no", "yes"), (False, True)])
def test_label_types(labels):
    frame = make_frame({labels[0]: 120, labels[1]: 12})
    out = SMOTE(random_state=0).resample(frame, label="y")
    assert out["y"].value_counts().to_dict() == {labels[0]: 120, labels[1]: 120}
    assert out["y"].dtype == frame["y"].dtype


def test_works_in_imblearn_pipeline():
    X, y = _xy(make_frame({0: 300, 1: 30}))
    pipe = Pipeline([("smote", SMOTE(random_state=0)), ("clf", LogisticRegression())])
    pipe.fit(X, y)
    assert pipe.predict(X).shape == y.shape


def test_sklearn_estimator_contract():
    s = SMOTE(k_neighbors=3, random_state=7, knn=KnnConfig(method="ivf", nprobe=8))
    c = clone(s)
    assert c.get_params() == s.get_params() and c is not s
    c.set_params(k_neighbors=4)
    assert c.k_neighbors == 4 and s.k_neighbors == 3
    assert not hasattr(c, "sampling_strategy_")
    c.fit_resample(*_xy(make_frame({0: 100, 1: 10})))
    assert c.sampling_strategy_ == {1: 90}


# -- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("knn", ["exact", {"method": "ivf", "nlist": 4}, {"method": "hnsw"}])
def test_same_rows_any_order_same_output(knn):
    frame = make_frame({0: 400, 1: 60, 2: 45}, seed=2)
    a = SMOTE(random_state=11, knn=knn).resample(frame, label="y")
    b = SMOTE(random_state=11, knn=knn).resample(frame.sample(frac=1.0, random_state=5), label="y")
    assert_same_rows(a, b)
    c = SMOTE(random_state=12, knn=knn).resample(frame, label="y")
    assert not c.iloc[len(frame):].reset_index(drop=True).equals(a.iloc[len(frame):].reset_index(drop=True))


def test_none_seed_gives_fresh_draws():
    frame = make_frame({0: 100, 1: 10})
    a = SMOTE().resample(frame, label="y")
    b = SMOTE().resample(frame, label="y")
    assert not np.array_equal(a.iloc[110:, :4].to_numpy(), b.iloc[110:, :4].to_numpy())


# -- approximate search --------------------------------------------------------------------


def test_approximate_default_recall_at_k():
    """Default IVF settings reach recall@k >= 0.98 against exact search on clustered data."""
    from distsmote.neighbors.index import build_index, search_neighbors

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 6, size=(40, 16))
    x = (centres[rng.integers(0, 40, 200_000)] + rng.normal(size=(200_000, 16))).astype(np.float32)
    x = x[np.lexsort(x.T[::-1])]
    k = 5
    config = KnnConfig().resolve(len(x))
    assert config.method == "ivf"
    ids = np.arange(0, len(x), 41)
    approx = search_neighbors(build_index(x, config, 0), x, ids, k, config.rerank_extra, 2)
    exact_cfg = KnnConfig(method="exact").resolve(len(x))
    exact = search_neighbors(build_index(x, exact_cfg, 0), x, ids, k, 0, 2)
    recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)])
    assert recall >= 0.98, recall


def test_exact_neighbours_match_sklearn():
    from sklearn.neighbors import NearestNeighbors

    from distsmote.neighbors.index import build_index, search_neighbors

    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 8))
    x = x[np.lexsort(x.T[::-1])]
    ids = np.arange(len(x))
    ours = search_neighbors(build_index(x.astype(np.float32), KnnConfig(method="exact"), 0), x, ids, 5, 8, 2)
    ref = NearestNeighbors(n_neighbors=6).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    np.testing.assert_array_equal(ours, ref)


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, kwargs, message",
    [
        (lambda f: f, {"label": "missing"}, "Label column 'missing' not found"),
        (lambda f: f.assign(city="x"), {}, "Feature column(s) ['city'] are not numeric"),
        (lambda f: f.assign(flag=True), {}, "Feature column(s) ['flag'] are not numeric"),
        (lambda f: f.assign(f2=f["f2"].where(f.index != 3, np.nan)), {}, "'f2' (1 rows)"),
        (lambda f: f.assign(f1=f["f1"].where(f.index != 5, -np.inf)), {}, "'f1' (1 rows)"),
        (lambda f: f.assign(y=f["y"].where(f.index != 4, None)), {}, "has 1 missing value"),
        (lambda f: f.assign(y=0), {}, "needs to have more than 1 class. Got 1 class instead"),
        (lambda f: f.assign(is_synthetic=1.0), {"indicator": "is_synthetic"}, "already exists"),
    ],
)
def test_bad_input_errors_name_the_culprit(mutate, kwargs, message):
    frame = mutate(make_frame({0: 60, 1: 12}))
    args = {"label": "y", **kwargs}
    with pytest.raises(ValueError) as err:
        SMOTE(random_state=0).resample(frame, **args)
    assert message in str(err.value)


def test_small_class_error_names_class_and_count():
    frame = make_frame({0: 60, "rare": 5} if False else {0: 60, 7: 5})
    with pytest.raises(ValueError, match=r"Class 7 has 5 row\(s\), but k_neighbors=5 needs at least 6"):
        SMOTE(random_state=0).resample(frame, label="y")
    out = SMOTE(random_state=0, k_neighbors=4).resample(frame, label="y")
    assert out["y"].value_counts().to_dict() == {0: 60, 7: 60}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"sampling_strategy": "majority"}, "The 'sampling_strategy' parameter of SMOTE must be"),
        ({"sampling_strategy": "everything"}, "Got 'everything' instead"),
        ({"k_neighbors": 0}, "The 'k_neighbors' parameter of SMOTE must be an int in the range [1, inf)"),
        ({"knn": {"method": "ivf", "nprobes": 3}}, "Unknown knn config key(s) ['nprobes']"),
        ({"knn": "annoy"}, "The 'knn' parameter of SMOTE must be a str among"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(ValueError) as err:
        SMOTE(random_state=0, **params).resample(make_frame({0: 60, 1: 12}), label="y")
    assert message in str(err.value)


def test_non_frame_input_is_refused():
    with pytest.raises(TypeError, match="Use fit_resample"):
        SMOTE().resample(np.zeros((3, 2)), label="y")


def test_nullable_pandas_dtypes_are_numeric_features():
    frame = make_frame({0: 80, 1: 12}).astype({"f0": "Float64"})
    frame["f1"] = pd.array(np.arange(len(frame)) % 7, dtype="Int64")
    out = SMOTE(random_state=0).resample(frame, label="y")
    assert out.dtypes.to_dict() == frame.dtypes.to_dict()
    assert out["y"].value_counts().to_dict() == {0: 80, 1: 80}
    frame.loc[3, "f0"] = pd.NA
    with pytest.raises(ValueError, match=r"'f0' \(1 rows\)"):
        SMOTE(random_state=0).resample(frame, label="y")


def test_interpolation_matches_numpy_bit_for_bit_and_refuses_rows_outside_its_tables():
    """The compiled interpolation: ``x + u·(p − x)`` in float64, cast once, column-major;
    a seed or partner that is not a row of its table is an error, not a stray read."""
    from distsmote._kernels import interpolate

    rng = np.random.default_rng(0)
    base = (rng.standard_normal((50, 4)) * 100).astype(np.float32)
    pool = rng.standard_normal((30, 4)) * 100
    rows, targets, gap = rng.integers(0, 50, 400), rng.integers(0, 30, 400), rng.random(400)
    got = interpolate(base, rows, pool, targets, gap, np.float32)
    diff = np.subtract(pool[targets], base[rows], dtype=np.float64)
    want = np.asfortranarray(base[rows] + gap[:, None] * diff, dtype=np.float32)
    assert got.flags.f_contiguous and np.array_equal(got, want)
    with pytest.raises(IndexError, match="not a row of its table"):
        interpolate(base, rows, pool, np.r_[targets[:-1], 30], gap, np.float32)
    with pytest.raises(IndexError, match="not a row of its table"):
        interpolate(base, np.r_[-1, rows[1:]], pool, targets, gap, np.float32)
