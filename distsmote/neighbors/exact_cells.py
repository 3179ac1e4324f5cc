"""Exact mode's cells: a row's home (its nearest centroid) and every cell a query's
k-NN ball may touch, by the bisector and radius bounds of :mod:`distsmote.neighbors.cells`.

Pure numpy functions of a partition and the broadcast quantizer, computed in float64
on centred coordinates, with slack for rounding so that no true neighbour is missed.
"""

from __future__ import annotations

import numpy as np

from distsmote.neighbors.cells import Quantizer, _chunks


def exact_home(q: Quantizer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact mode: home cell (float64 argmin, ties by id) and its squared distance."""
    xc = np.asarray(x, dtype=np.float64) - q.center
    home = np.empty(len(xc), dtype=np.int64)
    hd2 = np.empty(len(xc))
    for s in _chunks(len(xc), q.n_cells):
        d2 = q.sq_distances(xc[s])
        home[s] = d2.argmin(1)
        hd2[s] = d2[np.arange(len(d2)), home[s]]
    return home, hd2


def exact_probes(
    q: Quantizer, x: np.ndarray, upper: np.ndarray, use_radius: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact mode: every cell that may hold a row within ``upper`` of the query.

    Parameters
    ----------
    q : Quantizer
        With ``radius`` measured if ``use_radius``.
    x : ndarray (n, d)
        Query rows.
    upper : ndarray (n,)
        An upper bound of each query's k-th neighbour distance (``inf`` allowed).

    Returns
    -------
    home : ndarray (n,) int64
    rows : ndarray (m,) int64, query row of each (row, cell) pair
    cells : ndarray (m,) int64, probed cell of each pair; the home cell is always probed
    """
    xc = np.asarray(x, dtype=np.float64) - q.center
    n, C = len(xc), q.n_cells
    home = np.empty(n, dtype=np.int64)
    rows_out, cells_out = [], []
    for s in _chunks(n, 2 * C):
        d2 = q.sq_distances(xc[s])
        eps = q.slack(xc[s])[:, None]
        a = d2.argmin(1)
        home[s] = a
        ca = q.centroids[a]
        gap2 = (ca * ca).sum(1)[:, None] + q.norms2[None, :] - 2.0 * (ca @ q.centroids.T)
        # Over-estimating the centroid gap only weakens a positive bound.
        gap = np.sqrt(np.maximum(gap2, 0.0) + eps)
        da2 = d2[np.arange(len(d2)), a][:, None]
        # Slack: this query's two distances, and the data row's own assignment.
        lb = (d2 - da2 - 6.0 * eps) / (2.0 * gap)
        if use_radius and q.radius is not None:
            rb = np.sqrt(np.maximum(d2 - eps, 0.0)) - q.radius[None, :]
            lb = np.maximum(lb, rb)
        u = upper[s][:, None]
        hit = lb <= u * (1.0 + 1e-9) + 1e-12
        hit[np.arange(len(a)), a] = True
        r, c = np.nonzero(hit)
        rows_out.append(r + s.start)
        cells_out.append(c)
    if not rows_out:
        return home, np.empty(0, np.int64), np.empty(0, np.int64)
    return home, np.concatenate(rows_out).astype(np.int64), np.concatenate(cells_out).astype(np.int64)
