"""Worker kernels of the shuffle join's probing: which cells each row is searched in.

Pure functions of a row and the broadcast payload (:class:`JoinPayload`), so a retried
task or another partitioning sends every row to the same cells.  Approximate mode
probes each query's ``nprobe`` nearest cells; exact mode every cell whose bisector or
radius bound does not exclude the query's k-th neighbour (see
:mod:`distsmote.neighbors.cells`), with the bound taken from a sample index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from distsmote.engines.base import empty_frame
from distsmote.neighbors.buckets import BucketPlan
from distsmote.neighbors.cells import Quantizer, homes_and_probes
from distsmote.neighbors.exact_cells import exact_home, exact_probes
from distsmote.neighbors.exact import expand, pair_d2
from distsmote.neighbors.faiss_ops import ShippedIndex, load_index, set_threads
from distsmote.neighbors.keys import key_hash
from distsmote.neighbors.table import HASH_SEED, table_arrays

#: Columns of the replicated records (besides the join table's).
BUCKET, IS_DATA, BOUND, PART = "__bucket", "__data", "__bound", "__part"
PROBE = "__p"


@dataclass(frozen=True)
class BoundIndex:
    """Exact mode: a sample searched to bound each query's k-th neighbour distance."""

    keys: np.ndarray  # sorted
    points: np.ndarray  # centred, float64
    index: ShippedIndex


@dataclass(frozen=True)
class JoinPayload:
    """What every task of a shuffle join needs (broadcast once)."""

    n_features: int
    dtype: str
    exact: bool
    quantizer: Quantizer
    nprobe: int
    k: int
    extra: int
    query_mask: np.ndarray  # bool per class code
    plan: BucketPlan | None = None
    bucket_group: np.ndarray | None = None  # shuffle group of each bucket
    bound: BoundIndex | None = None
    finish: Callable[[pd.DataFrame, Any], pd.DataFrame] | None = None
    finish_args: Any = None


def upper_bounds(p: JoinPayload, x: np.ndarray, keys: np.ndarray, threads: int) -> np.ndarray:
    """Exact mode: distance to the k-th nearest *other* sample point (≥ true k-th distance)."""
    b = p.bound
    n = len(x)
    if b is None or len(b.keys) == 0 or n == 0:
        return np.full(n, np.inf)
    set_threads(threads)
    index = load_index(b.index)
    xc = x - p.quantizer.center
    width = min(len(b.keys), p.k + 1 + p.extra)
    _, cand = index.search(np.ascontiguousarray(xc, dtype=np.float32), width)
    valid = cand >= 0
    safe = np.where(valid, cand, 0)
    d2 = pair_d2(xc, b.points, safe)
    d2[~valid | (b.keys[safe] == keys[:, None])] = np.inf
    d2.sort(axis=1)
    if width < p.k:
        return np.full(n, np.inf)
    return np.sqrt(d2[:, p.k - 1])


def probe_pairs(
    p: JoinPayload, x, keys, is_query, threads, use_radius: bool, upper=None, slack: float = 1.0
):
    """Home cell of every row, the (query row, cell) pairs to search, and each row's
    upper bound of its k-th neighbour distance (``inf`` when unknown).

    ``upper`` (exact mode) reuses bounds computed earlier; ``slack`` > 1 widens them so
    that a recomputation probes a superset of the cells the first computation chose.
    """
    q = p.quantizer
    qrows = np.flatnonzero(is_query)
    if p.exact:
        home, _ = exact_home(q, x)
        if upper is None:
            upper = np.full(len(x), np.inf)
            upper[qrows] = upper_bounds(p, x[qrows], keys[qrows], threads)
        _, r, c = exact_probes(q, x[qrows], upper[qrows] * slack, use_radius=use_radius)
        return home, qrows[r], c, upper
    upper = np.full(len(x), np.inf)
    home, sub = homes_and_probes(q, x, is_query, p.nprobe)
    return home, np.repeat(qrows, sub.shape[1]), sub.reshape(-1), upper


def probe_names(p: JoinPayload) -> list[str]:
    """Approximate mode: columns carrying a query record's probed cells (home first),
    so the search task need not recompute them."""
    return [] if p.exact else [f"{PROBE}{j}" for j in range(max(1, min(p.nprobe, p.quantizer.n_cells)))]


def cell_stats(pdf: pd.DataFrame, p: JoinPayload, threads: int) -> pd.DataFrame:
    """Exact mode: rows, query rows, radius and largest norm per cell of a partition."""
    x, keys, cls, _ = table_arrays(pdf, p.n_features)
    q = p.quantizer
    home, _ = exact_home(q, x)
    xc = x - q.center
    hd2 = ((xc - q.centroids[home]) ** 2).sum(1) + q.slack(xc)
    C = q.n_cells
    n_data = np.bincount(home, minlength=C)
    n_qrows = np.bincount(home[p.query_mask[cls]], minlength=C)
    r2 = np.zeros(C)
    np.maximum.at(r2, home, hd2)
    xn2 = np.zeros(C)
    np.maximum.at(xn2, home, (xc * xc).sum(1))
    live = np.flatnonzero(n_data > 0)
    return pd.DataFrame(
        {
            "cell": live.astype(np.int64),
            "n_data": n_data[live].astype(np.int64),
            "n_qrows": n_qrows[live].astype(np.int64),
            "r2": r2[live],
            "xn2": xn2[live],
        }
    )


def stats_meta() -> pd.DataFrame:
    return empty_frame({"cell": np.int64, "n_data": np.int64, "n_qrows": np.int64, "r2": np.float64, "xn2": np.float64})


def pair_buckets(plan: BucketPlan, keys: np.ndarray, qr: np.ndarray, qc: np.ndarray, positions: bool = False):
    """(query row, bucket) for each (query row, cell) pair: the query's part of the cell,
    every data part.  With ``positions``, the pair each result comes from replaces the
    query row."""
    sd, sq, off = plan.data_splits, plan.query_splits, plan.offsets
    if (sd == 1).all() and (sq == 1).all():  # no cell split: one bucket per cell
        return np.arange(len(qr)) if positions else qr, off[qc]
    h = key_hash(keys, HASH_SEED, "query-part")  # once per row, not once per pair
    jq = (h[qr] % sq[qc].astype(np.uint64)).astype(np.int64)
    pr, pi = expand(sd[qc])
    c = qc[pr]
    return pr if positions else qr[pr], off[c] + pi * sq[c] + jq[pr]

