"""Worker kernels of the shuffle join: replicate rows to buckets, search, merge.

*Replicate* turns a join-table partition into data records (one per bucket of the
row's home cell) and query records (one per group of buckets the query probes).
*Search* runs, in each shuffle group, one float32 flat search per bucket for the
queries probing it, re-ranked with exact float64 distances; *merge* keeps each
query's ``k`` nearest over all groups and runs the ``finish`` function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from distsmote._faults import fault_point
from distsmote._unique import unique_sorted
from distsmote.engines.base import empty_frame
from distsmote.neighbors.cells import Quantizer
from distsmote.neighbors.exact import (
    brute_candidates,
    compact,
    expand,
    float32_slack,
    merge_partial,
    pair_d2,
    take_k,
)
from distsmote.neighbors.keys import key_hash
from distsmote.neighbors.probes import (
    BOUND,
    BUCKET,
    IS_DATA,
    PART,
    JoinPayload,
    pair_buckets,
    probe_names,
    probe_pairs,
)
from distsmote.neighbors.table import (
    CLS,
    HASH_SEED,
    KEY,
    MULT,
    feature_names,
    partial_meta,
    table_arrays,
)
from distsmote.neighbors.topk import flat_topk

#: Buckets this small (data × queries) are searched by float64 brute force.
_BRUTE_PAIRS = 20_000
#: Float32 candidates fetched beyond k + 1 in a bucket (a query whose candidates
#: could hide a tie or a closer row is searched again by brute force, so this only
#: trades search time against re-searches).
BUCKET_EXTRA = 2


def replicate(pdf: pd.DataFrame, p: JoinPayload, threads: int) -> pd.DataFrame:
    """Data records (one per bucket the row's data part belongs to) and query records
    (one per group of buckets the query probes; the search task finds the buckets).

    A record is data or query (``__data``).  Only what the search reads travels: the
    query's probes (approximate mode) or its upper bound (exact mode), 32-bit bucket
    and group numbers, and the features in the join's dtype.
    """
    x, keys, cls, mult = table_arrays(pdf, p.n_features)
    plan = p.plan
    is_query = p.query_mask[cls]
    home, qr, qc, upper = probe_pairs(p, x, keys, is_query, threads, use_radius=True)
    del x  # the largest array of the task: freed before the records are built
    sd, sq, off = plan.data_splits, plan.query_splits, plan.offsets
    # Data records: part i of the home cell, every query part j.
    i_home = (key_hash(keys, HASH_SEED, "data-part") % sd[home].astype(np.uint64)).astype(np.int64)
    dr, dj = expand(sq[home])
    d_bucket = off[home[dr]] + i_home[dr] * sq[home[dr]] + dj
    # Query records: one per (query, group).
    r, b = pair_buckets(plan, keys, qr, qc)
    qc = qc.astype(np.int32)
    del qr
    n_groups = int(p.bucket_group.max(initial=0)) + 1
    pair = unique_sorted(r * n_groups + p.bucket_group[b])
    del r, b
    r, g = pair // n_groups, pair % n_groups
    del pair
    rows = np.concatenate([dr, r])
    # The features are gathered in the join's dtype, never widened first.
    features = pdf[feature_names(p.n_features)].to_numpy(dtype=p.dtype)
    out = pd.DataFrame(features[rows], columns=feature_names(p.n_features), copy=False)
    del features
    n_data = len(dr)
    head = {
        PART: np.concatenate([p.bucket_group[d_bucket], g]).astype(np.int32),
        BUCKET: np.concatenate([d_bucket, np.full(len(r), -1)]).astype(np.int32),
        KEY: keys[rows],
        CLS: cls[rows],
        MULT: mult[rows].astype(np.int32),
        IS_DATA: np.arange(len(rows)) < n_data,
    }
    if p.exact:
        head[BOUND] = upper[rows]
    for pos, (name, values) in enumerate(head.items()):
        out.insert(pos, name, values)
    names = probe_names(p)
    if names:
        r_pos = np.searchsorted(np.flatnonzero(is_query), r)  # row of r among the queries
        qc = qc.reshape(-1, len(names))
        for j, name in enumerate(names):
            column = np.full(len(rows), -1, dtype=np.int32)  # each column built once, in place
            column[n_data:] = qc[r_pos, j]
            out[name] = column
    return out


def records_meta(p: JoinPayload) -> pd.DataFrame:
    return empty_frame(
        {
            PART: np.int32, BUCKET: np.int32, KEY: np.int64, CLS: np.int32, MULT: np.int32, IS_DATA: bool,
            **({BOUND: np.float64} if p.exact else {}),
            **{f: p.dtype for f in feature_names(p.n_features)},
            **{name: np.int32 for name in probe_names(p)},
        }
    )


#: Queries searched together in one search task: the (query, bucket) pairs of a
#: chunk and their results are what a task holds besides its records, so a chunk
#: bounds the task's memory whatever the group's size.  Results do not depend on it.
#: In approximate mode a chunk holds queries of neighbouring home cells, which probe
#: the same few buckets, so smaller chunks cost no more bucket searches (a 1.9 M-record
#: task: 513 MiB traced at 65 536 queries per chunk, 646 MiB at 262 144, same time).
QUERY_CHUNK = 1 << 16


@dataclass(frozen=True)
class _Buckets:
    """The data of a search task's buckets: rows by (bucket, key), one per key."""

    x: np.ndarray  # (n, d) float64
    keys: np.ndarray
    cls: np.ndarray
    mult: np.ndarray
    starts: np.ndarray  # first row of each present bucket
    ends: np.ndarray
    present: np.ndarray  # bucket ids, ascending


def search_buckets(pdf: pd.DataFrame, p: JoinPayload, threads: int) -> pd.DataFrame:
    """Search every bucket of this partition for the queries that probe it, keeping each
    query's k nearest over those buckets (a combiner before the merge shuffle).

    Each bucket is one float32 flat search (:func:`~distsmote.neighbors.topk.flat_topk`,
    a BLAS product and a compiled selection) of the queries probing it, centred on
    the bucket; candidates are re-ranked with exact float64 distances (ties by key), and
    a query whose list could hide a tie or a closer row is searched again by float64
    brute force over the bucket.  Each searched (query, bucket) pair keeps its ``k``
    nearest in a row of its own, and :func:`merge_pairs` merges each query's pairs.

    Approximate mode searches in two rounds: first each query's nearest probed cell in
    this partition, then only the probed cells that can hold a row closer than the
    k-th neighbour found (:func:`cell_bounds`).  The result is the same as searching
    every probed cell; about a third fewer distances on 16-feature data.

    Queries are searched in chunks of :data:`QUERY_CHUNK`; a query's result does not
    depend on the others searched with it.
    """
    fault_point("join.search")
    x32 = pdf[feature_names(p.n_features)].to_numpy()  # the join's dtype, widened per chunk
    keys = pdf[KEY].to_numpy(dtype=np.int64)
    cls = pdf[CLS].to_numpy(dtype=np.int32)
    bucket = pdf[BUCKET].to_numpy(dtype=np.int64)
    is_data = pdf[IS_DATA].to_numpy(dtype=bool)
    # Data, by (bucket, key); copies of a row from several input partitions are merged.
    dm = np.flatnonzero(is_data)
    dm = dm[np.lexsort((keys[dm], bucket[dm]))]
    # Queries, one per key (a query reaches a partition once per group it probes).
    qm = np.flatnonzero(~is_data)
    qm = qm[np.argsort(keys[qm], kind="stable")]
    if len(dm) == 0 or len(qm) == 0:
        return partial_meta()
    kq = keys[qm]
    qm = qm[np.flatnonzero(np.r_[True, kq[1:] != kq[:-1]])]
    db, kd = bucket[dm], keys[dm]
    first = np.flatnonzero(np.r_[True, (db[1:] != db[:-1]) | (kd[1:] != kd[:-1])])
    md = np.add.reduceat(pdf[MULT].to_numpy(dtype=np.int64)[dm], first)
    dm, db = dm[first], db[first]
    starts = np.flatnonzero(np.r_[True, db[1:] != db[:-1]])
    data = _Buckets(
        x=x32[dm].astype(np.float64), keys=keys[dm], cls=cls[dm], mult=md,
        starts=starts, ends=np.r_[starts[1:], len(db)], present=db[starts],
    )
    del dm, db, kd, md, bucket, is_data
    names = probe_names(p)
    probes = pdf[names].to_numpy() if names else None
    bound = pdf[BOUND].to_numpy(dtype=np.float64) if p.exact else None
    if probes is not None:  # chunks of neighbouring home cells (the first probe)
        qm = qm[np.lexsort((keys[qm], probes[qm, 0]))]
    out = []
    for a in range(0, len(qm), QUERY_CHUNK):
        rows = qm[a : a + QUERY_CHUNK]
        out.append(_search_queries(
            data, x32[rows].astype(np.float64), keys[rows], cls[rows],
            bound[rows] if bound is not None else np.full(len(rows), np.inf),
            probes[rows].astype(np.int64) if probes is not None else None, p, threads,
        ))
    return pd.concat(out, ignore_index=True) if len(out) > 1 else out[0]


def _search_queries(
    data: _Buckets, xq: np.ndarray, kq: np.ndarray, cq: np.ndarray, bq: np.ndarray,
    probes: np.ndarray | None, p: JoinPayload, threads: int,
) -> pd.DataFrame:
    """Partial edges of these queries (distinct keys) over the task's buckets.

    ``probes`` are the queries' probed cells (approximate mode); in exact mode they are
    recomputed, a pure function of the row, with the bounds ``bq`` widened so this is a
    superset of the probes the records were sent for.
    """
    starts, ends, present = data.starts, data.ends, data.present
    xd, kd, md = data.x, data.keys, data.mult
    if probes is not None:
        qr, qc = np.repeat(np.arange(len(kq)), probes.shape[1]), probes.reshape(-1)
    else:
        _, qr, qc, _ = probe_pairs(p, xq, kq, np.ones(len(kq), bool), threads, True, upper=bq, slack=1.0 + 1e-6)
    # The buckets each query probes, kept if their data is here.
    pr, qb = pair_buckets(p.plan, kq, qr, qc, positions=True)
    slot = np.searchsorted(present, qb)
    here = (slot < len(present)) & (present[np.minimum(slot, len(present) - 1)] == qb)
    pr, slot = pr[here], slot[here]
    qr = qr[pr]
    k = p.k
    # Each searched (query, bucket) pair gets its k nearest in that bucket: row ``i`` of
    # these arrays for pair ``i``, kept entries first in (distance, key) order.
    rows = np.full((len(qr), k), -1, dtype=np.int64)
    dist = np.full((len(qr), k), np.inf)
    takes = np.zeros((len(qr), k), dtype=np.int64)
    searched = np.zeros(len(qr), dtype=bool)

    def search(sel: np.ndarray) -> None:
        """Search the pairs ``sel``, one flat search per bucket."""
        order = sel[np.argsort(slot[sel], kind="stable")]
        sl = slot[order]
        cuts = np.flatnonzero(np.r_[True, sl[1:] != sl[:-1], True]) if len(sl) else np.array([0])
        for a, e in zip(cuts[:-1], cuts[1:]):
            t, ps = sl[a], order[a:e]
            lo, hi = starts[t], ends[t]
            ci, d2, take = search_bucket(xd[lo:hi], kd[lo:hi], md[lo:hi], xq[qr[ps]], kq[qr[ps]], k, BUCKET_EXTRA)
            rows[ps] = np.where(ci >= 0, ci + lo, -1)
            dist[ps] = d2
            takes[ps] = take
        searched[sel] = True

    if probes is not None and len(qr):
        # Approximate mode: each query's nearest probed cell here is searched first; its
        # k-th distance bounds the query's k-th neighbour, and a cell whose bisector
        # with the query's home cell lies beyond that bound cannot hold a closer row.
        n_pairs = np.bincount(qr, minlength=len(kq))
        by_query = np.argsort(qr, kind="stable")
        lead = by_query[(np.cumsum(n_pairs) - n_pairs)[n_pairs > 0]]
        search(lead)
        d2k = np.full(len(kq), np.inf)
        full = takes[lead].sum(1) >= k
        d2k[qr[lead[full]]] = np.where(takes[lead[full]] > 0, dist[lead[full]], -np.inf).max(1)
        rest = np.ones(len(qr), dtype=bool)
        rest[lead] = False
        rest = np.flatnonzero(rest)
        bound = cell_bounds(p.quantizer, xq, probes).reshape(-1)[pr[rest]]
        search(rest[bound <= np.sqrt(d2k[qr[rest]]) * (1.0 + 1e-9) + 1e-12])
    else:
        search(np.arange(len(qr)))
    qi, di, d2, take = merge_pairs(np.flatnonzero(searched), qr, rows, dist, takes, kd, k)
    # A candidate beyond the query's upper bound cannot be among its k nearest.
    near = d2 <= (bq[qi] * (1.0 + 1e-9)) ** 2
    qi, di, d2, take = qi[near], di[near], d2[near], take[near]
    return pd.DataFrame(
        {"qkey": kq[qi], "qcls": cq[qi], "nkey": kd[di], "ncls": data.cls[di], "d2": d2, "mult": take}
    )


def merge_pairs(
    searched: np.ndarray, qr: np.ndarray, rows: np.ndarray, dist: np.ndarray, takes: np.ndarray,
    kd: np.ndarray, k: int,
):
    """Each query's ``k`` nearest over the buckets it was searched in.

    For each searched pair ``i`` (``searched``), ``qr[i]`` is its query and rows ``i``
    of ``rows``, ``dist`` and ``takes`` its ``k`` nearest in that bucket (kept entries
    first, in (distance, key) order; a row is in one bucket per query).  Queries are
    merged in batches of equal pair count, so no batch is padded, and a query searched
    in one bucket only needs no sort.  Returns flat ``(query, data row, d2, copies)`` of
    the kept entries.
    """
    order = searched[np.argsort(qr[searched], kind="stable")]
    q_of = qr[order]  # the query of each pair in ``order``
    starts = np.flatnonzero(np.r_[True, q_of[1:] != q_of[:-1]])
    count = np.diff(np.r_[starts, len(q_of)])
    out = []
    for m in unique_sorted(count):
        first = starts[count == m]
        pairs = order[first[:, None] + np.arange(m)]  # (n, m): the pairs of each query
        r, d, t = (v[pairs].reshape(len(first), m * k) for v in (rows, dist, takes))
        if m > 1:
            key = np.where(r >= 0, kd[np.maximum(r, 0)], np.iinfo(np.int64).max)
            by = np.lexsort((key, d), axis=-1)
            r, d, t = (np.take_along_axis(v, by, axis=1) for v in (r, d, t))
            keep, t, _ = take_k(t, k)
        else:
            keep = t > 0
        i, c = np.nonzero(keep)
        out.append((q_of[first[i]], r[i, c], d[i, c], t[i, c]))
    if not out:
        empty = np.empty(0, np.int64)
        return empty, empty, np.empty(0), empty
    return tuple(np.concatenate(v) for v in zip(*out))


def cell_bounds(q: Quantizer, x: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Lower bounds of the distance from each row ``x`` to any row of each of its probed
    cells (``probes``, home cell first): the distance to the bisector of that cell's
    centroid and the home's (0 for the home cell), since every row sits in the Voronoi
    cell of its home centroid (with a two-level quantizer, a row that is only data is
    in the nearest fine cell of its nearest coarse cell, so the bound is approximate
    for such rows).  Computed in chunks of rows, in float64."""
    out = np.zeros(probes.shape, dtype=np.float64)
    step = max(1, 1_000_000 // max(1, probes.shape[1] * q.centroids.shape[1]))
    for a in range(0, len(x), step):
        pc = probes[a:a + step]
        cen = q.centroids[pc]  # (m, P, d)
        dots = np.einsum("md,mpd->mp", x[a:a + step] - q.center, cen)
        n2 = q.norms2[pc]
        num = n2 - n2[:, :1] - 2.0 * (dots - dots[:, :1])
        gap2 = n2 + n2[:, :1] - 2.0 * np.einsum("md,mpd->mp", cen[:, 0], cen)
        ok = gap2 > 1e-12 * (n2 + n2[:, :1] + 1e-300)
        out[a:a + step] = np.where(ok, np.maximum(num, 0.0) / (2.0 * np.sqrt(np.where(ok, gap2, 1.0))), 0.0)
    out[:, 0] = 0.0
    return out


def search_bucket(xd, kd, md, xq, kq, k, extra):
    """Exact top-``k`` of one bucket for each query (multiplicities counted, never the
    query itself); data rows sorted by key.

    Returns ``(len(xq), k)`` arrays: data row (-1 = none), exact squared distance and
    copies taken, kept entries first in (distance, key) order.
    """
    n_d = len(xd)
    width = min(n_d, k + 1 + extra)
    if width == n_d or n_d * len(xq) <= _BRUTE_PAIRS:
        cand, d2 = brute_candidates(xd, xq, min(n_d, k + 1))
        return compact(cand, d2, md, kd, kq, k)
    center = xd.mean(0)
    xdc = np.ascontiguousarray(xd - center, dtype=np.float32)
    xqc = np.ascontiguousarray(xq - center, dtype=np.float32)
    f32, cand = flat_topk(xdc, xqc, width)
    d2 = pair_d2(xq, xd, cand)
    order = np.lexsort((cand, d2), axis=-1)  # rows are sorted by key: ties by key
    cand = np.take_along_axis(cand, order, axis=1)
    d2 = np.take_along_axis(d2, order, axis=1)
    keep, _, total = take_k(md[cand] - (kd[cand] == kq[:, None]), k)
    # Could a row the float32 search left out (rounding) tie with or beat a kept one?  Then
    # that query is searched again by float64 brute force.
    last = np.where(keep, d2, -np.inf).max(axis=1)
    eta = float32_slack(xqc, xdc)
    bad = np.flatnonzero((last >= f32[:, -1].astype(np.float64) - 2.0 * eta) | (total < k))
    if len(bad):
        bc, bd2 = brute_candidates(xd, xq[bad], min(n_d, k + 1))
        pad = cand.shape[1] - bc.shape[1]
        cand[bad] = np.pad(bc, ((0, 0), (0, pad)), constant_values=0)
        d2[bad] = np.pad(bd2, ((0, 0), (0, pad)), constant_values=np.inf)
    return compact(cand, d2, md, kd, kq, k)


def merge_edges(pdf: pd.DataFrame, p: JoinPayload, threads: int) -> pd.DataFrame:
    edges = merge_partial(pdf, p.k)
    if p.finish is None:
        return edges
    return p.finish(edges, p.finish_args)

