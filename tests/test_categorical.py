"""Categorical features (SMOTENC, SMOTEN) and column roles, against imbalanced-learn.

* SMOTENC's neighbours equal imbalanced-learn's (exact search, its one-hot encoding),
  with low- and high-cardinality features; its ``median_std_`` too;
* every synthetic row is ``seed + u·(neighbour − seed)`` on the continuous features and
  takes its neighbours' most frequent categories;
* SMOTEN's neighbour distances equal imbalanced-learn's VDM, and its categories are the
  mode over the seed and its neighbours;
* counts, columns and dtypes are exact; bad columns give one-line errors.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestNeighbors

from distsmote import SMOTE, SMOTEN, SMOTENC
from distsmote.neighbors.categorical import smotenc_neighbours
from distsmote.neighbors.config import KnnConfig


def churn(n_major: int = 300, n_minor: int = 80, seed: int = 0, high: int = 40) -> pd.DataFrame:
    """A churn-like table: continuous, low- and high-cardinality categorical features."""
    rng = np.random.default_rng(seed)
    n = n_major + n_minor
    y = np.r_[np.zeros(n_major, int), np.ones(n_minor, int)]
    frame = pd.DataFrame({
        "age": rng.normal(40, 10, n) + 5 * y,
        "geography": pd.Categorical(rng.choice(["France", "Germany", "Spain"], n)),
        "balance": rng.gamma(2.0, 3.0, n),
        "gender": rng.choice(["Female", "Male"], n).astype(object),
        "active": rng.random(n) < 0.5,
        "branch": rng.choice([f"b{i:03d}" for i in range(high)], n).astype(object),
        "y": y,
    })
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


# ------------------------------------------------------------ SMOTENC vs imbalanced-learn


def _imblearn_smotenc_neighbours(x_cont, cats, k):
    """imbalanced-learn's encoding and exact search, as in SMOTENC._fit_resample."""
    m = np.median(np.sqrt(np.var(x_cont, axis=0)))
    blocks = [x_cont]
    for col in cats.T:
        values = np.unique(col)
        blocks.append((col[:, None] == values[None, :]) * (m / np.sqrt(2)))
    enc = np.hstack(blocks)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(enc)
    return nn.kneighbors(enc, return_distance=False)[:, 1:], m


@pytest.mark.parametrize("high", [0, 1, 2], ids=lambda h: f"{h}-high-cardinality")
def test_smotenc_neighbours_equal_imblearn(high):
    rng = np.random.default_rng(high)
    n, k = 500, 5
    x = rng.normal(size=(n, 3)) * [1.0, 0.3, 2.0]
    cats = [rng.integers(0, 3, n), rng.integers(0, 2, n)]
    cats += [rng.integers(0, 60, n) for _ in range(high)]  # > LOW_CARDINALITY
    codes = np.stack(cats, axis=1)
    # Codes as sorted-value codes, as the sampler builds them.
    codes = np.stack([np.unique(c, return_inverse=True)[1] for c in codes.T], axis=1)
    ref, m_ref = _imblearn_smotenc_neighbours(x, codes, k)
    ours, m = smotenc_neighbours(x, codes, np.arange(n), k, KnnConfig(method="exact"), 0)
    assert m == pytest.approx(m_ref, rel=1e-12)
    np.testing.assert_array_equal(ours, ref)
    # A subset of query rows gets the same rows' neighbours.
    some = np.arange(0, n, 7)
    sub, _ = smotenc_neighbours(x, codes, some, k, KnnConfig(method="exact"), 0)
    np.testing.assert_array_equal(sub, ref[some])


def test_smotenc_median_std_equals_imblearn():
    from imblearn.over_sampling import SMOTENC as ImbSMOTENC

    frame = churn()
    X, y = frame.drop(columns="y"), frame["y"]
    ours = SMOTENC(categorical_features=[1, 3, 4, 5], random_state=0, knn="exact")
    theirs = ImbSMOTENC(categorical_features=[1, 3, 4, 5], random_state=0)
    X_ours, y_ours = ours.fit_resample(X, y)
    X_theirs, y_theirs = theirs.fit_resample(X, y)
    assert ours.median_std_[1] == pytest.approx(theirs.median_std_[1], rel=1e-12)
    assert Counter(y_ours) == Counter(y_theirs)
    assert list(X_ours.columns) == list(X.columns)
    assert X_ours.dtypes.to_dict() == X.dtypes.to_dict()
    np.testing.assert_array_equal(ours.categorical_features_, theirs.categorical_features_)
    np.testing.assert_array_equal(ours.continuous_features_, theirs.continuous_features_)


def _segment_seed(x_seed, nbrs, x_new):
    """(seed row, neighbour slot) pairs whose segment holds ``x_new``."""
    hits = []
    for i in range(len(x_seed)):
        for slot, j in enumerate(nbrs[i]):
            v = x_seed[j] - x_seed[i]
            w = x_new - x_seed[i]
            u = (w @ v) / (v @ v) if v @ v > 0 else 0.0
            if -1e-12 <= u <= 1 + 1e-12 and np.abs(w - u * v).max() <= 1e-9 * (1 + np.abs(x_seed[i]).max()):
                hits.append((i, slot))
    return hits


def test_smotenc_rows_step_toward_a_neighbour_and_take_the_neighbours_mode():
    frame = churn(seed=3)
    cats = ["geography", "gender", "active", "branch"]
    sampler = SMOTENC(categorical_features=cats, random_state=5, knn="exact")
    out = sampler.resample(frame, label="y", indicator="synthetic")
    minority = frame[frame["y"] == 1].reset_index(drop=True)
    x = minority[["age", "balance"]].to_numpy()
    codes = np.stack([pd.factorize(minority[c].astype(object), sort=True)[0] for c in cats], axis=1)
    nbrs, _ = _imblearn_smotenc_neighbours(x, codes, 5)
    new = out[out["synthetic"]]
    assert len(new) == 300 - 80
    checked_ties = 0
    for _, row in new.iterrows():
        hits = _segment_seed(x, nbrs, row[["age", "balance"]].to_numpy(float))
        assert hits, "a synthetic row is on no seed-neighbour segment"
        seeds = {i for i, _ in hits}
        ok = False
        for i in seeds:
            good = True
            for c in cats:
                counts = Counter(minority[c].to_numpy()[nbrs[i]])
                top = max(counts.values())
                good &= row[c] in {v for v, n in counts.items() if n == top}
                checked_ties += sum(n == top for n in counts.values()) > 1
            ok |= good
        assert ok, f"categories {row[cats].to_dict()} are not the neighbours' most frequent"
    assert checked_ties  # ties occurred and were resolved among the tied values


def test_smotenc_tie_break_is_deterministic_and_seeded():
    frame = churn(seed=4)
    a = SMOTENC(random_state=1, knn="exact").resample(frame, label="y")
    b = SMOTENC(random_state=1, knn="exact").resample(frame.sample(frac=1.0, random_state=9), label="y")
    c = SMOTENC(random_state=2, knn="exact").resample(frame, label="y")
    from _data import assert_same_rows

    assert_same_rows(a, b)
    assert not a.tail(220).reset_index(drop=True).equals(c.tail(220).reset_index(drop=True))


def test_smotenc_needs_both_kinds_of_features():
    frame = churn()
    with pytest.raises(ValueError, match="only with numerical features"):
        SMOTENC(random_state=0).resample(frame[["age", "balance", "y"]], label="y")
    with pytest.raises(ValueError, match="only with categorical features"):
        SMOTENC(random_state=0).resample(frame[["gender", "branch", "y"]], label="y")


def test_smotenc_numpy_object_array_with_indices():
    from imblearn.over_sampling import SMOTENC as ImbSMOTENC

    frame = churn()
    X = frame.drop(columns="y").to_numpy(dtype=object)
    y = frame["y"].to_numpy()
    X_res, y_res = SMOTENC(categorical_features=[1, 3, 4, 5], random_state=0).fit_resample(X, y)
    X_ref, y_ref = ImbSMOTENC(categorical_features=[1, 3, 4, 5], random_state=0).fit_resample(X, y)
    assert X_res.shape == X_ref.shape and X_res.dtype == object
    assert Counter(y_res) == Counter(y_ref)
    for j in (1, 3, 5):  # synthetic categories are values the class has
        assert set(X_res[len(X):, j]) <= set(X[y == 1, j])


# ------------------------------------------------------------------- SMOTEN vs imbalanced-learn


def nominal(n_major=200, n_minor=70, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_major + n_minor
    y = np.r_[np.zeros(n_major, int), np.ones(n_minor, int)]
    return pd.DataFrame({
        "colour": np.where(y == 1, rng.choice(["red", "green", "blue"], n, p=[.6, .3, .1]),
                           rng.choice(["red", "green", "blue"], n)).astype(object),
        "size": rng.choice(["S", "M", "L", "XL"], n).astype(object),
        "shape": pd.Categorical(rng.choice(["round", "square"], n)),
        "y": y,
    })


def _imblearn_vdm(frame, cls):
    from imblearn.metrics.pairwise import ValueDifferenceMetric
    from sklearn.preprocessing import OrdinalEncoder

    X = frame.drop(columns="y").astype(object).to_numpy()
    enc = OrdinalEncoder(dtype=np.int32)
    codes = enc.fit_transform(X)
    vdm = ValueDifferenceMetric(n_categories=[len(c) for c in enc.categories_]).fit(codes, frame["y"].to_numpy())
    sel = frame["y"].to_numpy() == cls
    return vdm.pairwise(codes[sel]), X[sel]


def test_smoten_neighbour_distances_equal_imblearn():
    from distsmote.neighbors.categorical import vdm_neighbours, vdm_tables
    from distsmote.engines.local import LocalEngine
    from distsmote.samplers.smoten import probabilities, value_class_counts

    frame = nominal()
    dist, X1 = _imblearn_vdm(frame, 1)
    k = 5
    ref = np.sort(dist, axis=1)[:, : k + 1]  # itself (0) and its k nearest
    codes = np.stack([pd.factorize(frame.loc[frame.y == 1, c].astype(object), sort=True)[0]
                      for c in ["colour", "size", "shape"]], axis=1)
    counts = value_class_counts(LocalEngine(), frame, ["colour", "size", "shape"], "y", [0, 1])
    vocab = [np.sort(frame.loc[frame.y == 1, c].astype(object).unique()) for c in ["colour", "size", "shape"]]
    tables = vdm_tables(probabilities(counts, vocab, 2))
    nbrs = vdm_neighbours(codes, tables, np.arange(len(codes)), k)
    ours = np.take_along_axis(dist, nbrs, axis=1)
    np.testing.assert_allclose(np.sort(ours, axis=1), ref, atol=1e-12)
    assert (nbrs[:, 0] == np.arange(len(codes))).all()


def test_smoten_categories_are_the_mode_of_seed_and_neighbours():
    from imblearn.over_sampling import SMOTEN as ImbSMOTEN

    frame = nominal(seed=2)
    out = SMOTEN(random_state=0).resample(frame, label="y", indicator="synthetic")
    X, y = frame.drop(columns="y"), frame["y"]
    X_ref, y_ref = ImbSMOTEN(random_state=0).fit_resample(X, y)
    assert Counter(out["y"]) == Counter(y_ref)
    assert out.drop(columns="synthetic").dtypes.to_dict() == frame.dtypes.to_dict()
    dist, X1 = _imblearn_vdm(frame, 1)
    # Every synthetic row is the per-feature mode over some row and k nearest others.
    modes = set()
    for i in range(len(X1)):
        order = np.lexsort((np.arange(len(X1)), dist[i]))
        kth = dist[i, order[5]]
        near = np.flatnonzero(dist[i] <= kth + 1e-12)
        # With ties at the k-th distance any k of them may be chosen: accept every mode
        # of the seed plus its strict neighbours plus tied ones.
        strict = [j for j in near if dist[i, j] < kth - 1e-12 and j != i]
        tied = [j for j in near if abs(dist[i, j] - kth) <= 1e-12 and j != i]
        options = []
        for f in range(X1.shape[1]):
            base = Counter(X1[[i, *strict], f])
            cand = set()
            for v in set(X1[tied, f]) | set(base):
                extra = 5 - len(strict)
                best = Counter(base)
                best[v] += min(extra, sum(X1[tied, f] == v))
                top = max(best.values())
                cand |= {w for w, n in best.items() if n == top}
            options.append(cand)
        modes.add(tuple(frozenset(o) for o in options))
    for _, row in out[out["synthetic"]].iterrows():
        values = tuple(row[["colour", "size", "shape"]])
        assert any(all(v in o for v, o in zip(values, opts)) for opts in modes)


# -------------------------------------------------------------------- roles and errors


def test_undeclared_timestamp_is_a_one_line_error_naming_the_option():
    frame = churn().assign(when=pd.Timestamp("2024-01-01"))
    with pytest.raises(ValueError) as err:
        SMOTENC(random_state=0).resample(frame, label="y")
    msg = str(err.value)
    assert "\n" not in msg and "'when'" in msg and "passthrough=['when']" in msg and "--passthrough when" in msg


def test_smote_refuses_a_categorical_column_and_names_the_remedies():
    frame = churn()
    with pytest.raises(ValueError) as err:
        SMOTE(random_state=0).resample(frame, label="y")
    msg = str(err.value)
    assert "'geography'" in msg and "SMOTENC" in msg and "passthrough" in msg


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"passthrough": ["nope"]}, "Column 'nope' given in passthrough= is not in the frame"),
        ({"id_column": "active"}, "The id column 'active' is bool"),
        ({"id_column": "small_id"}, "The id column 'small_id' is int32"),
        ({"categorical": ["gender"], "passthrough": ["gender"]}, "both categorical and passthrough"),
        ({"partition_columns": ["y"]}, "is the label"),
    ],
)
def test_role_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SMOTENC(random_state=0).resample(churn().assign(small_id=np.int32(1)), label="y",
                                         **{"passthrough": ["small_id"], **kwargs})


def test_null_in_a_categorical_feature_is_refused():
    frame = churn()
    frame.loc[3, "gender"] = None
    with pytest.raises(ValueError, match="'gender' \\(1 rows\\)"):
        SMOTENC(random_state=0).resample(frame, label="y")


def test_a_thousand_categories_cost_memory_per_row_not_per_category():
    """Neighbour search and generation with a 2,000-category feature stay far below a
    one-hot of the class (rows × categories × 8 bytes = 160 MB here)."""
    import tracemalloc

    from distsmote._kernels import vote

    rng = np.random.default_rng(0)
    n, cats, k = 10_000, 2_000, 5
    x = rng.normal(size=(n, 4))
    codes = np.stack([rng.integers(0, 3, n), rng.integers(0, cats, n)], axis=1)
    tracemalloc.start()
    nbrs, _ = smotenc_neighbours(x, codes, np.arange(n), k, KnnConfig(method="exact"), 0)
    rows = np.repeat(np.arange(n), 10)
    child = np.tile(np.arange(10), n)
    picked = vote(codes[:, 1][nbrs[rows]], nbrs[rows] >= 0, np.uint64(7), rows, child)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    one_hot = n * cats * 8
    assert peak < one_hot / 4, f"peak {peak / 1e6:.0f} MB"
    # And the vote is the neighbours' most frequent value.
    counts = [Counter(codes[nbrs[r], 1]) for r in rows[:50]]
    assert all(c[v] == max(c.values()) for c, v in zip(counts, picked[:50]))


def test_numpy_int_and_bool_passthrough_become_nullable_only_when_nulls_are_added():
    from distsmote import TomekLinks

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "cnt": np.arange(n),
                          "ok": rng.random(n) < 0.5, "y": (np.arange(n) % 5 == 0).astype(int)})
    out = SMOTE(random_state=0).resample(frame, label="y", passthrough=["cnt", "ok"])
    assert str(out["cnt"].dtype) == "Int64" and str(out["ok"].dtype) == "boolean"
    assert out["cnt"].iloc[n:].isna().all() and (out["cnt"].iloc[:n].to_numpy() == frame["cnt"]).all()
    cleaned = TomekLinks().resample(frame, label="y", passthrough=["cnt", "ok"])
    assert cleaned.dtypes.to_dict() == frame.dtypes.to_dict()  # no row added: types unchanged


def test_arrow_dictionary_string_and_date_columns_keep_their_types():
    import pyarrow as pa

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "y": (np.arange(n) % 5 == 0).astype(int)})
    dictionary = pd.ArrowDtype(pa.dictionary(pa.int32(), pa.string()))
    frame["g"] = pd.array(pa.array(rng.choice(["x", "y", "z"], n)).dictionary_encode(), dtype=dictionary)
    frame["s"] = pd.array(rng.choice(["p", "q"], n), dtype="string[pyarrow]")
    days = np.datetime64("2024-01-01") + rng.integers(0, 3, n).astype("timedelta64[D]")
    frame["d"] = pd.array(pa.array(days).cast(pa.date32()), dtype=pd.ArrowDtype(pa.date32()))
    out = SMOTENC(random_state=0).resample(frame, label="y", partition_columns=["d"])
    assert out.dtypes.to_dict() == frame.dtypes.to_dict()
    new = out.iloc[n:]
    assert len(new) == (frame["y"] == 0).sum() - (frame["y"] == 1).sum()
    assert set(new["g"]) <= set(frame.loc[frame["y"] == 1, "g"]) and new["d"].notna().all()
