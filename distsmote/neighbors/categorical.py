"""Neighbours with categorical features, without a one-hot of the data.

SMOTENC (imbalanced-learn's distance)
-------------------------------------
imbalanced-learn one-hot encodes each categorical feature with the value
``median_std / √2``, where ``median_std`` is the median of the class's continuous
standard deviations (``ddof=0``).  Two rows that differ in a categorical feature differ
in two one-hot columns, so the squared Euclidean distance is::

    d²(a, b) = Σ_continuous (a_j − b_j)²  +  median_std² · (categorical features that differ)

distsmote computes exactly this without the one-hot of the table:

* features with at most :data:`LOW_CARDINALITY` categories in the class are one-hot
  encoded at ``median_std / √2`` in the search vectors (a few columns per row);
* for the others (``H`` *high-cardinality* features) the search runs once per subset
  ``S`` of them, among the rows that share the query's values on ``S`` (for ``S = ∅``
  that is the whole class), with the high-cardinality features left out of the vector.
  A row whose matching high-cardinality features are exactly ``S`` is found by the
  search over ``S`` unless ``k`` rows that match on at least ``S`` are at least as
  close in the search vector, and those are then at least as close in ``d²`` too.  So
  the union of the ``2^H`` candidate lists holds the exact ``k`` nearest rows, which an
  exact re-rank in float64 picks, ties broken by canonical position.

Memory is proportional to the class's rows: a 1,000-category feature costs one int32
code per row, never rows × categories.

SMOTEN (value difference metric)
--------------------------------
imbalanced-learn's ``ValueDifferenceMetric(k=1, r=2)``: with ``P(c | v)`` the share of
rows with value ``v`` (over *all* rows) that belong to class ``c``, the distance between
two rows is ``Σ_features (Σ_c |P(c | a_f) − P(c | b_f)|)²``.  A table of value-to-value
distances per feature (categories² entries) turns every pair into ``F`` lookups.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.index import build_index, search_neighbors

#: Categorical features with at most this many categories (in the class) are one-hot
#: encoded in the search vectors; larger ones are searched by matching subsets.
LOW_CARDINALITY = 16
#: Most high-cardinality features (2^H searches); beyond, declare some passthrough.
MAX_HIGH_CARDINALITY = 6
#: Groups up to this many rows are searched by float64 brute force.
BRUTE_ROWS = 4096
#: Query rows per block of the exact re-rank (bounds its memory).
BLOCK = 32_768


def median_std(x: np.ndarray) -> float:
    """imbalanced-learn's ``median_std_``: the median continuous std (``ddof=0``)."""
    return float(np.median(np.sqrt(np.var(np.asarray(x, dtype=np.float64), axis=0))))


def nc_distances(x: np.ndarray, codes: np.ndarray, weight: float, q: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Exact SMOTENC squared distances of rows ``q`` to ``cand`` (q, c); ``-1`` → inf.

    Float64, features summed in a fixed order, so a pair's value never depends on the
    batch it is computed in.
    """
    valid = cand >= 0
    safe = np.where(valid, cand, 0)
    d = np.zeros(cand.shape)
    for j in range(x.shape[1]):
        d += (x[safe, j] - x[q, j][:, None]) ** 2
    if codes.shape[1]:
        mismatch = np.zeros(cand.shape)
        for j in range(codes.shape[1]):
            mismatch += codes[safe, j] != codes[q, j][:, None]
        d += weight * mismatch
    d[~valid] = np.inf
    return d


def _pick(d: np.ndarray, cand: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` candidates of each row with the smallest (distance, id), self and
    repeats dropped; ``-1`` pads."""
    big = np.iinfo(np.int64).max
    d = np.where(cand == q[:, None], np.inf, d)
    ids = np.where(np.isfinite(d), cand, big)
    order = np.lexsort((ids, d), axis=-1)
    ids = np.take_along_axis(ids, order, axis=1)
    repeat = np.zeros(ids.shape, bool)
    repeat[:, 1:] = ids[:, 1:] == ids[:, :-1]
    ids = np.where(repeat, big, ids)
    d = np.where(repeat, np.inf, np.take_along_axis(d, order, axis=1))
    order = np.lexsort((ids, d), axis=-1)[:, :k]
    out = np.take_along_axis(ids, order, axis=1)
    out[out == big] = -1
    if out.shape[1] < k:
        out = np.pad(out, ((0, 0), (0, k - out.shape[1])), constant_values=-1)
    return out


def _search_group(points: np.ndarray, members: np.ndarray, queries: np.ndarray, k: int,
                  knn: KnnConfig, seed: int, threads: int) -> np.ndarray:
    """Candidate ids (global) of ``queries`` among ``members`` by the search vectors."""
    kk = min(k, len(members) - 1)
    if kk <= 0:
        return np.full((len(queries), 1), -1, np.int64)
    local = np.searchsorted(members, queries)
    sub = points[members]
    if len(members) <= BRUTE_ROWS:
        out = np.empty((len(queries), kk), np.int64)
        step = max(1, 4_000_000 // max(1, sub.size))
        for a in range(0, len(local), step):
            lq = local[a:a + step]
            d = np.zeros((len(lq), len(members)))
            for j in range(sub.shape[1]):
                d += (sub[None, :, j] - sub[lq, j][:, None]) ** 2
            d[np.arange(len(lq)), lq] = np.inf
            ids = np.broadcast_to(np.arange(len(members)), d.shape)
            out[a:a + step] = np.lexsort((ids, d), axis=-1)[:, :kk]
        return members[out]
    config = knn.resolve(len(members))
    index = build_index(sub.astype(np.float32), config, seed)
    nbrs = search_neighbors(index, sub, local, kk, knn.rerank_extra, threads)
    return np.where(nbrs >= 0, members[np.maximum(nbrs, 0)], -1)


def smotenc_neighbours(
    x: np.ndarray,
    codes: np.ndarray,
    query_ids: np.ndarray,
    k: int,
    knn: KnnConfig,
    seed: int,
    threads: int = 1,
) -> tuple[np.ndarray, float]:
    """The ``k`` nearest other rows of ``query_ids`` under SMOTENC's distance.

    Parameters
    ----------
    x : ndarray (n, d_cont), float64
        Continuous features, canonical order.
    codes : ndarray (n, d_cat), int
        Categorical codes, canonical order.
    query_ids : ndarray of int
        Rows whose neighbours are wanted (sorted).
    k : int
    knn : KnnConfig
        Search of each group (exact: imbalanced-learn's neighbours).

    Returns
    -------
    neighbours : ndarray (len(query_ids), k), int64
        Ordered by (distance, canonical position); ``-1`` pads a short list.
    median_std : float
    """
    m = median_std(x) if x.shape[1] else 0.0
    weight = m * m
    n = len(x)
    card = codes.max(axis=0) + 1 if len(codes) else np.zeros(codes.shape[1], int)
    high = [j for j in np.argsort(-card, kind="stable") if card[j] > LOW_CARDINALITY]
    if len(high) > MAX_HIGH_CARDINALITY:
        raise ValueError(
            f"SMOTENC searches 2^H subsets for the H categorical features with more than "
            f"{LOW_CARDINALITY} categories; H={len(high)} exceeds {MAX_HIGH_CARDINALITY}. "
            "Declare some of them passthrough."
        )
    low = [j for j in range(codes.shape[1]) if j not in high]
    scale = m / np.sqrt(2.0)
    blocks = [x]
    for j in low:
        onehot = np.zeros((n, int(card[j])))
        onehot[np.arange(n), codes[:, j]] = scale
        blocks.append(onehot)
    points = np.ascontiguousarray(np.hstack(blocks) if blocks else np.zeros((n, 0)))
    if points.shape[1] == 0:
        points = np.zeros((n, 1))
    query_ids = np.asarray(query_ids, dtype=np.int64)
    lists = []
    for size in range(len(high) + 1):
        for subset in combinations(high, size):
            lists.append(_subset_candidates(points, codes, list(subset), query_ids, k, knn, seed, threads))
    cand = np.concatenate(lists, axis=1) if lists else np.full((len(query_ids), 1), -1, np.int64)
    out = np.empty((len(query_ids), k), np.int64)
    for a in range(0, len(query_ids), BLOCK):
        q = query_ids[a:a + BLOCK]
        c = cand[a:a + BLOCK]
        out[a:a + BLOCK] = _pick(nc_distances(x, codes, weight, q, c), c, q, k)
    return out, m


def _subset_candidates(points, codes, subset, query_ids, k, knn, seed, threads) -> np.ndarray:
    n = len(points)
    if not subset:
        return _search_group(points, np.arange(n), query_ids, k, knn, seed, threads)
    keys = codes[:, subset]
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.ravel()
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(group.max() + 2))
    out = np.full((len(query_ids), k), -1, np.int64)
    qgroup = group[query_ids]
    qorder = np.argsort(qgroup, kind="stable")
    qbounds = np.searchsorted(qgroup[qorder], np.arange(group.max() + 2))
    for g in np.unique(qgroup):
        members = order[bounds[g]:bounds[g + 1]]  # sorted: the stable sort keeps row order
        where = qorder[qbounds[g]:qbounds[g + 1]]
        found = _search_group(points, members, query_ids[where], k, knn, seed, threads)
        out[where, :found.shape[1]] = found
    return out


# ------------------------------------------------------------------------- SMOTEN


def vdm_tables(proba: list[np.ndarray]) -> list[np.ndarray]:
    """Per feature, the value-to-value distance ``(Σ_c |P(c|a) − P(c|b)|)²``."""
    return [np.abs(p[:, None, :] - p[None, :, :]).sum(-1) ** 2 for p in proba]


def vdm_neighbours(codes: np.ndarray, tables: list[np.ndarray], query_ids: np.ndarray, k: int) -> np.ndarray:
    """Each query row itself, then its ``k`` nearest other rows under the VDM.

    Float64 brute force in blocks (memory: a block of queries × the class's rows);
    ties broken by canonical position.
    """
    n = len(codes)
    query_ids = np.asarray(query_ids, dtype=np.int64)
    out = np.empty((len(query_ids), k + 1), np.int64)
    out[:, 0] = query_ids
    step = max(1, 8_000_000 // max(1, n))
    for a in range(0, len(query_ids), step):
        q = query_ids[a:a + step]
        d = np.zeros((len(q), n))
        for j, table in enumerate(tables):
            d += table[codes[q, j]][:, codes[:, j]]
        d[np.arange(len(q)), q] = np.inf
        kk = min(k, n - 1)
        if kk > 0:
            # Every row within the k-th distance, ties included, then (distance, id).
            kth = np.partition(d, kk - 1, axis=1)[:, kk - 1]
            for i in range(len(q)):
                c = np.flatnonzero(d[i] <= kth[i])
                out[a + i, 1:1 + kk] = c[np.lexsort((c, d[i, c]))][:kk]
        if kk < k:
            out[a:a + step, 1 + kk:] = -1
    return out


__all__ = ["median_std", "nc_distances", "smotenc_neighbours", "vdm_neighbours", "vdm_tables"]
