"""The approximate kNN join for a small set of queries already on the driver.

ADASYN and Borderline-SMOTE ask for the neighbours, among *all* rows, of the rows of the
classes they oversample — rows the driver collects anyway.  Shuffling every data row to
its cell (what :func:`~distsmote.neighbors.join.knn_join` does) is then wasted: the
queries are broadcast instead, and the data never moves.

1. *Plan.*  The same sample and k-means cells as the shuffle join; each query's
   ``join_nprobe`` nearest cells are found on the driver, and the queries are grouped
   by cell (a small CSR table, broadcast with the query points).
2. *Search.*  Each data partition assigns its rows to their home cell (the same rule as
   the shuffle join) and searches, cell by cell, the queries that probe that cell; each
   query keeps its ``k + 1`` nearest per partition, copies counted.
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
from distsmote.neighbors.cells import Quantizer, home_and_probes
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.index import set_threads
from distsmote.neighbors.join import (
    ROWS_PER_PARTITION,
    JoinInfo,
    _BUCKET_EXTRA,
    _partial_meta,
    _search_bucket,
    _table_arrays,
    edge_meta,
    merge_partial,
    plan_cells,
    query_mask,
    resolve_mode,
)

logger = logging.getLogger("distsmote")

#: A key no row has (a query searched with it never drops itself; the merge does).
_NO_KEY = np.iinfo(np.int64).min


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
    offsets: np.ndarray  # CSR over cells: queries probing cell c are order[offsets[c]:offsets[c+1]]
    order: np.ndarray
    finish: Callable[[pd.DataFrame, Any], pd.DataFrame] | None = None
    finish_args: Any = None


def _homes(p: _QueryPayload, x: np.ndarray, cls: np.ndarray, threads: int) -> np.ndarray:
    """Home cell of each row, by the shuffle join's rule (query rows: the first of their
    ``nprobe`` probes; other rows: a cheaper one-probe search)."""
    home = np.empty(len(x), dtype=np.int64)
    is_query = p.query_mask[cls]
    for rows, nprobe in ((np.flatnonzero(is_query), p.nprobe), (np.flatnonzero(~is_query), 1)):
        if len(rows):
            home[rows] = home_and_probes(p.quantizer, x[rows], nprobe, threads)[0]
    return home


def _top_with_copies(qi: np.ndarray, kd: np.ndarray, d2: np.ndarray, mult: np.ndarray, k: int):
    """Per query, the nearest candidates holding ``k`` copies (ties by key).

    Returns the positions of the kept candidates and the copies each keeps.
    """
    if not len(qi):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.lexsort((kd, d2, qi))
    q, m = qi[order], mult[order]
    new_query = np.r_[True, q[1:] != q[:-1]]
    cum = np.cumsum(m)
    before = cum - m - (cum - m)[np.flatnonzero(new_query)][np.cumsum(new_query) - 1]
    keep = before < k
    return order[keep], np.minimum(m, k - before)[keep]


def _search_partition(pdf: pd.DataFrame, p: _QueryPayload, threads: int) -> pd.DataFrame:
    """Each query's ``k + 1`` nearest rows of this partition, copies counted."""
    fault_point("join.search")
    x, keys, cls, mult = _table_arrays(pdf, p.n_features)
    if not len(x):
        return _partial_meta()
    home = _homes(p, x, cls, threads)
    order = np.lexsort((keys, home))
    x, keys, cls, mult, home = x[order], keys[order], cls[order], mult[order], home[order]
    starts = np.flatnonzero(np.r_[True, home[1:] != home[:-1]])
    ends = np.r_[starts[1:], len(home)]
    width = p.k + 1
    set_threads(threads)
    found_q, found_r, found_d, found_t = [], [], [], []
    for lo, hi in zip(starts, ends):
        c = home[lo]
        qs = p.order[p.offsets[c] : p.offsets[c + 1]]
        if not len(qs):
            continue
        rows, d2, take = _search_bucket(
            x[lo:hi], keys[lo:hi], mult[lo:hi], p.x[qs], np.full(len(qs), _NO_KEY), width, _BUCKET_EXTRA
        )
        ok = rows >= 0
        found_q.append(np.broadcast_to(qs[:, None], rows.shape)[ok])
        found_r.append(rows[ok] + lo)
        found_d.append(d2[ok])
        found_t.append(take[ok])
    if not found_q:
        return _partial_meta()
    qi, ri = np.concatenate(found_q), np.concatenate(found_r)
    pick, take = _top_with_copies(qi, keys[ri], np.concatenate(found_d), np.concatenate(found_t), width)
    qi, ri = qi[pick], ri[pick]
    return pd.DataFrame(
        {
            "qkey": p.keys[qi], "qcls": p.cls[qi], "nkey": keys[ri], "ncls": cls[ri],
            "d2": np.concatenate(found_d)[pick], "mult": take,
        }
    )


def _merge(pdf: pd.DataFrame, p: _QueryPayload, threads: int) -> pd.DataFrame:
    """Add up a row's copies found in several partitions, drop one copy of the query
    itself, keep the ``k`` nearest and finish."""
    if len(pdf):
        pdf = pdf.groupby(["qkey", "nkey"], sort=False, as_index=False).agg(
            qcls=("qcls", "first"), ncls=("ncls", "first"), d2=("d2", "first"), mult=("mult", "sum")
        )
        pdf["mult"] -= (pdf["qkey"] == pdf["nkey"]).astype(np.int64)
        pdf = pdf.loc[pdf["mult"] > 0]
    edges = merge_partial(pdf, p.k) if len(pdf) else edge_meta()
    return edges if p.finish is None else p.finish(edges, p.finish_args)


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
        quantizer, _, _ = plan_cells(engine, table, n_rows, n_features, dtype, knn, False, seed, info)
    t0 = time.perf_counter()
    _, _, probes = home_and_probes(quantizer, xq, 1 if exact else knn.join_nprobe, 1)
    qi = np.repeat(np.arange(len(xq)), probes.shape[1])
    cells = probes.reshape(-1)
    order = np.lexsort((qi, cells))
    offsets = np.searchsorted(cells[order], np.arange(quantizer.n_cells + 1))
    payload = _QueryPayload(
        n_features, quantizer, probes.shape[1], k, mask, queries["key"].to_numpy(np.int64),
        queries["cls"].to_numpy(np.int32), xq, offsets, qi[order], finish, finish_args,
    )
    info.query_rows = len(xq)
    info.query_records = int(len(cells))
    info.seconds["probes"] = time.perf_counter() - t0
    handle = engine.broadcast(payload)
    partial = engine.map_partitions(table, _search_partition, handle, _partial_meta())
    parts = max(1, math.ceil(len(xq) * (k + 1) * max(1, engine.num_partitions(table)) / ROWS_PER_PARTITION))
    out = engine.shuffle_map(partial, "qkey", _merge, handle, finish_meta, parts)
    logger.info(
        "kNN join (broadcast queries, k=%d): %d queries, %d cells, %d probes per query",
        k, len(xq), quantizer.n_cells, probes.shape[1],
    )
    return out, info
