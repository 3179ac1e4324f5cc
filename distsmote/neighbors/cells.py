"""Cells of the distributed kNN join: coarse quantizer and probing rules.

The quantizer is trained on the driver from a deterministic sample; everything else in
this module is a pure numpy function a worker applies to one partition, so the cell a
row lands in depends only on the row and the broadcast centroids.

Geometry is computed in float64 on coordinates centred on the sample mean.  In exact
mode a row's *home* cell is its nearest centroid (ties: lowest cell id).  (Approximate
mode: a query row's home is its nearest probe, see :func:`home_and_probes`; a row that
is only data takes the nearest fine cell of its nearest coarse cell, see
:func:`data_home`.)  Because every row sits in
the Voronoi cell of its home centroid, a row ``x`` of cell ``c`` is at least

    (‖q − μ_c‖² − ‖q − μ_a‖²) / (2‖μ_c − μ_a‖)          (bisector bound)

away from a query ``q`` whose home is ``a``, and at least ``‖q − μ_c‖ − r_c`` (radius
bound, ``r_c`` the largest distance of a row of ``c`` to ``μ_c``).  Exact mode searches
every cell whose larger bound does not exceed an upper bound of the query's k-th
neighbour distance, so no true neighbour can be missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from distsmote.neighbors import faiss_ops
from distsmote.neighbors.topk import flat_topk

#: Rows of distance matrix computed at once (bounds worker memory).
_CHUNK_ELEMENTS = 4_000_000
#: Float32 search of centroids fetches this many extra cells before the exact re-rank.
_EXTRA_CELLS = 8
#: Approximate mode: rows per cell, and at most this many cells.  Searching a cell
#: costs a fixed overhead per (query, cell) pair plus the rows scanned; on 16-feature
#: data 2048-row cells with 8 probes gave the best time for a recall@3 above 0.99.
ROWS_PER_CELL = 2048
MAX_CELLS = 65_536
#: Above this many cells the quantizer has two levels: ``√C`` coarse cells, each
#: holding the fine cells trained on its rows.  A row's probe candidates are the fine
#: cells of the ``_COARSE_PROBES`` coarse cells nearest to its own nearest coarse cell,
#: so finding them costs ``O(√C)``, not ``O(C)``.  16 of them hold 99.5 % of a row's 8
#: nearest cells on the benchmarks' data (8 held 94 %).
FLAT_MAX_CELLS = 256
_COARSE_PROBES = 16


@dataclass(frozen=True)
class Quantizer:
    """Broadcast centroids (float64, centred) and their geometry."""

    center: np.ndarray  # (d,)
    centroids: np.ndarray  # (C, d), centred
    norms2: np.ndarray  # (C,)
    radius: np.ndarray | None = None  # (C,) once measured; None before the stats pass
    data_norm2: float = 0.0  # largest squared norm of a centred data row, once measured
    coarse: np.ndarray | None = None  # (G, d) coarse centroids of a two-level quantizer
    parent: np.ndarray | None = None  # (C,) coarse cell of each cell

    @property
    def n_cells(self) -> int:
        return len(self.centroids)

    def with_stats(self, radius: np.ndarray, data_norm2: float) -> "Quantizer":
        """The quantizer with measured cell radii and largest data norm."""
        return replace(self, radius=np.asarray(radius, float), data_norm2=float(data_norm2))

    def sq_distances(self, xc: np.ndarray) -> np.ndarray:
        """Squared distances (float64, clipped at 0) of centred rows to every centroid."""
        d2 = (xc * xc).sum(1)[:, None] + self.norms2[None, :] - 2.0 * (xc @ self.centroids.T)
        return np.maximum(d2, 0.0)

    def slack(self, xc: np.ndarray) -> np.ndarray:
        """Per-row bound on the rounding error of :meth:`sq_distances` (generous).

        Covers the query's own error and that of any data row (whose largest norm is
        ``data_norm2``), so that bounds derived from these distances stay valid.
        """
        big = max(float(self.norms2.max(initial=0.0)), self.data_norm2)
        return 1e-11 * ((xc * xc).sum(1) + big + 1.0)


def default_cells(n_rows: int, nlist: int | None, exact: bool = False) -> int:
    """Number of cells: ``nlist`` if given (at most ``N``), else ``N / 2048`` (approximate
    mode, at most 65 536) or ``2·∛N`` with at least 64 rows per cell (exact mode).

    Approximate mode: with the cell size fixed, the rows a query scans (``nprobe`` cells)
    stay constant as ``N`` grows, so the join's work grows like ``N``, not ``N^1.5``.
    Exact mode must search every cell a query's k-NN ball may touch; in more than a few
    dimensions that ball touches a large share of small cells, so fewer, larger cells
    keep the number of query copies (and shuffle volume) down.
    """
    if nlist:
        return max(1, min(int(nlist), n_rows))
    n_rows = max(n_rows, 1)
    if exact:
        return max(1, min(int(round(2 * n_rows ** (1 / 3))), n_rows // 64 or 1))
    return max(1, min(MAX_CELLS, round(n_rows / ROWS_PER_CELL)))


def train_quantizer(
    sample: np.ndarray, n_cells: int, niter: int, rows_per_cell: int, seed: int
) -> Quantizer:
    """FAISS k-means on a sample already in canonical (key) order.

    Up to ``FLAT_MAX_CELLS`` cells, one k-means.  Above, a two-level quantizer: ``√C``
    coarse cells, then each coarse cell's sample rows split into fine cells in
    proportion to its share of the sample; the fine cells are the join's cells.

    The result depends only on the sample rows and the seed: FAISS k-means is
    reproducible for a given input order and seed, whatever the thread count.
    """
    sample = np.asarray(sample, dtype=np.float64)
    center = sample.mean(0) if len(sample) else np.zeros(sample.shape[1])
    xc = sample - center
    n_cells = max(1, min(n_cells, len(sample)))
    if n_cells <= FLAT_MAX_CELLS:
        cents = _kmeans(xc, n_cells, niter, max(rows_per_cell, 39), seed)
        return Quantizer(center, cents, (cents * cents).sum(1))
    # Two levels: √C coarse cells, then each coarse cell's rows split into fine cells in
    # proportion to its share of the sample.
    n_coarse = int(round(math.sqrt(n_cells)))
    coarse = _kmeans(xc, n_coarse, niter, len(xc), seed)
    d2 = (xc * xc).sum(1)[:, None] + (coarse * coarse).sum(1)[None, :] - 2.0 * (xc @ coarse.T)
    owner = d2.argmin(1)
    fine, parent = [], []
    for g in range(n_coarse):
        rows = xc[owner == g]
        if len(rows) == 0:
            continue
        m = int(min(len(rows), max(1, round(n_cells * len(rows) / len(xc)))))
        fine.append(_kmeans(rows, m, niter, len(rows), seed + 1 + g))
        parent.append(np.full(m, g, dtype=np.int64))
    cents = np.concatenate(fine)
    return Quantizer(center, cents, (cents * cents).sum(1), coarse=coarse, parent=np.concatenate(parent))


def _kmeans(xc: np.ndarray, k: int, niter: int, max_points_per_centroid: int, seed: int) -> np.ndarray:
    """FAISS k-means centroids (float64) of centred rows; the mean if ``k == 1``."""
    if k <= 1:
        return xc.mean(0, keepdims=True) if len(xc) else np.zeros((1, xc.shape[1]))
    cents = faiss_ops.kmeans(
        xc, k, niter, seed, max_points_per_centroid=max(1, int(max_points_per_centroid)), min_points_per_centroid=1
    )
    return cents.astype(np.float64)


def _chunks(n: int, width: int):
    step = max(1, _CHUNK_ELEMENTS // max(1, width))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def home_and_probes(
    q: Quantizer, x: np.ndarray, nprobe: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Approximate mode: the ``nprobe`` nearest cells of each row, nearest first.

    A float32 search (:func:`~distsmote.neighbors.topk.flat_topk`) fetches ``nprobe + 8``
    candidate centroids (for a two-level
    quantizer, among the cells of the 16 coarse cells nearest to the row's nearest coarse
    cell, see :func:`_two_level_search`); they are re-ranked
    with float64 distances (ties by cell id), so the choice does not depend on batch
    size or thread count.

    Returns
    -------
    home : ndarray (n,) int64
    home_d2 : ndarray (n,) float64, squared distance to the home centroid
    probes : ndarray (n, p) int64, ``p = min(nprobe, C)``; column 0 is the home cell
    """
    xc = np.asarray(x, dtype=np.float64) - q.center
    n, C = len(xc), q.n_cells
    p = max(1, min(nprobe, C))
    if p == 1 and C > 2 and n:
        return _home_only(q, xc)
    m = min(C, p + _EXTRA_CELLS)
    if m == C:
        cand = np.broadcast_to(np.arange(C), (n, C))
        vague = np.arange(n)
    else:
        x32 = np.ascontiguousarray(xc, dtype=np.float32)
        if q.coarse is None:
            f32, cand = flat_topk(q.centroids, x32, m)
        else:
            f32, cand = _two_level_search(q, xc, x32, m, distances=True)
        vague = np.flatnonzero(~_clear_order(f32, cand, p, x32, q))
    cand = np.asarray(cand, dtype=np.int64)
    # Rows whose float32 order is clear keep its first p; the others are re-ranked.
    probes = np.array(cand[:, :p])
    if len(vague):
        vc = cand[vague]
        d2 = _rerank(q.centroids, xc[vague], vc)
        probes[vague] = np.take_along_axis(vc, np.lexsort((vc, d2), axis=-1)[:, :p], axis=1)
    if (probes < 0).any():  # a row whose coarse cells hold fewer than p cells
        bad = np.flatnonzero((probes < 0).any(1))
        sub = flat_topk(q.centroids, np.ascontiguousarray(xc[bad], dtype=np.float32), m)[1]
        sd2 = _rerank(q.centroids, xc[bad], sub)
        probes[bad] = np.take_along_axis(sub, np.lexsort((sub, sd2), axis=-1)[:, :p], axis=1)
    home_d2 = _rerank(q.centroids, xc, probes[:, :1])[:, 0]
    return probes[:, 0].copy(), home_d2, probes


def _clear_order(f32: np.ndarray, cand: np.ndarray, p: int, x32: np.ndarray, q: Quantizer) -> np.ndarray:
    """Rows whose first ``p`` float32 candidates are, in order, the exact first ``p``.

    True where each of the first ``p + 1`` float32 distances is ahead of the next by
    far more than float32 rounding (``_CLEAR_MARGIN`` of the squared norms involved):
    exact float64 distances then order them the same, and no other candidate can come
    before the ``p``-th.  Such a row's probes are the same whatever the batch.
    """
    if f32.shape[1] <= p:
        return np.zeros(len(f32), dtype=bool)
    scale = np.einsum("ij,ij->i", x32, x32) + np.float32(q.norms2.max(initial=0.0)) + np.float32(1e-30)
    gaps = np.diff(f32[:, : p + 1], axis=1)
    return (gaps > np.float32(_CLEAR_MARGIN) * scale[:, None]).all(1) & (cand[:, p] >= 0)


def _home_only(q: Quantizer, xc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The home cell alone, as :func:`home_and_probes` would choose it, more cheaply.

    Where the float32 distances put the nearest candidate clearly ahead of the
    second (by far more than float32 rounding), it is the exact nearest of the same
    candidate set, so no re-rank is needed; the other rows take the full path.  Both
    give the same cell, whatever the batch.
    """
    x32 = np.ascontiguousarray(xc, dtype=np.float32)
    if q.coarse is None:
        f32, cand = flat_topk(q.centroids, x32, 2)
    else:
        f32, cand = _two_level_search(q, xc, x32, 2, distances=True)
    scale = (x32.astype(np.float64) ** 2).sum(1) + float(q.norms2.max(initial=0.0)) + 1e-30
    clear = (cand[:, 1] >= 0) & ((f32[:, 1].astype(np.float64) - f32[:, 0]) > 1e-3 * scale)
    home = cand[:, 0].astype(np.int64)
    vague = np.flatnonzero(~clear)
    if len(vague):
        home[vague] = home_and_probes(q, xc[vague] + q.center, 2)[2][:, 0]
    home_d2 = _rerank(q.centroids, xc, home[:, None])[:, 0]
    return home, home_d2, home[:, None].copy()


#: Rows whose cells :func:`homes_and_probes` finds together (a 610 000-row partition of
#: the join table peaked at 536 MiB in it, whole).
ROW_CHUNK = 1 << 17


def homes_and_probes(
    q: Quantizer, x: np.ndarray, is_query: np.ndarray, nprobe: int
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate mode, one rule for both joins: the home cell of every row and the
    ``nprobe`` probed cells of the query rows.

    A query row's home is its nearest probe (:func:`home_and_probes`); a row that is
    only data gets :func:`data_home`, which is cheaper.

    Rows are taken :data:`ROW_CHUNK` at a time (each row's cells do not depend on the
    others), so the search's temporaries stay a few tens of MiB whatever the partition.

    Returns
    -------
    home : ndarray (n,) int64
    probes : ndarray (n_query_rows, p) int64, the query rows' probes in row order
    """
    if len(x) > ROW_CHUNK:
        parts = [homes_and_probes(q, x[a : a + ROW_CHUNK], is_query[a : a + ROW_CHUNK], nprobe)
                 for a in range(0, len(x), ROW_CHUNK)]
        return np.concatenate([h for h, _ in parts]), np.concatenate([pr for _, pr in parts])
    qrows = np.flatnonzero(is_query)
    if len(qrows) == len(x):
        home, _, probes = home_and_probes(q, x, nprobe)
        return home, probes
    home = np.empty(len(x), dtype=np.int64)
    others = np.flatnonzero(~is_query)
    home[others] = data_home(q, x[others])
    home[qrows], _, probes = home_and_probes(q, x[qrows], nprobe)
    return home, probes


#: A float32 nearest centroid is taken as is when the second is farther by this share of
#: the squared norms involved (the float32 search's error: a few 1e-7 of them).
_CLEAR_MARGIN = 1e-4


def data_home(q: Quantizer, x: np.ndarray) -> np.ndarray:
    """The cell of a row that is only searched *in* (never a query), cheaply.

    A flat quantizer gives the nearest cell, the same as :func:`home_and_probes`.  A
    two-level one gives the nearest fine cell *within the row's nearest coarse cell*
    (exact float64 distances, ties by lowest id): about ``2·√C`` distances per row
    instead of the ``8·√C`` fine cells :func:`home_and_probes` compares, and plain
    BLAS searches.  A pure function of the row, whatever the batch.
    """
    xc = np.asarray(x, dtype=np.float64) - q.center
    x32 = np.ascontiguousarray(xc, dtype=np.float32)
    norms = np.einsum("ij,ij->i", x32, x32)  # float32: only scales the margin
    every = np.arange(len(xc))
    if q.coarse is None or not len(xc):
        return _nearest(q.centroids, xc, x32, norms, every)
    owner = _nearest(q.coarse, xc, x32, norms, every)
    home = np.empty(len(xc), dtype=np.int64)
    children, bounds = _children(q)
    by_owner = np.argsort(owner, kind="stable")
    cuts = np.searchsorted(owner[by_owner], np.arange(len(q.coarse) + 1))
    for g in range(len(q.coarse)):
        rows = by_owner[cuts[g] : cuts[g + 1]]
        if len(rows):
            cells = children[bounds[g] : bounds[g + 1]]
            home[rows] = cells[_nearest(q.centroids[cells], xc, x32[rows], norms[rows], rows)]
    return home


def _nearest(points: np.ndarray, xc: np.ndarray, x32: np.ndarray, norms: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Index of the nearest of ``points`` for ``xc[rows]`` by exact float64 distance
    (ties: lowest index); the float32 answer (``x32``, ``norms``: those rows in
    float32 and their squared norms) where it is clearly ahead of the second."""
    if len(points) == 1:
        return np.zeros(len(rows), dtype=np.int64)
    f32, cand = flat_topk(points, x32, 2)
    scale = norms + np.float32((points * points).sum(1).max()) + np.float32(1e-30)
    clear = (f32[:, 1] - f32[:, 0]) > np.float32(_CLEAR_MARGIN) * scale
    out = cand[:, 0].copy()
    vague = np.flatnonzero(~clear)
    if len(vague):
        everyone = np.broadcast_to(np.arange(len(points)), (len(vague), len(points)))
        out[vague] = _rerank(points, xc[rows[vague]], everyone).argmin(1)  # first minimum: lowest index
    return out


def _rerank(points: np.ndarray, xc: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Exact squared distances of each row to its candidates (fixed summation order, so
    a pair's value never depends on the batch); ``inf`` for a missing candidate (-1)."""
    d2 = np.empty(cand.shape)
    safe = np.maximum(cand, 0)
    for s in _chunks(len(xc), cand.shape[1] * xc.shape[1]):
        diff = points[safe[s]] - xc[s, None, :]
        d2[s] = np.einsum("nmd,nmd->nm", diff, diff)  # sums in a fixed order
    d2[cand < 0] = np.inf
    return d2


def _two_level_search(q: Quantizer, xc: np.ndarray, x32: np.ndarray, m: int, distances: bool = False):
    """Candidate cells of a two-level quantizer: the ``m`` nearest (float32) among the
    fine cells of the ``_COARSE_PROBES`` coarse cells nearest to the row's own nearest
    coarse cell (both by exact distance, ties by id, so the candidate set does not
    depend on the batch).  Rows that share a nearest coarse cell share their candidate
    cells, so each coarse cell's rows are one BLAS search (FAISS's IVF scan over each
    row's own coarse cells costs several times more per distance)."""
    G = len(q.coarse)
    norms = np.einsum("ij,ij->i", x32, x32)  # float32: only scales the margin
    owner = _nearest(q.coarse, xc, x32, norms, np.arange(len(xc)))
    near = _coarse_neighbours(q.coarse, min(G, _COARSE_PROBES))
    children, bounds = _children(q)
    f32 = np.full((len(xc), m), np.inf, dtype=np.float32)
    cand = np.full((len(xc), m), -1, dtype=np.int64)
    by_owner = np.argsort(owner, kind="stable")
    cuts = np.searchsorted(owner[by_owner], np.arange(G + 1))
    for g in range(G):
        rows = by_owner[cuts[g] : cuts[g + 1]]
        if len(rows):
            cells = np.concatenate([children[bounds[h] : bounds[h + 1]] for h in near[g]])
            d, i = flat_topk(q.centroids[cells], x32[rows], min(m, len(cells)))
            f32[rows, : d.shape[1]] = d
            cand[rows, : i.shape[1]] = np.where(i >= 0, cells[np.maximum(i, 0)], -1)
    return (f32, cand) if distances else cand


def _coarse_neighbours(coarse: np.ndarray, g: int) -> np.ndarray:
    """The ``g`` nearest coarse cells of each coarse cell (itself first): exact float64
    distances, ties by id."""
    d2 = ((coarse[:, None, :] - coarse[None, :, :]) ** 2).sum(-1)
    ids = np.broadcast_to(np.arange(len(coarse)), d2.shape)
    return np.take_along_axis(ids, np.lexsort((ids, d2), axis=-1)[:, :g], axis=1)


def _children(q: Quantizer) -> tuple[np.ndarray, np.ndarray]:
    """Fine cells by coarse cell: ``children[bounds[g]:bounds[g + 1]]`` are coarse cell
    ``g``'s, in id order."""
    children = np.argsort(q.parent, kind="stable")
    return children, np.searchsorted(q.parent[children], np.arange(len(q.coarse) + 1))
