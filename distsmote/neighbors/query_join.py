"""The approximate kNN join for a small set of queries already on the driver.

ADASYN and Borderline-SMOTE ask for the neighbours, among *all* rows, of the rows of the
classes they oversample — rows the driver collects anyway.  Shuffling every data row to
its cell (what :func:`~distsmote.neighbors.join.knn_join` does) is then wasted: the
queries are broadcast instead, and the data never moves.

1. *Plan.*  The same sample and k-means cells as the shuffle join; each query's
   ``join_nprobe`` nearest cells are found on the driver (broadcast with the query
   points).
2. *Search.*  Each data partition assigns its rows to their home cell (the same rule as
   the shuffle join; a row of a query class is a query, whose home the driver already
   found), lays them out as the inverted lists of the broadcast cells and searches
   every query in the cells it probes (:func:`~distsmote.neighbors.lists.list_candidates`),
   with the shuffle join's exact re-ranking; each query keeps its ``k + 1`` nearest per
   partition, copies counted, but only those within its *bound*: the driver's exact
   distance to the farthest of ``k + 1`` query rows in its home cell
   (:func:`query_bounds`).  The search itself skips rows beyond the bound, and most
   partitions send nothing for most queries.
3. *Merge.*  Shuffle the partial candidates by query key, add up the copies of a row
   found in several partitions, drop one copy of the query itself, keep the ``k``
   nearest and run the ``finish`` function.

The result equals the shuffle join's in approximate mode (same cells, same probes,
same ties by key).  The driver holds the queries and the centroids, nothing more.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from distsmote._faults import fault_point
from distsmote.engines.base import Engine
from distsmote.neighbors.bucket_search import BUCKET_EXTRA
from distsmote.neighbors.cells import Quantizer, home_and_probes, homes_and_probes
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.exact import (
    full_d2,
    merge_partial,
    pair_d2,
    take_k,
)
from distsmote.neighbors.join_plan import (
    ROWS_PER_PARTITION,
    JoinInfo,
    plan_cells,
    query_mask,
    resolve_mode,
)
from distsmote.neighbors.lists import list_candidates, list_table
from distsmote.neighbors.table import (
    CLS,
    KEY,
    MULT,
    TableSource,
    edge_meta,
    feature_names,
    partial_meta,
)

logger = logging.getLogger("distsmote")


@dataclass(frozen=True)
class _QueryPayload:
    n_features: int
    quantizer: Quantizer
    nprobe: int
    k: int
    query_mask: np.ndarray  # bool per class code: rows whose home uses the query rule
    keys: np.ndarray  # query keys
    cls: np.ndarray  # query class codes
    x: np.ndarray  # query points, float64
    probes: np.ndarray  # (n_queries, nprobe) cells each query probes
    key_order: np.ndarray  # argsort of keys
    bound: np.ndarray  # per query, an upper bound on its (k+1)-th nearest copy's d²
    finish: Callable[[pd.DataFrame, Any], pd.DataFrame] | None = None
    finish_args: Any = None


def _homes(p: _QueryPayload, x: np.ndarray, keys: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Home cell of each row by the shuffle join's rule (:func:`homes_and_probes`).

    A row of a query class is one of the broadcast queries, whose nearest probe (its
    home) the driver has found already: it is looked up by key, not searched again.
    """
    is_query = p.query_mask[cls]
    pos = np.searchsorted(p.keys, keys, sorter=p.key_order)
    pos = p.key_order[np.minimum(pos, len(p.keys) - 1)] if len(p.keys) else np.zeros(len(keys), np.int64)
    known = is_query & (p.keys[pos] == keys) if len(p.keys) else np.zeros(len(keys), bool)
    home = np.empty(len(x), dtype=np.int64)
    home[known] = p.probes[pos[known], 0]
    rest = np.flatnonzero(~known)
    if len(rest):
        home[rest], _ = homes_and_probes(p.quantizer, x[rest], is_query[rest], p.nprobe)
    return home


def _candidates(p: _QueryPayload, x: np.ndarray, home: np.ndarray, width: int):
    """Float32 candidates of every query among this partition's rows in the cells it
    probes (lists = the rows' home cells), only rows that may lie within the query's
    bound, and the bound on their rounding."""
    q = p.quantizer
    centroids = q.centroids.astype(np.float32)
    # Centred in float64, then on each cell before rounding to float32: the rounding
    # bound of :func:`list_candidates` holds.
    xs = x - q.center
    xq = p.x - q.center
    # Rows whose float32 distance is past the query's bound by more than the rounding
    # cannot be within it: most rows of most partitions fail one test per group.
    return list_candidates(list_table(xs, home, centroids), centroids, xq, p.probes, width, limit=p.bound)


def _search_partition(pdf: pd.DataFrame, p: _QueryPayload, threads: int) -> pd.DataFrame:
    """Each query's ``k + 1`` nearest rows of this partition, copies counted.

    One search of inverted lists over the partition (lists = home cells,
    :func:`~distsmote.neighbors.lists.list_candidates`, rows beyond each query's bound
    skipped) gives float32 candidates; they are re-ranked with exact float64 distances,
    ties by key, and a query whose candidates could hide a tie or a closer row is
    searched again exactly over the rows of the cells it probes.
    """
    fault_point("join.search")
    keys, cls, mult = pdf[KEY].to_numpy(np.int64), pdf[CLS].to_numpy(np.int32), pdf[MULT].to_numpy(np.int64)
    # Features in the table's own dtype: every distance below is computed in float64 from
    # them, with the same values as a float64 copy would hold.
    x = pdf[feature_names(p.n_features)].to_numpy()
    if not len(x):
        return partial_meta()
    home = _homes(p, x, keys, cls)
    order = np.lexsort((keys, home))  # by cell: the inverted lists
    x, keys, cls, mult, home = x[order], keys[order], cls[order], mult[order], home[order]
    need = p.k + 1  # copies: the query's own copy is dropped later, once
    width = min(len(x), need + BUCKET_EXTRA)
    f32, cand, eta = _candidates(p, x, home, width)
    # Only queries with a candidate go on (one within their bound, give or take the
    # rounding): in most partitions that leaves few of the queries.
    live = np.flatnonzero(cand[:, 0] >= 0)
    f32, cand, eta, xq, probes = f32[live], cand[live], eta[live], p.x[live], p.probes[live]
    valid = cand >= 0
    safe = np.where(valid, cand, 0)
    d2 = np.where(valid, pair_d2(xq, x, safe), np.inf)
    ranked = np.lexsort((np.where(valid, keys[safe], np.iinfo(np.int64).max), d2), axis=-1)  # ties by key
    cand, d2 = np.take_along_axis(safe, ranked, 1), np.take_along_axis(d2, ranked, 1)
    eff = np.where(np.isfinite(d2), mult[cand], 0)
    keep, take, total = take_k(eff, need)
    last = np.where(keep, d2, -np.inf).max(axis=1)
    full = valid.all(axis=1)  # the search may have left rows out
    vague = np.flatnonzero(full & ((last >= f32[:, -1].astype(np.float64) - 2.0 * eta) | (total < need)))
    qi, c = np.nonzero(keep)
    found = [(qi, cand[qi, c], d2[qi, c], take[qi, c])]
    if len(vague):
        found = [tuple(a[~np.isin(qi, vague)] for a in found[0])]
        starts = np.searchsorted(home, np.arange(p.quantizer.n_cells + 1))
        for v in vague:
            rows = np.concatenate([np.arange(starts[c], starts[c + 1]) for c in probes[v]])
            rows = rows[np.argsort(keys[rows], kind="stable")]  # ties by key
            dv = full_d2(xq[v : v + 1], x[rows])[0]
            o = np.argsort(dv, kind="stable")
            rows, dv = rows[o], dv[o]
            kk, tt, _ = take_k(mult[rows][None, :], need)
            sel = np.flatnonzero(kk[0])
            found.append((np.full(len(sel), v), rows[sel], dv[sel], tt[0, sel]))
    qi, ri, dd, tk = (np.concatenate(a) for a in zip(*found))
    qi = live[qi]
    # A row farther than the query's bound is never among its k + 1 nearest copies: the
    # bound is met by k + 1 rows in its home cell, which it probes.  Dropping such rows here keeps the merge
    # about one partition's candidates per query instead of one per partition.
    near = dd <= p.bound[qi]
    qi, ri, dd, tk = qi[near], ri[near], dd[near], tk[near]
    return pd.DataFrame(
        {"qkey": p.keys[qi], "qcls": p.cls[qi], "nkey": keys[ri], "ncls": cls[ri], "d2": dd, "mult": tk}
    )


#: At most this many query rows of a cell serve as its candidates in :func:`query_bounds`.
BOUND_CANDIDATES = 128


def query_bounds(xq: np.ndarray, home: np.ndarray, k: int) -> np.ndarray:
    """Per query (``xq``, in cell ``home``), the exact d² of its ``k + 1``-th nearest
    query row in its home cell.

    Every query row is a row of the table and lies in its home cell, which the query
    probes first, so this bounds the query's ``k + 1``-th nearest copy among all the rows
    it probes (itself included): no row beyond it can be a neighbour.  Any ``k + 1`` rows
    of the cell give a valid bound; the nearest of the cell's first
    :data:`BOUND_CANDIDATES` query rows give a tight one cheaply.  The distances are
    :func:`full_d2`'s, the same values the partitions compute.  ``inf`` where the cell
    holds fewer than ``k + 1`` query rows (exact mode: one cell holds every row).
    """
    bound = np.full(len(xq), np.inf)
    order = np.argsort(home, kind="stable")
    cuts = np.flatnonzero(np.r_[True, home[order][1:] != home[order][:-1], True])
    for a, b in zip(cuts[:-1], cuts[1:]):
        rows = order[a:b]
        cand = xq[rows[:BOUND_CANDIDATES]]
        if len(cand) < k + 1:
            continue
        step = max(1, 1_000_000 // len(cand))
        for s in range(0, len(rows), step):
            d2 = full_d2(xq[rows[s : s + step]], cand)
            bound[rows[s : s + step]] = np.partition(d2, k, axis=1)[:, k]
    return bound


def _merge(pdf: pd.DataFrame, p: _QueryPayload, threads: int) -> pd.DataFrame:
    """Add up a row's copies found in several partitions, drop one copy of the query
    itself, keep the ``k`` nearest and finish."""
    edges = merge_partial(_add_copies(pdf), p.k) if len(pdf) else edge_meta()
    return edges if p.finish is None else p.finish(edges, p.finish_args)


def _add_copies(pdf: pd.DataFrame) -> pd.DataFrame:
    """One candidate per (query, row): copies found in several partitions added up,
    less the query's own copy; candidates left with no copy are dropped."""
    qkey = pdf["qkey"].to_numpy(np.int64)
    nkey = pdf["nkey"].to_numpy(np.int64)
    order = np.lexsort((nkey, qkey))
    qkey, nkey = qkey[order], nkey[order]
    first = np.flatnonzero(np.r_[True, (qkey[1:] != qkey[:-1]) | (nkey[1:] != nkey[:-1])])
    mult = np.add.reduceat(pdf["mult"].to_numpy(np.int64)[order], first)
    rows = order[first]
    qkey, nkey = qkey[first], nkey[first]
    mult = mult - (qkey == nkey)
    live = mult > 0
    return pd.DataFrame(
        {
            "qkey": qkey[live],
            "qcls": pdf["qcls"].to_numpy(np.int32)[rows][live],
            "nkey": nkey[live],
            "ncls": pdf["ncls"].to_numpy(np.int32)[rows][live],
            "d2": pdf["d2"].to_numpy(np.float64)[rows][live],
            "mult": mult[live],
        }
    )


def query_join(
    engine: Engine,
    table: Any,
    *,
    queries: pd.DataFrame,
    k: int,
    n_rows: int,
    n_features: int,
    dtype: Any,
    n_classes: int,
    knn: KnnConfig,
    query_classes: list[int],
    finish: Callable[[pd.DataFrame, Any], pd.DataFrame],
    finish_meta: pd.DataFrame,
    finish_args: Any = None,
    seed: int = 0,
    source: TableSource | None = None,
) -> tuple[Any, JoinInfo]:
    """The ``k`` nearest rows of each query among all rows of ``table``.

    Approximate mode searches each query's ``join_nprobe`` nearest cells; exact mode
    (for ``n_queries · n_rows`` small enough to search exhaustively) searches every row,
    with the join's exact re-ranking, so the result equals brute force.

    Parameters
    ----------
    queries : pandas.DataFrame
        One row per distinct query: ``key``, ``cls`` (class code) and the features as
        float64 columns ``f0…``, in the join table's key space.
    Other parameters are those of :func:`~distsmote.neighbors.join.knn_join`.
    """
    exact = resolve_mode(knn, n_rows)
    info = JoinInfo(mode=f"{'exact' if exact else 'approximate'} (broadcast queries)", n_rows=n_rows)
    mask = query_mask(n_classes, query_classes)
    xq = queries[[f"f{j}" for j in range(n_features)]].to_numpy(np.float64)
    if exact:  # one cell holding every row: each partition is searched exhaustively
        origin = np.zeros((1, n_features))
        quantizer = Quantizer(origin[0], origin, np.zeros(1))
    else:
        quantizer, _, _ = plan_cells(engine, table, n_rows, n_features, dtype, knn, False, seed, info, source)
    t0 = time.perf_counter()
    _, _, probes = home_and_probes(quantizer, xq, 1 if exact else knn.join_nprobe)
    # Queries in home-cell order: consecutive queries scan the same inverted lists, which
    # then stay in cache.  Each query's search is independent of the others, so the
    # order changes nothing in the result.
    order = np.argsort(probes[:, 0], kind="stable")
    bound = query_bounds(xq, probes[:, 0], k)
    payload = _QueryPayload(
        n_features, quantizer, probes.shape[1], k, mask, queries["key"].to_numpy(np.int64)[order],
        queries["cls"].to_numpy(np.int32)[order], xq[order], probes[order],
        np.argsort(queries["key"].to_numpy(np.int64)[order], kind="stable"), bound[order], finish,
        finish_args,
    )
    info.query_rows = len(xq)
    info.query_records = int(probes.size)
    info.seconds["probes"] = time.perf_counter() - t0
    handle = engine.broadcast(payload)
    partial = engine.map_partitions(table, _search_partition, handle, partial_meta())
    parts = max(1, math.ceil(len(xq) * (k + 1) * max(1, engine.num_partitions(table)) / ROWS_PER_PARTITION))
    out = engine.shuffle_map(partial, "qkey", _merge, handle, finish_meta, parts)
    logger.info(
        "kNN join (broadcast queries, k=%d): %d queries, %d cells, %d probes per query; "
        "sample and k-means %.1fs, probes and bounds %.1fs",
        k, len(xq), quantizer.n_cells, probes.shape[1],
        info.seconds.get("sample+kmeans", 0.0), info.seconds["probes"],
    )
    return out, info
