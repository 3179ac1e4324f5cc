"""The distributed kNN join: brute force as the oracle, skew splits, recall, engines."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification

import distsmote.neighbors.join as join
from distsmote.engines.local import LocalEngine
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.keys import content_keys, keyed_order


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 60), st.integers(1, 4), st.integers(0, 2**31 - 1), st.integers(1, 8),
)
def test_keyed_order_is_lexsort_by_key_then_features(n, d, seed, n_keys):
    """Rows with shared keys (copies, and forced collisions of different rows) come out
    in lexsort's order: by key, then features, then position."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(n, d)).astype(np.float64)
    keys = rng.integers(0, n_keys, size=n).astype(np.int64)  # few keys: many shared
    assert np.array_equal(keyed_order(keys, x), np.lexsort((*x.T[::-1], keys)))


def _frame(X, y) -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])]).assign(y=y)


def run_join(engine, frame, k, knn, query_classes=None, dtype=np.float64, like=None):
    """The join of ``frame``; ``like`` is its pandas twin (for classes and row count)."""
    like = frame if like is None else like
    features = [c for c in like.columns if c != "y"]
    classes = sorted(pd.unique(like["y"]))
    table = join.prepare_table(engine, frame, "y", features, classes, dtype)
    return join.knn_join(
        engine, table, k=k, n_rows=len(like), n_features=len(features), dtype=dtype,
        n_classes=len(classes), knn=KnnConfig.coerce(knn), query_classes=query_classes,
    )


def brute_edges(X: np.ndarray, y: np.ndarray, k: int, query_classes=None, cells=None) -> pd.DataFrame:
    """The documented semantics by brute force: distinct rows with multiplicities,
    ``m − 1`` copies of itself for a row with ``m`` copies, ties by key.  With
    ``cells = (home, probes)`` (per row of ``X``), a query only sees the rows whose home
    is one of its probed cells: approximate mode's semantics."""
    X = np.asarray(X, np.float64)
    y = np.searchsorted(np.unique(y), y)  # class codes: position in the sorted classes
    keys = content_keys(X, y)
    uniq, first, mult = np.unique(keys, return_index=True, return_counts=True)
    P, cls = X[first], np.asarray(y)[first]
    out = []
    for qi in range(len(uniq)):
        if query_classes is not None and cls[qi] not in query_classes:
            continue
        d2 = ((P - P[qi]) ** 2).sum(1)
        if cells is not None:
            home, probes = cells
            d2[~np.isin(home[first], probes[first[qi]])] = np.inf
        eff = mult.copy()
        eff[qi] -= 1
        rank = 0
        for j in np.lexsort((uniq, d2)):
            for _ in range(eff[j] if np.isfinite(d2[j]) else 0):
                if rank < k:
                    out.append((uniq[qi], rank, uniq[j], int(cls[j]), np.sqrt(d2[j])))
                    rank += 1
    return pd.DataFrame(out, columns=["qkey", "rank", "nkey", "ncls", "distance"])


def _sorted(edges: pd.DataFrame) -> pd.DataFrame:
    cols = ["qkey", "rank", "nkey", "ncls", "distance"]
    e = edges[cols].sort_values(["qkey", "rank"]).reset_index(drop=True)
    return e.astype({"qkey": np.int64, "rank": np.int64, "nkey": np.int64, "ncls": np.int64})


# -- exact mode equals brute force --------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    n=st.integers(2, 90),
    d=st.integers(1, 3),
    k=st.integers(1, 4),
    nlist=st.sampled_from([1, 3, 9]),
    max_bucket=st.sampled_from([5, 100_000]),
)
def test_exact_join_is_brute_force_with_ties_and_duplicates(data, n, d, k, nlist, max_bucket):
    # Small integer grids: many equal distances and many duplicated rows.
    X = np.array(data.draw(st.lists(st.lists(st.integers(0, 3), min_size=d, max_size=d), min_size=n, max_size=n)), float)
    y = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    k = min(k, n - 1) or 1
    with mock.patch.object(join, "MAX_BUCKET_ROWS", max_bucket):
        edges, info = run_join(LocalEngine(), _frame(X, y), k, {"method": "exact", "nlist": nlist})
    pd.testing.assert_frame_equal(_sorted(edges), _sorted(brute_edges(X, y, k)), check_exact=True)


def test_exact_join_on_many_cells_with_split_cells():
    rng = np.random.default_rng(3)
    # A dense blob with most rows (a skewed cell) plus a spread-out background.
    X = np.vstack([rng.normal(0, 0.05, (2500, 5)), rng.normal(0, 3, (1500, 5))])
    y = rng.integers(0, 3, len(X))
    with mock.patch.object(join, "MAX_BUCKET_ROWS", 300):
        edges, info = run_join(LocalEngine(), _frame(X, y), 3, {"method": "exact", "nlist": 30}, query_classes=[0, 2])
    assert info.mode == "exact"
    assert info.max_cell_rows > 300 and info.n_buckets > info.n_cells  # split happened
    got, ref = _sorted(edges), _sorted(brute_edges(X, y, 3, query_classes=[0, 2]))
    pd.testing.assert_frame_equal(got.drop(columns="distance"), ref.drop(columns="distance"))
    np.testing.assert_allclose(got["distance"], ref["distance"], rtol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), k=st.integers(1, 5), nprobe=st.integers(1, 4), max_bucket=st.sampled_from([7, 100_000]))
def test_approximate_edges_are_well_formed(seed, k, nprobe, max_bucket):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 3)).round(1)  # rounding makes duplicates
    y = rng.integers(0, 2, len(X))
    knn = {"method": "ivf", "nlist": 12, "join_nprobe": nprobe}
    with mock.patch.object(join, "MAX_BUCKET_ROWS", max_bucket):  # 7: every cell is split
        edges, info = run_join(LocalEngine(), _frame(X, y), k, knn)
    if max_bucket < 100_000:  # splitting cells into buckets never changes the result
        assert info.n_buckets > info.n_cells
        whole, _ = run_join(LocalEngine(), _frame(X, y), k, knn)
        pd.testing.assert_frame_equal(_sorted(edges), _sorted(whole))
    assert info.mode == "approximate" and info.probes_per_query == nprobe
    e = _sorted(edges)
    keys, mult = np.unique(content_keys(X, y), return_counts=True)
    # A row alone in its only probed cell (nprobe=1, tiny cells) has no edge at all.
    assert set(e["qkey"]) <= set(keys)
    sizes = e.groupby("qkey")["rank"].agg(["count", "max"]).reindex(keys, fill_value=0)
    found = sizes[sizes["count"] > 0]
    assert (found["count"] == found["max"] + 1).all() and (sizes["count"] <= k).all()
    # Fewer than k only when the probed cells hold fewer than k other rows (tiny cells).
    assert (sizes["count"] == k).mean() >= 0.98
    assert (e.groupby("qkey")["distance"].diff().fillna(0) >= 0).all()
    # A row is its own neighbour only through its other copies, and at distance 0.
    own = e[e["qkey"] == e["nkey"]]
    assert (own["distance"] == 0).all()
    copies = own.groupby("qkey").size()
    assert (copies <= pd.Series(mult - 1, index=keys).reindex(copies.index)).all()
    # Every edge's distance is the true distance of the pair.
    lookup = dict(zip(content_keys(X, y), map(tuple, X)))
    a = np.array([lookup[q] for q in e["qkey"]])
    b = np.array([lookup[q] for q in e["nkey"]])
    np.testing.assert_allclose(e["distance"], np.sqrt(((a - b) ** 2).sum(1)), rtol=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), k=st.integers(1, 5), nprobe=st.integers(2, 6),
       nlist=st.sampled_from([6, 16, 40]), max_bucket=st.sampled_from([9, 100_000]))
def test_approximate_join_is_brute_force_over_the_probed_cells(seed, k, nprobe, nlist, max_bucket):
    """Approximate mode searches each query's nprobe nearest cells and prunes the cells
    whose bisector with its home lies beyond the k-th distance found so far: the edges
    are exactly brute force over the rows of the probed cells."""
    from distsmote.neighbors.cells import home_and_probes

    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(300, 3)), rng.normal(4, 1, size=(300, 3))]).round(1)  # duplicates, ties
    y = rng.integers(0, 2, len(X))
    plans = []

    def plan_cells(*args, **kwargs):
        plans.append(join_plan_cells(*args, **kwargs))
        return plans[-1]

    join_plan_cells = join.plan_cells
    with mock.patch.object(join, "MAX_BUCKET_ROWS", max_bucket), mock.patch.object(join, "plan_cells", plan_cells):
        edges, info = run_join(LocalEngine(), _frame(X, y), k, {"method": "ivf", "nlist": nlist, "join_nprobe": nprobe})
    assert info.mode == "approximate"
    home, _, probes = home_and_probes(plans[0][0], X, nprobe)
    ref = brute_edges(X, y, k, cells=(home, probes))
    pd.testing.assert_frame_equal(_sorted(edges), _sorted(ref), check_exact=False, rtol=1e-12)


# -- approximate mode at defaults ------------------------------------------------------------


def test_recall_at_defaults_on_clustered_data():
    X, y = make_classification(
        n_samples=40_000, n_features=16, n_informative=8, n_redundant=4, n_clusters_per_class=2,
        weights=[0.9], class_sep=1.0, flip_y=0.01, random_state=1,
    )
    X = X.astype(np.float32)
    edges, info = run_join(LocalEngine(), _frame(X, y), 1, "ivf", dtype=np.float32)
    assert info.mode == "approximate" and info.n_cells == 20  # N / 2048
    import faiss

    index = faiss.IndexFlatL2(16)
    index.add(X)
    _, cand = index.search(X, 6)
    d2 = ((X[cand].astype(np.float64) - X[:, None, :].astype(np.float64)) ** 2).sum(-1)
    d2[cand == np.arange(len(X))[:, None]] = np.inf
    keys = content_keys(X, y)
    truth = pd.Series(keys[cand[np.arange(len(X)), d2.argmin(1)]], index=keys)
    got = edges.set_index("qkey")["nkey"]
    recall = float((got.reindex(truth.index) == truth).mean())
    assert recall >= 0.99, recall


# -- the driver only sees small things ---------------------------------------------------------


class SpyEngine(LocalEngine):
    def __init__(self):
        self.collected: list[tuple[str, int]] = []

    def collect_small(self, frame, max_rows):
        out = super().collect_small(frame, max_rows)
        self.collected.append(("collect_small", len(out)))
        return out

    def aggregate(self, frame, by, aggs):
        out = super().aggregate(frame, by, aggs)
        self.collected.append(("aggregate", len(out)))
        return out

    def collect_rows(self, *a, **kw):  # pragma: no cover - must not be called
        raise AssertionError("the join must not collect rows")


@pytest.mark.parametrize("knn", ["ivf", "exact"])
def test_driver_gets_only_the_sample_and_cell_counts(knn):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30_000, 4))
    y = rng.integers(0, 2, len(X))
    engine = SpyEngine()
    _, info = run_join(engine, _frame(X, y), 2, knn)
    kinds = dict(engine.collected)
    # Approximate mode plans from the sample alone; exact mode also counts the cells.
    assert set(kinds) == ({"collect_small"} if knn == "ivf" else {"collect_small", "aggregate"})
    assert kinds["collect_small"] == info.sample_rows
    if knn == "ivf":  # exact mode samples up to 100 000 rows to bound distances
        assert info.sample_rows <= 0.6 * len(X)
    assert kinds.get("aggregate", 0) <= info.n_cells


# -- other engines ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def join_frame():
    rng = np.random.default_rng(11)
    X = np.vstack([rng.normal(c, 1.0, (400, 4)) for c in (0, 4, 8)]).astype(np.float32)
    X = np.vstack([X, X[:30]])  # duplicates
    y = rng.integers(0, 3, len(X))
    return _frame(X, y)


KNN = {"exact": {"method": "exact", "nlist": 10}, "ivf": {"method": "ivf", "nlist": 10, "join_nprobe": 2}}


def _edges_of(engine, frame, knn, like):
    edges, _ = run_join(engine, frame, 3, KNN[knn], query_classes=[0, 1], dtype=np.float32, like=like)
    return edges


@pytest.mark.parametrize("knn", sorted(KNN))
def test_dask_edges_match_in_process(dask_client, join_frame, knn):
    import dask.dataframe as dd

    from distsmote.engines.dask import DaskEngine

    reference = _sorted(_edges_of(LocalEngine(), join_frame, knn, join_frame))
    for parts in (1, 5):
        ddf = dd.from_pandas(join_frame.sample(frac=1.0, random_state=parts), npartitions=parts)
        got = _edges_of(DaskEngine(), ddf, knn, join_frame)
        assert isinstance(got, dd.DataFrame)
        pd.testing.assert_frame_equal(_sorted(got.compute()), reference, check_exact=True)


@pytest.mark.parametrize("knn", ["ivf"])  # exact mode equals brute force on any engine
def test_spark_edges_match_in_process(spark, join_frame, knn):
    from distsmote.engines.spark import SparkEngine

    reference = _sorted(_edges_of(LocalEngine(), join_frame, knn, join_frame))
    sdf = spark.createDataFrame(join_frame).repartition(3)
    got = _edges_of(SparkEngine(spark), sdf, knn, join_frame)
    pd.testing.assert_frame_equal(_sorted(got.toPandas()), reference, check_exact=True)


# -- the two-level quantizer ------------------------------------------------------------------


def test_two_level_quantizer_probes_are_near_and_batch_independent():
    from distsmote.neighbors.cells import FLAT_MAX_CELLS, home_and_probes, train_quantizer

    X, _ = make_classification(n_samples=30_000, n_features=8, n_informative=6, n_clusters_per_class=3, random_state=2)
    q = train_quantizer(X[:20_000], 600, 10, 32, seed=0)
    assert q.n_cells > FLAT_MAX_CELLS and q.coarse is not None
    assert len(q.parent) == q.n_cells and set(np.unique(q.parent)) <= set(range(len(q.coarse)))
    home, _, probes = home_and_probes(q, X, 8)
    assert (probes[:, 0] == home).all() and (probes >= 0).all()
    assert all(len(set(row)) == 8 for row in probes[:500])
    # Same rows in other batches (and in another order) get the same cells.
    perm = np.random.default_rng(0).permutation(len(X))
    parts = [home_and_probes(q, X[perm[s : s + 777]], 8)[2] for s in range(0, len(X), 777)]
    np.testing.assert_array_equal(np.concatenate(parts), probes[perm])
    # The probes are (nearly always) the 8 nearest centroids.
    d2 = ((X[:2000, None, :] - q.center - q.centroids[None]) ** 2).sum(-1)
    true = np.argsort(d2, axis=1, kind="stable")[:, :8]
    overlap = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(true, probes[:2000])])
    assert overlap >= 0.97, overlap


def test_join_with_two_level_quantizer_is_deterministic_and_finds_neighbours():
    X, y = make_classification(n_samples=12_000, n_features=6, n_informative=5, n_redundant=0, random_state=4)
    frame = _frame(X, y)
    knn = {"method": "ivf", "nlist": 300, "join_nprobe": 8}
    edges, info = run_join(LocalEngine(), frame, 2, knn)
    assert info.n_cells == 300
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    again, _ = run_join(LocalEngine(), shuffled, 2, knn)
    pd.testing.assert_frame_equal(_sorted(edges), _sorted(again))
    from sklearn.neighbors import NearestNeighbors

    # make_classification rows are distinct: the true 2nd-neighbour distance bounds a hit.
    dist, _ = NearestNeighbors(n_neighbors=3).fit(X).kneighbors(X)
    kth = pd.Series(dist[:, 2], index=content_keys(X, np.searchsorted(np.unique(y), y)))
    got = _sorted(edges)
    recall = float((got["distance"].to_numpy() <= kth.reindex(got["qkey"]).to_numpy() * (1 + 1e-12)).mean())
    assert recall >= 0.95, recall


@pytest.mark.parametrize("nlist, nprobe, k", [(40, 3, 4), (12, 1, 1), (25, 8, 6)])
def test_broadcast_query_join_equals_shuffle_join(nlist, nprobe, k):
    """Queries held on the driver are broadcast; the edges are the shuffle join's."""
    from distsmote._plan import canonical_order
    from distsmote.engines.local import LocalEngine
    from distsmote.neighbors.all_classes import driver_queries, neighbours_over_all_classes
    from distsmote.neighbors.join import edge_meta

    rng = np.random.default_rng(nlist)
    X = np.round(rng.normal(size=(6000, 5)), 1)  # ties
    y = (rng.random(6000) < 0.1).astype(np.int64)
    X, y = np.vstack([X, X[:200]]), np.r_[y, y[:200]]  # duplicates, some across classes
    frame = pd.DataFrame(X, columns=[f"a{i}" for i in range(5)]).assign(y=y)
    xq = X[y == 1][canonical_order(X[y == 1])]
    kw = dict(
        label="y", features=[f"a{i}" for i in range(5)], classes=[0, 1], dtype=np.float64,
        n_rows=len(frame), k=k, query_classes=[1],
        knn=KnnConfig(method="ivf", nlist=nlist, join_nprobe=nprobe),
        finish=lambda edges, args: edges, finish_meta=edge_meta(),
    )
    shuffle = neighbours_over_all_classes(LocalEngine(), frame, **kw)
    broadcast = neighbours_over_all_classes(LocalEngine(), frame, queries=driver_queries([xq], [1]), **kw)
    assert shuffle.info.mode == "approximate" and "broadcast" in broadcast.info.mode
    a, b = (h.result.sort_values(["qkey", "rank"]).reset_index(drop=True) for h in (shuffle, broadcast))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("n_cells", [40, 300])  # flat and two-level quantizers
def test_home_only_search_picks_the_same_cell(n_cells):
    """Rows that are only data get their home by a cheaper search: the same cell."""
    from distsmote.neighbors.cells import home_and_probes, train_quantizer

    rng = np.random.default_rng(n_cells)
    x = np.round(rng.normal(size=(20_000, 4)), 2)
    q = train_quantizer(x[:12_000], n_cells, 10, 40, 0)
    home, home_d2, probes = home_and_probes(q, x, 1)
    full = home_and_probes(q, x, 3)
    np.testing.assert_array_equal(home, full[0])
    np.testing.assert_array_equal(home_d2, full[1])
    np.testing.assert_array_equal(probes[:, 0], home)
    # Batch-independent: the same cells row by row as in one batch.
    np.testing.assert_array_equal(home_and_probes(q, x[:500], 1)[0], home[:500])


@pytest.mark.parametrize("grid", [True, False])
def test_probes_are_the_float64_ranking_with_ties_by_cell(grid):
    """Rows whose float32 order is clear skip the float64 re-rank; every row still gets
    its nearest cells by exact distance, ties by cell id.  ``grid``: a flat quantizer on
    the integer grid, whose grid rows are equidistant from many cells; otherwise a
    trained two-level quantizer."""
    import itertools

    from distsmote.neighbors.cells import Quantizer, home_and_probes, train_quantizer

    rng = np.random.default_rng(1)
    if grid:
        cents = np.array(list(itertools.product([-1.0, 0.0, 1.0], repeat=4)))
        q = Quantizer(center=np.zeros(4), centroids=cents, norms2=(cents**2).sum(1))
        x = np.vstack([rng.normal(size=(4_000, 4)), rng.integers(-1, 2, size=(2_000, 4))]).astype(float)
    else:
        x = rng.normal(size=(20_000, 4))
        q = train_quantizer(x[:12_000], 400, 10, 40, 0)
        assert q.coarse is not None
    home, _, probes = home_and_probes(q, x, 8)
    d2 = ((x - q.center)[:, None, :] - q.centroids[None]) ** 2
    d2 = d2.sum(-1)
    ids = np.broadcast_to(np.arange(q.n_cells), d2.shape)
    ref = np.take_along_axis(ids, np.lexsort((ids, d2), axis=-1)[:, :8], axis=1)
    np.testing.assert_array_equal(home, probes[:, 0])
    if grid:  # every cell is a candidate: the global ranking, ties by id
        np.testing.assert_array_equal(probes, ref)
        ties = (np.diff(np.sort(d2, axis=1)[:, :9], axis=1) == 0).any(1)
        assert ties.sum() > 1_000  # the grid rows exercise the tie rule
    else:  # candidates come from nearby coarse cells: nearly always the global ranking,
        assert (probes == ref).all(1).mean() >= 0.97
        # and always ordered by exact distance
        assert (np.diff(np.take_along_axis(d2, probes, axis=1), axis=1) >= 0).all()


@pytest.mark.parametrize("knn", [{"method": "exact", "nlist": 9}, {"method": "ivf", "nlist": 30, "join_nprobe": 4}])
def test_search_in_query_chunks_gives_the_same_edges(knn):
    """A search task works through its queries in chunks to bound its memory; the
    edges do not depend on the chunk size."""
    from distsmote.neighbors import bucket_search

    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(size=(1500, 3)), rng.normal(3, 1, size=(1500, 3))]).round(1)
    y = rng.integers(0, 3, len(X))
    whole, _ = run_join(LocalEngine(), _frame(X, y), 3, knn)
    with mock.patch.object(bucket_search, "QUERY_CHUNK", 7):
        chunked, _ = run_join(LocalEngine(), _frame(X, y), 3, knn)
    pd.testing.assert_frame_equal(_sorted(chunked), _sorted(whole), check_exact=True)


@pytest.mark.parametrize("knn", ["exact", "ivf"])
def test_broadcast_join_on_dask_partitions_with_duplicates(dask_client, knn):
    """Copies of a row spread over partitions are added up in the merge; the edges do
    not depend on the partitioning, and exact mode is brute force (ties by key)."""
    import dask.dataframe as dd

    from distsmote.engines.dask import DaskEngine
    from distsmote.neighbors.all_classes import driver_queries, neighbours_over_all_classes
    from distsmote.neighbors.join import edge_meta

    rng = np.random.default_rng(7)
    X = rng.integers(0, 4, size=(700, 3)).astype(np.float64)  # a small grid: ties everywhere
    y = np.where(rng.random(700) < 0.12, 1, rng.integers(0, 2, 700) * 2)  # classes 0, 1, 2
    X, y = np.vstack([X, X[:200]]), np.r_[y, y[:200]]  # duplicates
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=y)
    config = {"method": "exact"} if knn == "exact" else {"method": "ivf", "nlist": 8, "join_nprobe": 2}
    kw = dict(
        label="y", features=["a", "b", "c"], classes=[0, 1, 2], dtype=np.float64, n_rows=len(frame), k=4,
        query_classes=[1], knn=KnnConfig(**config), finish=lambda edges, args: edges, finish_meta=edge_meta(),
        queries=driver_queries([X[y == 1]], [1]),
    )
    local = neighbours_over_all_classes(LocalEngine(), frame, **kw)
    assert "broadcast" in local.info.mode
    reference = _sorted(local.result)
    if knn == "exact":
        pd.testing.assert_frame_equal(reference, _sorted(brute_edges(X, y, 4, query_classes=[1])), check_exact=True)
    for parts in (1, 4):
        ddf = dd.from_pandas(frame.sample(frac=1.0, random_state=parts), npartitions=parts)
        got = neighbours_over_all_classes(DaskEngine(), ddf, **kw).result.compute()
        pd.testing.assert_frame_equal(_sorted(got), reference, check_exact=True)


def test_sample_made_from_the_frame_is_the_tables_sample():
    """The planning sample made from the input frame equals filtering the join table."""
    from distsmote.neighbors.join_plan import sample_table
    from distsmote.neighbors.table import prepare_table, table_source

    rng = np.random.default_rng(4)
    X = np.round(rng.normal(size=(5000, 3)), 1).astype(np.float32)  # duplicates
    y = rng.integers(0, 3, len(X))
    frame = _frame(np.vstack([X, X[:500]]), np.r_[y, y[:500]])
    args = (frame, "y", ["x0", "x1", "x2"], [0, 1, 2], np.float32)
    engine = LocalEngine()
    table = prepare_table(engine, *args)
    plain = sample_table(engine, table, len(frame), 800, 3, np.float32)
    direct = sample_table(engine, table, len(frame), 800, 3, np.float32, table_source(*args))
    assert 500 < len(plain) < 1200 and (plain["__mult"] > 1).any()
    pd.testing.assert_frame_equal(direct, plain)


@pytest.mark.parametrize("exact", [True, False])
def test_query_bounds_cover_every_querys_neighbours(exact):
    """The broadcast join drops rows beyond each query's bound before the merge: the
    bound is never below the (k+1)-th nearest copy among the rows the query probes, and
    it is finite where k + 1 query rows lie in its probed cells."""
    from distsmote.neighbors.cells import Quantizer, home_and_probes, train_quantizer
    from distsmote.neighbors.query_join import query_bounds

    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(3000, 4)), 1)  # ties and duplicates
    xq = np.unique(x[:400], axis=0)  # distinct query rows, a subset of the table
    k = 4
    if exact:
        q = Quantizer(np.zeros(4), np.zeros((1, 4)), np.zeros(1))
    else:
        q = train_quantizer(x, 30, 10, 30, 0)
    _, _, probes = home_and_probes(q, xq, 1 if exact else 3)
    home = home_and_probes(q, x, 1)[0]
    bound = query_bounds(xq, probes[:, 0], k)
    d2 = ((xq[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    d2[~(home[None, None, :] == probes[:, :, None]).any(1)] = np.inf  # rows in unprobed cells
    kth = np.sort(d2, axis=1)[:, k]  # the (k+1)-th copy, the query's own copy included
    assert np.isfinite(bound).mean() > 0.9
    assert (bound >= kth).all()
