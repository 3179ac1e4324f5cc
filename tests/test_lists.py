"""The SMOTE family's IVF index (``distsmote.neighbors.lists``): each query's ``k``
nearest other rows among the rows of its ``nprobe`` nearest lists, exactly (float64
distances, ties by id), whatever the batch it is searched in."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.index import build_index, search_neighbors
from distsmote.neighbors.lists import (
    ListIndex,
    build_list_index,
    list_candidates,
    list_table,
    probe_lists,
    search_lists,
)


def _in_lists(index: ListIndex, x: np.ndarray, q: int, k: int) -> np.ndarray:
    """The reference: float64 brute force over the rows of the query's probed lists
    (its nearest centroids in float64), ties by id."""
    c = index.centroids.astype(np.float64)
    near = np.argsort(((c - x[q].astype(np.float64)) ** 2).sum(1), kind="stable")[: index.nprobe]
    rows = np.flatnonzero(np.isin(index.lists, near) & (np.arange(len(x)) != q))
    d2 = ((x[rows].astype(np.float64) - x[q].astype(np.float64)) ** 2).sum(1)
    best = rows[np.lexsort((rows, d2))[:k]]
    return np.pad(best, (0, k - len(best)), constant_values=-1)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 400),
    d=st.integers(1, 8),
    nlist=st.integers(1, 12),
    nprobe=st.integers(1, 14),
    k=st.integers(1, 7),
    extra=st.integers(0, 3),
    grid=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_the_k_nearest_of_the_probed_lists(n, d, nlist, nprobe, k, extra, grid, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, size=(n, d)).astype(np.float32)
    if grid:  # integer features: many exact ties and duplicate rows
        x = np.round(x / 2).astype(np.float32)
    centroids = x[rng.choice(n, size=min(nlist, n), replace=False)] + rng.normal(0, 0.1, size=(min(nlist, n), d))
    index = build_list_index(x, centroids.astype(np.float32), nprobe)
    queries = np.sort(rng.choice(n, size=min(n, 40), replace=False))
    k = min(k, n - 1)
    got = search_lists(index, x, queries, k, extra)
    for row, q in zip(got, queries):
        want = _in_lists(index, x, int(q), k)
        # The probed lists are the nearest centroids in float32; where two centroids tie
        # at the last probe, either may be probed, so compare only clear cases.
        c = index.centroids.astype(np.float64)
        dc = np.sort(((c - x[q].astype(np.float64)) ** 2).sum(1))
        if index.nprobe < len(dc) and dc[index.nprobe] - dc[index.nprobe - 1] < 1e-4 * (1 + dc[index.nprobe]):
            continue
        assert np.array_equal(row, want), (q, row, want)


def test_a_query_gets_the_same_neighbours_in_any_batch_and_dtype():
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 4, size=(16, 8))
    x = (centres[rng.integers(0, 16, 20_000)] + rng.normal(0, 1, size=(20_000, 8))).astype(np.float32)
    x[5000:5100] = x[4000]  # a hundred copies of one row: ties beyond the candidates
    index = build_index(x, KnnConfig(method="ivf", nlist=100, nprobe=6), seed=0)
    assert isinstance(index, ListIndex)
    queries = np.arange(3000, 6000)
    whole = search_neighbors(index, x, queries, 5, 8, 1)
    pieces = np.concatenate([search_neighbors(index, x, queries[a:a + 257], 5, 8, 1)
                             for a in range(0, len(queries), 257)])
    wide = search_neighbors(index, x.astype(np.float64), queries, 5, 8, 1)
    assert np.array_equal(whole, pieces) and np.array_equal(whole, wide)
    # The copies' neighbours are other copies, lowest ids first.
    assert np.array_equal(whole[1000], [5000, 5001, 5002, 5003, 5004])
    assert np.array_equal(whole[2000], [4000, 5001, 5002, 5003, 5004])


def test_probes_are_the_nearest_lists_and_no_more_than_there_are():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3)).astype(np.float32)
    index = build_list_index(x, x[:7], nprobe=24)
    probes = probe_lists(index, x[:50])
    assert probes.shape == (50, 7)
    d2 = ((x[:50, None, :] - x[None, :7, :]) ** 2).sum(-1)
    assert np.array_equal(np.sort(probes, 1), np.tile(np.arange(7), (50, 1)))
    assert (np.take_along_axis(d2, probes, 1)[:, :-1] <= np.take_along_axis(d2, probes, 1)[:, 1:] + 1e-6).all()
    # Every row is in its nearest list.
    assert np.array_equal(index.lists, ((x[:, None, :] - x[None, :7, :]) ** 2).sum(-1).argmin(1))


def test_a_limit_keeps_the_nearest_rows_within_it_and_no_others():
    """The broadcast-query join passes each query's bound as a limit: rows beyond it by
    more than twice the rounding bound are never kept, and the nearest rows within it
    are."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    centroids = x[:40].copy()
    lists = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(-1).argmin(1)
    table = list_table(x, lists, centroids)
    q = rng.normal(size=(60, 6)).astype(np.float32)
    d2 = ((q[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)
    limit = np.quantile(d2, rng.uniform(0.0, 0.02, size=60), axis=1).diagonal()
    probes = np.tile(np.arange(40), (60, 1))
    for m in (4, 200):
        dist, ids, eta = list_candidates(table, centroids, q, probes, m, limit=limit)
        for i in range(60):
            inside = np.flatnonzero(d2[i] <= limit[i])
            outside = np.flatnonzero(d2[i] > limit[i] + 3.0 * eta[i])
            got = ids[i][ids[i] >= 0]
            assert not np.isin(got, outside).any()
            want = inside[np.argsort(d2[i, inside], kind="stable")][:m]
            if len(inside) <= m:
                assert np.isin(want, got).all()
            else:
                assert np.array_equal(np.sort(got[: len(want)]), np.sort(want)) or \
                    np.abs(np.sort(d2[i, got]) - np.sort(d2[i, want])).max() < 1e-4
            assert (np.abs(dist[i][ids[i] >= 0] - d2[i, got]) <= eta[i]).all()


def test_no_queries_give_no_rows():
    """A generation task whose seeds have no children searches nothing."""
    x = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
    index = build_index(x, KnnConfig(method="ivf", nlist=8, nprobe=3), seed=0)
    assert search_neighbors(index, x, np.array([], np.int64), 5, 8, 1).shape == (0, 5)


def test_float64_rows_far_from_the_origin_get_their_exact_neighbours_in_the_lists():
    """Rows of float64 values that float32 cannot hold apart in absolute coordinates
    (1000 + 0.01·u): centred on their list before rounding, the neighbours are still
    the exact k nearest of the probed lists."""
    rng = np.random.default_rng(0)
    x = 1000.0 + rng.uniform(0, 1e-2, size=(3000, 2))
    x32 = x.astype(np.float32)
    index = build_list_index(x32, x32[rng.choice(3000, 8, replace=False)], 3)
    for extra in (0, 8):
        got = search_lists(index, x, np.arange(3000), 5, extra)
        for q in range(0, 3000, 7):
            assert np.array_equal(got[q], _in_lists(index, x, q, 5)), q


def test_broadcast_query_join_keeps_neighbours_far_from_the_cells_centroids():
    """Rows near the origin, cells centred far from them (±30): distances computed in
    each cell's frame round by more than in the origin's, and no neighbour within a
    query's bound may be lost to it."""
    import pandas as pd

    from distsmote.neighbors.cells import Quantizer
    from distsmote.neighbors.query_join import (
        _QueryPayload,
        _search_partition,
        query_bounds,
    )
    from distsmote.neighbors.table import CLS, KEY, MULT, feature_names

    centroids = np.array([[-30.0, 0.0], [30.0, 0.0]])
    quantizer = Quantizer(np.zeros(2), centroids, (centroids ** 2).sum(1))
    missing = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        n, k = 60, 3
        x = np.c_[rng.uniform(0, 1.0, n), rng.uniform(-1.0, 1.0, n)]
        keys = np.arange(n)
        probes = np.tile([1, 0], (n, 1))
        payload = _QueryPayload(2, quantizer, 2, k, np.array([True]), keys, np.zeros(n, np.int32), x, probes,
                                np.arange(n), query_bounds(x, probes[:, 0], k))
        found = pd.concat([
            _search_partition(pd.DataFrame({KEY: keys[part], CLS: np.zeros(len(part), np.int32),
                                            MULT: np.ones(len(part), np.int64),
                                            **dict(zip(feature_names(2), x[part].T))}), payload, 1)
            for part in (np.arange(0, 30), np.arange(30, 60))
        ])
        d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
        for q in range(n):
            want = set(np.lexsort((keys, d2[q]))[: k + 1])
            missing += not want <= set(found.loc[found.qkey == q, "nkey"])
    assert missing == 0
