"""The distributed kNN join, written once over the engine primitives.

Input: a partitioned *table* of ``(__key, __cls, __mult, f0 … f{d-1})`` rows (see
:func:`prepare_table`).  Output: a partitioned *edge table* with one row per
``(query, rank)``: ``qkey, qcls, rank, nkey, ncls, distance``, all edges of a query in one
partition — or, if a ``finish`` function is given, that function applied to the edges
of complete queries inside the merge task (so a cleaning decision needs no extra
shuffle).

Plan (the driver only ever sees a sample, the centroids and per-cell counts):

1. *Sample.*  Rows whose key hash falls below a threshold: deterministic, independent of
   partitioning.  FAISS k-means on it (canonical key order) gives the cells: ``N / 2048``
   of them in approximate mode (two-level above 256 cells, see
   :mod:`distsmote.neighbors.cells`), ``2·∛N`` in exact mode.  The centroids are
   broadcast.
2. *Cell counts.*  Rows and query probes per cell, estimated from the sample in
   approximate mode; exact mode makes one map + grouped reduction, which also measures
   each cell's radius.  Cells holding too many rows or queries are split into a grid
   of buckets.
3. *Replicate.*  Each row goes to its home cell's bucket as data.  Each query row probes
   its ``nprobe`` nearest cells (approximate mode; the probes travel with the record) or
   every cell that may hold one of its true neighbours (exact mode, see
   :mod:`distsmote.neighbors.cells`).  Buckets are grouped by centroid proximity
   (k-means over the centroids, a group count that depends on the data size only),
   and a query is copied once per *group* it probes, not once per cell.
4. *Search.*  Shuffle by group.  Each bucket is searched with one FAISS flat search
   for the queries probing it, re-ranked with float64 distances, with float64 brute
   force wherever float32 rounding could have hidden a tie; each query keeps its k
   nearest over the task's buckets.
5. *Merge.*  Shuffle by query key; keep the k nearest over all groups.

Ties are broken by key everywhere, so the result does not depend on partitioning,
batch sizes or thread counts.  Duplicates follow :mod:`distsmote.neighbors.keys`: a row
with ``m`` copies has ``m − 1`` neighbours of its own key at distance 0, never itself.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from distsmote._faults import fault_point
from distsmote.engines.base import Engine, empty_frame
from distsmote.neighbors.cells import (
    BucketPlan,
    Quantizer,
    default_cells,
    exact_home,
    exact_probes,
    home_and_probes,
    train_quantizer,
)
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.index import ShippedIndex, load_index, set_threads
from distsmote.neighbors.keys import class_codes, content_keys, key_hash

logger = logging.getLogger("distsmote")

KEY, CLS, MULT = "__key", "__cls", "__mult"
BUCKET, IS_DATA, IS_QUERY, BOUND, PART = "__bucket", "__data", "__query", "__bound", "__part"
PROBE = "__p"
EDGE_COLUMNS = ("qkey", "qcls", "rank", "nkey", "ncls", "distance")
_PARTIAL_COLUMNS = ("qkey", "qcls", "nkey", "ncls", "d2", "mult")

#: Largest number of data rows (and of query rows) one bucket may hold.
MAX_BUCKET_ROWS = 100_000
#: Exact mode: sample rows per cell (at least ``BOUND_SAMPLE_ROWS`` in all) used to
#: bound each query's k-th distance; a larger sample gives tighter bounds, fewer probes.
BOUND_ROWS_PER_CELL = 256
BOUND_SAMPLE_ROWS = 100_000
#: Largest quantizer training sample (rows collected to the driver).
MAX_TRAIN_ROWS = 600_000
#: Approximate mode: sample rows used to estimate per-cell row and probe counts.
ESTIMATE_ROWS = 50_000
#: Buckets this small (data × queries) are searched by float64 brute force.
_BRUTE_PAIRS = 20_000
#: Fewest shuffle groups of the search step (parallelism on small inputs).
MIN_GROUPS = 4
#: Target rows per shuffle partition.
ROWS_PER_PARTITION = 1_000_000
#: Candidates fetched from FAISS beyond k + 1 in a bucket (a query whose candidates
#: could hide a tie or a closer row is searched again by brute force, so this only
#: trades FAISS time against re-searches).
_BUCKET_EXTRA = 2
_SEED = 0x5EED


def feature_names(n_features: int) -> list[str]:
    """Internal feature column names of a join table."""
    return [f"f{j}" for j in range(n_features)]


def table_meta(n_features: int, dtype: Any) -> pd.DataFrame:
    """Empty frame with the columns and dtypes of a join table."""
    return empty_frame({KEY: np.int64, CLS: np.int32, MULT: np.int64, **{f: dtype for f in feature_names(n_features)}})


def edge_meta() -> pd.DataFrame:
    """Empty frame with the columns and dtypes of an edge table."""
    return empty_frame(
        {"qkey": np.int64, "qcls": np.int32, "rank": np.int32, "nkey": np.int64, "ncls": np.int32, "distance": np.float64}
    )


def _partial_meta() -> pd.DataFrame:
    return empty_frame(
        {"qkey": np.int64, "qcls": np.int32, "nkey": np.int64, "ncls": np.int32, "d2": np.float64, "mult": np.int64}
    )


# --------------------------------------------------------------------------- table


@dataclass(frozen=True)
class _KeySpec:
    features: tuple[str, ...]
    label: str
    classes: tuple[Any, ...]
    dtype: str


def _frame_keys(pdf: pd.DataFrame, spec: _KeySpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = pdf[list(spec.features)].to_numpy(dtype=np.float64)
    codes = class_codes(pdf[spec.label], spec.classes, spec.label)
    return values, codes, content_keys(values, codes)


def _prepare(pdf: pd.DataFrame, spec: _KeySpec, threads: int) -> pd.DataFrame:
    values, codes, keys = _frame_keys(pdf, spec)
    uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
    out = pd.DataFrame(values[first].astype(spec.dtype), columns=feature_names(values.shape[1]))
    out.insert(0, MULT, counts.astype(np.int64))
    out.insert(0, CLS, codes[first])
    out.insert(0, KEY, uniq)
    return out


def _keys_only(pdf: pd.DataFrame, spec: _KeySpec) -> np.ndarray:
    return _frame_keys(pdf, spec)[2]


def prepare_table(
    engine: Engine, frame: Any, label: str, features: Sequence[str], classes: Sequence[Any], dtype: Any
) -> Any:
    """The join table of a frame: content key, class code, multiplicity, features.

    Copies of a row within one partition are merged into one table row with their count
    (copies in other partitions are merged later, inside the join).
    """
    spec = _KeySpec(tuple(features), label, tuple(classes), np.dtype(dtype).name)
    meta = table_meta(len(features), dtype)
    return engine.map_partitions(frame, _prepare, engine.broadcast(spec), meta)


def with_row_keys(
    engine: Engine, frame: Any, label: str, features: Sequence[str], classes: Sequence[Any], name: str = KEY
) -> Any:
    """``frame`` plus an int64 column of content keys (same keys as :func:`prepare_table`)."""
    spec = _KeySpec(tuple(features), label, tuple(classes), "float64")
    return engine.add_column(frame, name, _keys_only, engine.broadcast(spec))


# ------------------------------------------------------------------- exact distances


def pair_d2(xq: np.ndarray, xd: np.ndarray) -> np.ndarray:
    """Exact squared distances of ``xq[i]`` to ``xd[i, j]`` (float64, fixed summation order).

    The value for a pair never depends on which other rows are in the batch, so the
    same pair compares equal wherever it is evaluated.
    """
    out = np.zeros(xd.shape[:2])
    cols = np.moveaxis(xd, 2, 0).copy()  # one contiguous (n, w) slice per feature
    for j in range(xq.shape[1]):
        out += (cols[j] - xq[:, None, j]) ** 2
    return out


def _full_d2(xq: np.ndarray, xd: np.ndarray) -> np.ndarray:
    out = np.zeros((len(xq), len(xd)))
    for j in range(xq.shape[1]):
        out += (xd[None, :, j] - xq[:, None, j]) ** 2
    return out


# ----------------------------------------------------------------------- payloads


@dataclass(frozen=True)
class _BoundIndex:
    """Exact mode: a sample searched to bound each query's k-th neighbour distance."""

    keys: np.ndarray  # sorted
    points: np.ndarray  # centred, float64
    index: ShippedIndex


@dataclass(frozen=True)
class _JoinPayload:
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
    bound: _BoundIndex | None = None
    finish: Callable[[pd.DataFrame, Any], pd.DataFrame] | None = None
    finish_args: Any = None


def _table_arrays(pdf: pd.DataFrame, n_features: int):
    x = pdf[feature_names(n_features)].to_numpy(dtype=np.float64)
    return (
        x,
        pdf[KEY].to_numpy(dtype=np.int64),
        pdf[CLS].to_numpy(dtype=np.int32),
        pdf[MULT].to_numpy(dtype=np.int64),
    )


def _upper_bounds(p: _JoinPayload, x: np.ndarray, keys: np.ndarray, threads: int) -> np.ndarray:
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
    d2 = pair_d2(xc, b.points[safe])
    d2[~valid | (b.keys[safe] == keys[:, None])] = np.inf
    d2.sort(axis=1)
    if width < p.k:
        return np.full(n, np.inf)
    return np.sqrt(d2[:, p.k - 1])


def _probe_pairs(
    p: _JoinPayload, x, keys, is_query, threads, use_radius: bool, upper=None, slack: float = 1.0
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
            upper[qrows] = _upper_bounds(p, x[qrows], keys[qrows], threads)
        _, r, c = exact_probes(q, x[qrows], upper[qrows] * slack, use_radius=use_radius)
        return home, qrows[r], c, upper
    upper = np.full(len(x), np.inf)
    if len(qrows) == len(x):
        home, _, sub = home_and_probes(q, x, p.nprobe, threads)
    else:  # rows that are only data need their home cell alone (a cheaper search)
        home = np.empty(len(x), dtype=np.int64)
        others = np.flatnonzero(~is_query)
        home[others] = home_and_probes(q, x[others], 1, threads)[0]
        home[qrows], _, sub = home_and_probes(q, x[qrows], p.nprobe, threads)
    return home, np.repeat(qrows, sub.shape[1]), sub.reshape(-1), upper


def _probe_names(p: _JoinPayload) -> list[str]:
    """Approximate mode: columns carrying a query record's probed cells (home first),
    so the search task need not recompute them."""
    return [] if p.exact else [f"{PROBE}{j}" for j in range(max(1, min(p.nprobe, p.quantizer.n_cells)))]


def _cell_stats(pdf: pd.DataFrame, p: _JoinPayload, threads: int) -> pd.DataFrame:
    """Exact mode: rows, query rows, radius and largest norm per cell of a partition."""
    x, keys, cls, _ = _table_arrays(pdf, p.n_features)
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


def _estimate_probes(p: _JoinPayload, q: Quantizer, sample: pd.DataFrame, n_qrows: int) -> np.ndarray:
    """Exact mode: query copies per cell, estimated on the driver from ≤ 20 000 sample
    rows (only used to split crowded cells, so an estimate suffices)."""
    cls = sample[CLS].to_numpy(np.int32)
    sub = sample.loc[p.query_mask[cls]]
    if len(sub) > 20_000:
        pick = np.argsort(key_hash(sub[KEY].to_numpy(np.int64), _SEED, "plan"), kind="stable")[:20_000]
        sub = sub.iloc[np.sort(pick)]
    if len(sub) == 0:
        return np.zeros(q.n_cells, np.int64)
    x = sub[feature_names(p.n_features)].to_numpy(np.float64)
    keys = sub[KEY].to_numpy(np.int64)
    p = _JoinPayload(p.n_features, p.dtype, True, q, p.nprobe, p.k, p.extra, p.query_mask, bound=p.bound)
    upper = _upper_bounds(p, x, keys, 1)
    _, _, cells = exact_probes(q, x, upper)
    counts = np.bincount(cells, minlength=q.n_cells) * (n_qrows / len(sub))
    return np.ceil(counts).astype(np.int64)


def _measure_cells(engine: Engine, table: Any, p: _JoinPayload, sample: pd.DataFrame):
    """Exact mode: one pass for per-cell rows, query rows and radii (the probes need
    the radii); query copies per cell are estimated from the sample."""
    stats = engine.aggregate(
        engine.map_partitions(table, _cell_stats, engine.broadcast(p), _stats_meta()),
        "cell",
        {"n_data": "sum", "n_qrows": "sum", "r2": "max", "xn2": "max"},
    )
    q = p.quantizer
    C = q.n_cells
    n_data = np.zeros(C, np.int64)
    r2 = np.zeros(C)
    cells = stats["cell"].to_numpy(np.int64)
    n_data[cells] = stats["n_data"].to_numpy(np.int64)
    r2[cells] = stats["r2"].to_numpy(np.float64)
    xn2 = float(stats["xn2"].max()) if len(stats) else 0.0
    q = q.with_stats(np.sqrt(r2), xn2)
    n_qrows = int(stats["n_qrows"].sum())
    return q, n_data, _estimate_probes(p, q, sample, n_qrows), n_qrows


def _estimate_cells(p: _JoinPayload, sample: pd.DataFrame, n_rows: int):
    """Approximate mode: rows and query copies per cell, estimated from ≤ 50 000 sample
    rows and scaled up (they only size the skew splits and shuffle partitions), so the
    join needs no counting pass over the data."""
    if len(sample) > ESTIMATE_ROWS:
        pick = np.argsort(key_hash(sample[KEY].to_numpy(np.int64), _SEED, "plan"), kind="stable")
        sample = sample.iloc[np.sort(pick[:ESTIMATE_ROWS])]
    C = p.quantizer.n_cells
    if len(sample) == 0:
        return np.zeros(C, np.int64), np.zeros(C, np.int64), 0
    x, keys, cls, _ = _table_arrays(sample, p.n_features)
    is_query = p.query_mask[cls]
    home, _, cells, _ = _probe_pairs(p, x, keys, is_query, 1, use_radius=False)
    scale = n_rows / len(sample)
    n_data = np.bincount(home, minlength=C) * scale
    n_query = np.bincount(cells, minlength=C) * scale
    return n_data, n_query, is_query.sum() * scale


def _stats_meta() -> pd.DataFrame:
    return empty_frame({"cell": np.int64, "n_data": np.int64, "n_qrows": np.int64, "r2": np.float64, "xn2": np.float64})


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position) for ``counts[i]`` copies of each i."""
    owner = np.repeat(np.arange(len(counts)), counts)
    pos = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, pos


def _pair_buckets(plan: BucketPlan, keys: np.ndarray, qr: np.ndarray, qc: np.ndarray):
    """(query row, bucket) for each (query row, cell) pair: the query's part of the cell,
    every data part."""
    sd, sq, off = plan.data_splits, plan.query_splits, plan.offsets
    jq = (key_hash(keys[qr], _SEED, "query-part") % sq[qc].astype(np.uint64)).astype(np.int64)
    pr, pi = _expand(sd[qc])
    c = qc[pr]
    return qr[pr], off[c] + pi * sq[c] + jq[pr]


def _replicate(pdf: pd.DataFrame, p: _JoinPayload, threads: int) -> pd.DataFrame:
    """Data records (one per bucket the row's data part belongs to) and query records
    (one per group of buckets the query probes; the search task finds the buckets)."""
    x, keys, cls, mult = _table_arrays(pdf, p.n_features)
    plan = p.plan
    is_query = p.query_mask[cls]
    home, qr, qc, upper = _probe_pairs(p, x, keys, is_query, threads, use_radius=True)
    sd, sq, off = plan.data_splits, plan.query_splits, plan.offsets
    # Data records: part i of the home cell, every query part j.
    i_home = (key_hash(keys, _SEED, "data-part") % sd[home].astype(np.uint64)).astype(np.int64)
    dr, dj = _expand(sq[home])
    d_bucket = off[home[dr]] + i_home[dr] * sq[home[dr]] + dj
    # Query records: one per (query, group).
    r, b = _pair_buckets(plan, keys, qr, qc)
    n_groups = int(p.bucket_group.max(initial=0)) + 1
    pair = np.unique(r * n_groups + p.bucket_group[b])
    r, g = pair // n_groups, pair % n_groups
    r_pos = np.searchsorted(np.flatnonzero(is_query), r)  # row of r among the queries
    rows = np.concatenate([dr, r])
    out = pd.DataFrame(x[rows].astype(p.dtype), columns=feature_names(p.n_features))
    out.insert(0, BOUND, upper[rows])
    out.insert(0, IS_QUERY, np.concatenate([np.zeros(len(dr), bool), np.ones(len(r), bool)]))
    out.insert(0, IS_DATA, np.concatenate([np.ones(len(dr), bool), np.zeros(len(r), bool)]))
    out.insert(0, MULT, mult[rows])
    out.insert(0, CLS, cls[rows])
    out.insert(0, KEY, keys[rows])
    out.insert(0, BUCKET, np.concatenate([d_bucket, np.full(len(r), -1)]).astype(np.int64))
    out.insert(0, PART, np.concatenate([p.bucket_group[d_bucket], g]).astype(np.int64))
    names = _probe_names(p)
    if names:
        probes = np.concatenate([np.full((len(dr), len(names)), -1), qc.reshape(-1, len(names))[r_pos]])
        for j, name in enumerate(names):
            out[name] = probes[:, j].astype(np.int32)
    return out


def _records_meta(p: _JoinPayload) -> pd.DataFrame:
    return empty_frame(
        {
            PART: np.int64, BUCKET: np.int64, KEY: np.int64, CLS: np.int32, MULT: np.int64,
            IS_DATA: bool, IS_QUERY: bool, BOUND: np.float64,
            **{f: p.dtype for f in feature_names(p.n_features)},
            **{name: np.int32 for name in _probe_names(p)},
        }
    )


def _search_buckets(pdf: pd.DataFrame, p: _JoinPayload, threads: int) -> pd.DataFrame:
    """Search every bucket of this partition for the queries that probe it, keeping each
    query's k nearest over those buckets (a combiner before the merge shuffle).

    Each bucket is one FAISS flat (BLAS) search of the queries probing it, centred on
    the bucket; candidates are re-ranked with exact float64 distances (ties by key), and
    a query whose list could hide a tie or a closer row is searched again by float64
    brute force over the bucket.  Each (query, bucket) pair fills ``k`` columns of the
    query's row in fixed-shape arrays, and one sort per row merges the buckets.
    """
    fault_point("join.search")
    x, keys, cls, mult = _table_arrays(pdf, p.n_features)
    bucket = pdf[BUCKET].to_numpy(dtype=np.int64)
    is_data = pdf[IS_DATA].to_numpy(dtype=bool)
    bound = pdf[BOUND].to_numpy(dtype=np.float64)
    # Data, by (bucket, key); copies of a row from several input partitions are merged.
    dm = np.flatnonzero(is_data)
    dm = dm[np.lexsort((keys[dm], bucket[dm]))]
    # Queries, one per key (a query reaches a partition once per group it probes).
    qm = np.flatnonzero(~is_data)
    qm = qm[np.argsort(keys[qm], kind="stable")]
    if len(dm) == 0 or len(qm) == 0:
        return _partial_meta()
    kq = keys[qm]
    first = np.flatnonzero(np.r_[True, kq[1:] != kq[:-1]])
    qm, kq = qm[first], kq[first]
    xq, cq, bq = x[qm], cls[qm], bound[qm]
    db, kd = bucket[dm], keys[dm]
    first = np.flatnonzero(np.r_[True, (db[1:] != db[:-1]) | (kd[1:] != kd[:-1])])
    md = np.add.reduceat(mult[dm], first)
    dm, db, kd = dm[first], db[first], kd[first]
    xd, cd = x[dm], cls[dm]
    starts = np.flatnonzero(np.r_[True, db[1:] != db[:-1]])
    present = db[starts]
    ends = np.r_[starts[1:], len(db)]
    # The buckets each query probes, kept if their data is here: carried by the record
    # (approximate mode) or recomputed, a pure function of the row (exact mode, with the
    # bounds widened so this is a superset of the probes the records were sent for).
    names = _probe_names(p)
    if names:
        probes = pdf[names].to_numpy(np.int64)[qm]
        qr, qc = np.repeat(np.arange(len(kq)), probes.shape[1]), probes.reshape(-1)
    else:
        _, qr, qc, _ = _probe_pairs(p, xq, kq, np.ones(len(kq), bool), threads, True, upper=bq, slack=1.0 + 1e-6)
    qr, qb = _pair_buckets(p.plan, kq, qr, qc)
    slot = np.searchsorted(present, qb)
    here = (slot < len(present)) & (present[np.minimum(slot, len(present) - 1)] == qb)
    qr, slot = qr[here], slot[here]
    order = np.argsort(slot, kind="stable")
    qr, slot = qr[order], slot[order]
    cuts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1], True]) if len(slot) else np.array([0])
    k = p.k
    # Each (query, bucket) pair fills k columns of its query's row of candidates.
    n_pairs = np.bincount(qr, minlength=len(kq))
    width = int(n_pairs.max(initial=0))
    by_query = np.argsort(qr, kind="stable")
    col = np.empty(len(qr), dtype=np.int64)
    col[by_query] = np.arange(len(qr)) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    rows = np.full((len(kq), width * k), -1, dtype=np.int64)
    dist = np.full((len(kq), width * k), np.inf)
    takes = np.zeros((len(kq), width * k), dtype=np.int64)
    set_threads(threads)
    for a, e in zip(cuts[:-1], cuts[1:]):
        t = slot[a]
        qs, cs = qr[a:e], col[a:e][:, None] * k + np.arange(k)
        lo, hi = starts[t], ends[t]
        ci, d2, take = _search_bucket(xd[lo:hi], kd[lo:hi], md[lo:hi], xq[qs], kq[qs], k, _BUCKET_EXTRA)
        rows[qs[:, None], cs] = np.where(ci >= 0, ci + lo, -1)
        dist[qs[:, None], cs] = d2
        takes[qs[:, None], cs] = take
    # Each query's k nearest over its buckets (a row is in one bucket per query).
    key = np.where(rows >= 0, kd[np.maximum(rows, 0)], np.iinfo(np.int64).max)
    order = np.lexsort((key, dist), axis=-1)
    rows, dist, takes = (np.take_along_axis(v, order, axis=1) for v in (rows, dist, takes))
    keep, take, _ = _take_k(takes, k)
    qi, c = np.nonzero(keep)
    di, d2, take = rows[qi, c], dist[qi, c], take[qi, c]
    # A candidate beyond the query's upper bound cannot be among its k nearest.
    near = d2 <= (bq[qi] * (1.0 + 1e-9)) ** 2
    qi, di, d2, take = qi[near], di[near], d2[near], take[near]
    return pd.DataFrame(
        {"qkey": kq[qi], "qcls": cq[qi], "nkey": kd[di], "ncls": cd[di], "d2": d2, "mult": take}
    )


def _search_bucket(xd, kd, md, xq, kq, k, extra):
    """Exact top-``k`` of one bucket for each query (multiplicities counted, never the
    query itself); data rows sorted by key.

    Returns ``(len(xq), k)`` arrays: data row (-1 = none), exact squared distance and
    copies taken, kept entries first in (distance, key) order.
    """
    n_d = len(xd)
    width = min(n_d, k + 1 + extra)
    if width == n_d or n_d * len(xq) <= _BRUTE_PAIRS:
        cand, d2 = _brute_candidates(xd, xq, min(n_d, k + 1))
        return _compact(cand, d2, md, kd, kq, k)
    import faiss

    center = xd.mean(0)
    xdc = np.ascontiguousarray(xd - center, dtype=np.float32)
    xqc = np.ascontiguousarray(xq - center, dtype=np.float32)
    index = faiss.IndexFlatL2(xd.shape[1])
    index.add(xdc)
    f32, cand = index.search(xqc, width)
    cand = cand.astype(np.int64)
    d2 = pair_d2(xq, xd[cand])
    order = np.lexsort((cand, d2), axis=-1)  # rows are sorted by key: ties by key
    cand = np.take_along_axis(cand, order, axis=1)
    d2 = np.take_along_axis(d2, order, axis=1)
    keep, _, total = _take_k(md[cand] - (kd[cand] == kq[:, None]), k)
    # Could a row FAISS left out (float32 rounding) tie with or beat a kept one?  Then
    # that query is searched again by float64 brute force.
    last = np.where(keep, d2, -np.inf).max(axis=1)
    norms = (xqc.astype(np.float64) ** 2).sum(1) + float((xdc.astype(np.float64) ** 2).sum(1).max())
    eta = 1e-5 * norms + 1e-300
    bad = np.flatnonzero((last >= f32[:, -1].astype(np.float64) - 2.0 * eta) | (total < k))
    if len(bad):
        bc, bd2 = _brute_candidates(xd, xq[bad], min(n_d, k + 1))
        pad = cand.shape[1] - bc.shape[1]
        cand[bad] = np.pad(bc, ((0, 0), (0, pad)), constant_values=0)
        d2[bad] = np.pad(bd2, ((0, 0), (0, pad)), constant_values=np.inf)
    return _compact(cand, d2, md, kd, kq, k)


def _compact(cand, d2, md, kd, kq, k):
    """Ordered candidates → the kept ones as ``(n, k)`` arrays (row -1 = none)."""
    eff = np.where(np.isfinite(d2), md[cand] - (kd[cand] == kq[:, None]), 0)
    keep, take, _ = _take_k(eff, k)
    pos = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    kept = np.take_along_axis(keep, pos, 1)
    width = pos.shape[1]
    row = np.where(kept, np.take_along_axis(cand, pos, 1), -1)
    dd = np.where(kept, np.take_along_axis(d2, pos, 1), np.inf)
    tt = np.where(kept, np.take_along_axis(take, pos, 1), 0)
    if width < k:
        pad = ((0, 0), (0, k - width))
        row, dd, tt = np.pad(row, pad, constant_values=-1), np.pad(dd, pad, constant_values=np.inf), np.pad(tt, pad)
    return row, dd, tt


def _take_k(eff: np.ndarray, k: int):
    """Given each ordered candidate's usable copies, which to keep and with what count."""
    cum = np.cumsum(eff, axis=1)
    before = cum - eff
    keep = (eff > 0) & (before < k)
    take = np.minimum(eff, k - before)
    return keep, take, cum[:, -1] if cum.shape[1] else np.zeros(len(eff), np.int64)


def _brute_candidates(xd, xq, width):
    """First ``width`` data rows of each query by (exact d², row); rows sorted by key."""
    cand = np.empty((len(xq), width), dtype=np.int64)
    d2 = np.empty((len(xq), width))
    step = max(1, 2_000_000 // max(1, len(xd)))
    for s in range(0, len(xq), step):
        full = _full_d2(xq[s : s + step], xd)
        order = np.argsort(full, axis=1, kind="stable")[:, :width]  # stable: ties by key
        cand[s : s + step] = order
        d2[s : s + step] = np.take_along_axis(full, order, axis=1)
    return cand, d2


def merge_partial(pdf: pd.DataFrame, k: int) -> pd.DataFrame:
    """Top-``k`` edges per query from partial candidates (complete per query)."""
    qkey = pdf["qkey"].to_numpy(np.int64)
    nkey = pdf["nkey"].to_numpy(np.int64)
    d2 = pdf["d2"].to_numpy(np.float64)
    order = np.lexsort((nkey, d2, qkey))
    qkey, nkey, d2 = qkey[order], nkey[order], d2[order]
    qcls = pdf["qcls"].to_numpy(np.int32)[order]
    ncls = pdf["ncls"].to_numpy(np.int32)[order]
    mult = pdf["mult"].to_numpy(np.int64)[order]
    if len(qkey) == 0:
        return edge_meta()
    start = np.flatnonzero(np.r_[True, qkey[1:] != qkey[:-1]])
    group = np.cumsum(np.r_[True, qkey[1:] != qkey[:-1]]) - 1
    cum = np.cumsum(mult)
    base = (cum - mult)[start][group]
    before = cum - mult - base
    take = np.clip(k - before, 0, mult)
    rows, _ = _expand(take)
    rank = (before[rows] + (np.arange(len(rows)) - np.repeat(np.cumsum(take) - take, take))).astype(np.int32)
    return pd.DataFrame(
        {
            "qkey": qkey[rows],
            "qcls": qcls[rows],
            "rank": rank,
            "nkey": nkey[rows],
            "ncls": ncls[rows],
            "distance": np.sqrt(d2[rows]),
        }
    )


def _merge(pdf: pd.DataFrame, p: _JoinPayload, threads: int) -> pd.DataFrame:
    edges = merge_partial(pdf, p.k)
    if p.finish is None:
        return edges
    return p.finish(edges, p.finish_args)


# ---------------------------------------------------------------------- the join


@dataclass
class JoinInfo:
    """What the planning steps of a join found (for logs and benchmarks)."""

    mode: str
    n_rows: int
    n_cells: int = 0
    n_buckets: int = 0
    sample_rows: int = 0
    data_records: int = 0
    query_records: int = 0  # (query, cell) probes; estimated from the sample in exact mode
    query_rows: int = 0
    max_cell_rows: int = 0
    seconds: dict = field(default_factory=dict)

    @property
    def probes_per_query(self) -> float:
        """Mean cells searched per query row."""
        return self.query_records / self.query_rows if self.query_rows else 0.0


def _bucket_groups(q: Quantizer, plan: BucketPlan, n_groups: int, seed: int) -> np.ndarray:
    """Shuffle group of each bucket: nearby cells share a group, so most of a query's
    probes are searched in one task (fewer query copies, fewer partial edges)."""
    C = q.n_cells
    if n_groups >= C:
        cell_group = np.arange(C, dtype=np.int64)
        n_groups = C
    else:
        import faiss

        cents = np.ascontiguousarray(q.centroids, dtype=np.float32)
        km = faiss.Kmeans(cents.shape[1], n_groups, niter=20, seed=int(seed % (2**31)), verbose=False,
                          min_points_per_centroid=1)
        km.train(cents)
        d2 = ((q.centroids[:, None, :] - km.centroids[None, :, :].astype(np.float64)) ** 2).sum(-1)
        cell_group = d2.argmin(1).astype(np.int64)
    sizes = plan.data_splits * plan.query_splits
    cell, pos = _expand(sizes)
    return ((cell_group[cell] + pos) % n_groups).astype(np.int64)


def resolve_mode(knn: KnnConfig, n_rows: int) -> bool:
    """``True`` for exact mode.  ``"auto"`` is exact up to ``exact_max_rows`` rows."""
    if knn.method == "hnsw":
        raise ValueError(
            "The kNN join behind the cleaning samplers supports knn='auto', 'ivf' "
            "(approximate: k-means cells, nprobe cells per query) and 'exact'. Got 'hnsw'; "
            "use 'ivf' for approximate search."
        )
    if knn.method == "auto":
        return n_rows <= knn.exact_max_rows
    return knn.method == "exact"


def _sample(engine: Engine, table: Any, n_rows: int, target: int, n_features: int, dtype) -> pd.DataFrame:
    fraction = min(1.0, target / max(n_rows, 1))
    threshold = np.uint64(min(2**64 - 1, int(fraction * 2**64)))

    def pick(pdf: pd.DataFrame, thr: np.uint64, threads: int) -> pd.DataFrame:
        keys = pdf[KEY].to_numpy(np.int64)
        return pdf.loc[key_hash(keys, _SEED, "sample") <= thr]

    meta = table_meta(n_features, dtype)
    # Expected target rows; generous cap for the variance (and the driver's safety).
    rows = engine.collect_small(
        engine.map_partitions(table, pick, engine.broadcast(threshold), meta), max_rows=2 * target + 10_000
    )
    rows = rows.sort_values(KEY, kind="stable").drop_duplicates(KEY).reset_index(drop=True)
    return rows


def _bound_index(q: Quantizer, sample: pd.DataFrame, n_features: int, nprobe: int) -> _BoundIndex:
    import faiss

    keys = sample[KEY].to_numpy(np.int64)
    pts = sample[feature_names(n_features)].to_numpy(np.float64) - q.center
    d = pts.shape[1]
    if q.n_cells <= 16 or len(pts) <= 20_000:
        index = faiss.IndexFlatL2(d)
        method = "exact"
    else:
        quant = faiss.IndexFlatL2(d)
        quant.add(np.ascontiguousarray(q.centroids, dtype=np.float32))
        index = faiss.IndexIVFFlat(quant, d, q.n_cells, faiss.METRIC_L2)
        index.own_fields = True
        quant.this.disown()
        method = "ivf"
    index.add(np.ascontiguousarray(pts, dtype=np.float32))
    data = faiss.serialize_index(index).tobytes()
    token = hashlib.blake2b(data, digest_size=16).hexdigest()
    return _BoundIndex(keys, pts, ShippedIndex(token, data, method, max(1, nprobe), 0))


def query_mask(n_classes: int, query_classes: Sequence[int] | None) -> np.ndarray:
    """Boolean mask over class codes: which classes' rows are queries."""
    mask = np.zeros(n_classes, dtype=bool)
    mask[list(range(n_classes)) if query_classes is None else list(query_classes)] = True
    return mask


def plan_cells(
    engine: Engine, table: Any, n_rows: int, n_features: int, dtype: Any, knn: KnnConfig,
    exact: bool, seed: int, info: JoinInfo,
) -> tuple[Quantizer, pd.DataFrame, _BoundIndex | None]:
    """Sample the table, train the cells' quantizer and, in exact mode, the bound index."""
    t0 = time.perf_counter()
    n_cells = default_cells(n_rows, knn.nlist, exact)
    target = min(n_cells * knn.train_rows_per_cell, MAX_TRAIN_ROWS)
    if exact:
        target = max(target, n_cells * BOUND_ROWS_PER_CELL, BOUND_SAMPLE_ROWS)
    sample = _sample(engine, table, n_rows, target, n_features, dtype)
    info.sample_rows = len(sample)
    train_frac = min(1.0, min(n_cells * knn.train_rows_per_cell, MAX_TRAIN_ROWS) / max(len(sample), 1))
    train_pick = key_hash(sample[KEY].to_numpy(np.int64), _SEED, "train") <= np.uint64(
        min(2**64 - 1, int(train_frac * 2**64))
    )
    train = sample.loc[train_pick, feature_names(n_features)].to_numpy(np.float64)
    quantizer = train_quantizer(train, n_cells, knn.kmeans_iter, knn.train_rows_per_cell, seed)
    info.n_cells = quantizer.n_cells
    bound = _bound_index(quantizer, sample, n_features, 8) if exact else None
    info.seconds["sample+kmeans"] = time.perf_counter() - t0
    return quantizer, sample, bound


def knn_join(
    engine: Engine,
    table: Any,
    *,
    k: int,
    n_rows: int,
    n_features: int,
    dtype: Any,
    n_classes: int,
    knn: KnnConfig | None = None,
    query_classes: Sequence[int] | None = None,
    finish: Callable[[pd.DataFrame, Any], pd.DataFrame] | None = None,
    finish_args: Any = None,
    finish_meta: pd.DataFrame | None = None,
    seed: int = 0,
) -> tuple[Any, JoinInfo]:
    """The ``k`` nearest other rows of every query row, as a partitioned edge table.

    Parameters
    ----------
    engine : Engine
    table : frame
        A join table from :func:`prepare_table`.
    k : int
        Neighbours per query.
    n_rows : int
        Rows of the table (from the class counts; sizes the sample and the cells).
    n_features, dtype, n_classes
        Shape of the table: feature count, feature dtype, number of class codes.
    knn : KnnConfig, optional
        ``method`` ``"exact"`` (result equals brute force), ``"ivf"`` (approximate) or
        ``"auto"`` (exact up to ``exact_max_rows`` rows); ``nlist`` (cells, default
        ``√N``, or ``2·∛N`` in exact mode), ``join_nprobe``, ``train_rows_per_cell``, ``kmeans_iter`` and
        ``rerank_extra`` are used.
    query_classes : sequence of int, optional
        Class codes whose rows are queries (default: all rows).  Every row is data.
    finish : callable, optional
        ``finish(edges, finish_args) -> frame`` applied in the merge task to the
        complete edges of the queries it holds; ``finish_meta`` gives its output schema.
    seed : int
        Seed of the quantizer sample and k-means.

    Returns
    -------
    frame, JoinInfo
        The lazy edge table (or ``finish`` output) and planning facts.
    """
    knn = knn or KnnConfig()
    exact = resolve_mode(knn, n_rows)
    info = JoinInfo(mode="exact" if exact else "approximate", n_rows=n_rows)
    mask = query_mask(n_classes, query_classes)
    quantizer, sample, bound = plan_cells(engine, table, n_rows, n_features, dtype, knn, exact, seed, info)

    t0 = time.perf_counter()
    dtype = np.dtype(dtype).name
    payload = _JoinPayload(
        n_features, dtype, exact, quantizer, knn.join_nprobe, k, knn.rerank_extra, mask, bound=bound
    )
    if exact:
        quantizer, n_data, n_query, n_qrows = _measure_cells(engine, table, payload, sample)
        plan = BucketPlan.from_counts(n_data, n_query, MAX_BUCKET_ROWS)
    else:
        n_data, n_query, n_qrows = _estimate_cells(payload, sample, n_rows)
        # Generous (×1.5 + 1): an under-estimate would make a bucket bigger than planned.
        plan = BucketPlan.from_counts(n_data * 1.5 + 1, n_query * 1.5 + 1, MAX_BUCKET_ROWS)
    info.n_buckets = plan.n_buckets
    info.data_records = int(round((n_data * plan.query_splits).sum()))
    info.query_records = int(round(n_query.sum()))
    info.query_rows = int(round(n_qrows))
    info.max_cell_rows = int(round(n_data.max(initial=0)))
    info.seconds["cell stats"] = time.perf_counter() - t0
    payload = _JoinPayload(
        n_features, dtype, exact, quantizer, knn.join_nprobe, k, knn.rerank_extra, mask,
        plan=plan, bound=bound, finish=finish, finish_args=finish_args,
    )
    base = max(1, engine.num_partitions(table))
    # Query records: at most one per probed bucket, usually far fewer (one per group).
    n_records = info.data_records + int((n_query * plan.data_splits).sum())
    # Sized by the data alone, so task memory does not depend on the input partitioning.
    parts = min(plan.n_buckets, max(MIN_GROUPS, math.ceil(n_records / ROWS_PER_PARTITION)))
    payload = replace(payload, bucket_group=_bucket_groups(quantizer, plan, parts, seed))
    handle = engine.broadcast(payload)
    records = engine.map_partitions(table, _replicate, handle, _records_meta(payload))
    partial = engine.shuffle_map(records, PART, _search_buckets, handle, _partial_meta(), parts)
    n_edges = info.query_records * (k + 1)
    parts = max(base, math.ceil(n_edges / ROWS_PER_PARTITION))
    out_meta = finish_meta if finish is not None else edge_meta()
    out = engine.shuffle_map(partial, "qkey", _merge, handle, out_meta, parts)
    logger.info(
        "kNN join (%s, k=%d): %d cells, %d buckets, %.2f probes per query, sample %d rows",
        info.mode, k, info.n_cells, info.n_buckets, info.probes_per_query, info.sample_rows,
    )
    return out, info
