"""The per-class index of the SMOTE family: build, ship and search with exact re-ranking.

An index is built once on the driver from rows in canonical order (so ids are canonical
row numbers).  The exact and HNSW indexes are FAISS's, shipped as
:class:`~distsmote.neighbors.faiss_ops.ShippedIndex` bytes and deserialized at most once
per worker process; the IVF index is a :class:`~distsmote.neighbors.lists.ListIndex`
(FAISS's k-means centroids and each row's list) searched with BLAS
(:mod:`distsmote.neighbors.lists`).  Search results are re-ranked with exact float64
distances and ties are broken by id, so the neighbours chosen do not depend on BLAS
code paths or on thread counts.
"""

from __future__ import annotations

import numpy as np

from distsmote._random import draw_bits, stream_key
from distsmote.neighbors import faiss_ops
from distsmote.neighbors.exact import full_d2, pair_d2
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.faiss_ops import ShippedIndex, load_index, set_threads
from distsmote.neighbors.lists import ListIndex, build_list_index, search_lists

#: The index a class plan carries to its workers.
SearchIndex = ShippedIndex | ListIndex


def _train_sample(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A deterministic sample of ``n`` rows: the ``n`` smallest hashes of canonical ids."""
    if n >= len(x):
        return x
    bits = draw_bits(stream_key(seed, "ivf-sample"), np.arange(len(x)))
    pick = np.sort(np.argpartition(bits, n)[:n])
    return x[pick]


def build_index(x: np.ndarray, config: KnnConfig, seed: int) -> SearchIndex:
    """Build an index over ``x`` (float32, canonical order; id = row number).

    Parameters
    ----------
    x : ndarray of shape (n, d), float32
        Rows in canonical order.
    config : KnnConfig
        A resolved config (``method`` is not ``"auto"``).
    seed : int
        Seed for the k-means sample and initialisation.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if config.method == "ivf":
        nlist = int(config.nlist or 1)
        sample = _train_sample(x, nlist * config.train_rows_per_cell, seed)
        centroids = faiss_ops.kmeans(
            sample, nlist, config.kmeans_iter, seed, max_points_per_centroid=max(config.train_rows_per_cell, 39)
        )
        return build_list_index(x, centroids, config.nprobe)
    if config.method == "exact":
        index = faiss_ops.flat_index(x)
    elif config.method == "hnsw":
        index = faiss_ops.hnsw(x, config.hnsw_m, config.hnsw_ef_construction)
    else:  # pragma: no cover - resolve() never returns other methods
        raise ValueError(f"Unresolved knn method {config.method!r}")
    return faiss_ops.ship(index, config.method, config.nprobe, config.hnsw_ef_search)


def exact_rerank(
    points: np.ndarray,
    query_ids: np.ndarray,
    candidates: np.ndarray,
    k: int,
) -> np.ndarray:
    """Choose the ``k`` nearest *other* rows among candidates, with exact distances.

    Parameters
    ----------
    points : ndarray of shape (n, d)
        All indexed rows, canonical order (distances are float64 whatever the dtype).
    query_ids : ndarray of shape (q,)
        Canonical ids of the query rows (their own id is dropped from the candidates).
    candidates : ndarray of shape (q, c)
        Candidate ids from FAISS; ``-1`` marks a missing candidate.
    k : int
        Neighbours wanted.

    Returns
    -------
    ndarray of shape (q, k), int64
        Neighbour ids ordered by (exact squared distance, id); ``-1`` where fewer than
        ``k`` valid candidates were found.
    """
    cand = candidates.astype(np.int64, copy=True)
    cand[cand == query_ids[:, None]] = -1
    valid = cand >= 0
    safe = np.where(valid, cand, 0)
    # Float64, summed feature by feature: the kNN join's distances, bit for bit.
    dist = pair_d2(points[query_ids].astype(np.float64), points, safe)
    dist[~valid] = np.inf
    # Order by (distance, id); invalid entries sort last.
    ids_for_sort = np.where(valid, cand, np.iinfo(np.int64).max)
    order = np.lexsort((ids_for_sort, dist), axis=-1)[:, :k]
    out = np.take_along_axis(cand, order, axis=1)
    out[~np.take_along_axis(valid, order, axis=1)] = -1
    if out.shape[1] < k:
        out = np.pad(out, ((0, 0), (0, k - out.shape[1])), constant_values=-1)
    return out


def brute_force_neighbors(points: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
    """Exact ``k`` nearest other rows by float64 brute force (fallback for short lists)."""
    out = np.empty((len(query_ids), k), dtype=np.int64)
    ids = np.arange(len(points))
    block = max(1, 4_000_000 // max(1, points.size))  # keep each block ~32 MB
    x = points.astype(np.float64)
    for start in range(0, len(query_ids), block):
        q = query_ids[start : start + block]
        d = full_d2(x[q], x)
        d[np.arange(len(q)), q] = np.inf
        order = np.lexsort((np.broadcast_to(ids, d.shape), d), axis=-1)[:, :k]
        out[start : start + len(q)] = order
    return out


def search_neighbors(
    shipped: SearchIndex,
    points: np.ndarray,
    query_ids: np.ndarray,
    k: int,
    extra: int,
    threads: int,
) -> np.ndarray:
    """The ``k`` nearest other rows of each query row, exactly re-ranked.

    Rows for which the index returned fewer than ``k`` usable candidates (possible with
    IVF/HNSW on tiny or very clustered classes) fall back to exact brute force.
    """
    if isinstance(shipped, ListIndex):
        nbrs = search_lists(shipped, points, query_ids, k, extra)
    else:
        set_threads(threads)
        queries = np.ascontiguousarray(points[query_ids], dtype=np.float32)
        cand = load_index(shipped).search(queries, min(len(points), k + 1 + extra))[1]
        nbrs = exact_rerank(points, query_ids, cand, k)
    short = np.flatnonzero((nbrs < 0).any(axis=1))
    if len(short):
        nbrs[short] = brute_force_neighbors(points, query_ids[short], k)
    return nbrs


def measured_recall(x: np.ndarray, shipped: SearchIndex, k: int, extra: int, seed: int,
                    sample: int = 256) -> float:
    """Recall@k of an approximate index on a deterministic sample of its own rows.

    The share of the exact ``k`` nearest other rows (a flat index, re-ranked the same
    way) that the approximate search returns, over at most ``sample`` query rows chosen
    by seeded hashes of their canonical ids.  Costs ``sample`` searches of each kind.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = min(k, len(x) - 1)
    if shipped.method == "exact" or k < 1:
        return 1.0
    n = min(sample, len(x))
    bits = draw_bits(stream_key(seed, "recall-sample"), np.arange(len(x)))
    queries = np.sort(np.argpartition(bits, n - 1)[:n]) if n < len(x) else np.arange(len(x))
    found = search_neighbors(shipped, x, queries, k, extra, threads=1)
    flat = faiss_ops.ship(faiss_ops.flat_index(x), "exact", 1, 0)
    truth = search_neighbors(flat, x, queries, k, extra, threads=1)
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(found, truth))
    return hits / (len(queries) * k)


__all__ = [
    "SearchIndex", "ShippedIndex", "build_index", "exact_rerank", "brute_force_neighbors", "load_index", "measured_recall",
    "search_neighbors",
]
