"""Exact float64 distances and top-k selection with multiplicities.

Every kernel here sums squared differences in a fixed order, so a pair's distance never
depends on the batch it is evaluated in, and orders candidates by (distance, key): the
neighbours chosen do not depend on partitioning, batch sizes or thread counts.  A row
with ``m`` copies counts as ``m`` neighbours (``m − 1`` for its own query).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from distsmote.neighbors.table import edge_meta


def pair_d2(xq: np.ndarray, xd: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Exact squared distances of ``xq[i]`` to ``xd[idx[i, j]]`` (float64, fixed summation
    order).

    The value for a pair never depends on which other rows are in the batch, so the
    same pair compares equal wherever it is evaluated (here, in :func:`full_d2` or in
    another task).  One feature at a time: a gather from that feature's column.
    """
    out = np.zeros(idx.shape)
    # A small table is transposed once (contiguous columns); a large one is read in place.
    cols = xd.T if len(xd) > idx.size else np.ascontiguousarray(xd.T)
    for j in range(xq.shape[1]):
        out += (cols[j][idx] - xq[:, j, None]) ** 2
    return out


def full_d2(xq: np.ndarray, xd: np.ndarray) -> np.ndarray:
    out = np.zeros((len(xq), len(xd)))
    for j in range(xq.shape[1]):
        out += (xd[None, :, j] - xq[:, None, j]) ** 2
    return out


#: Bound on the rounding of a float32 squared distance, relative to the squared norms
#: involved (generous: a few float32 ulps of them would do).
FLOAT32_ROUNDING = 1e-5


def float32_slack(xq32: np.ndarray, xd32: np.ndarray) -> np.ndarray:
    """Per query, a bound on the float32 rounding error of a squared distance to any
    row of ``xd32`` (:data:`FLOAT32_ROUNDING` of the squared norms involved)."""
    norms = (xq32.astype(np.float64) ** 2).sum(1) + float((xd32.astype(np.float64) ** 2).sum(1).max(initial=0.0))
    return FLOAT32_ROUNDING * norms + 1e-300


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position) for ``counts[i]`` copies of each i."""
    if (counts == 1).all():  # one copy each (e.g. no cell split): no repeat needed
        return np.arange(len(counts)), np.zeros(len(counts), dtype=np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    pos = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, pos


def compact(cand, d2, md, kd, kq, k):
    """Ordered candidates → the kept ones as ``(n, k)`` arrays (row -1 = none)."""
    eff = np.where(np.isfinite(d2), md[cand] - (kd[cand] == kq[:, None]), 0)
    keep, take, _ = take_k(eff, k)
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


def take_k(eff: np.ndarray, k: int):
    """Given each ordered candidate's usable copies, which to keep and with what count."""
    cum = np.cumsum(eff, axis=1)
    before = cum - eff
    keep = (eff > 0) & (before < k)
    take = np.minimum(eff, k - before)
    return keep, take, cum[:, -1] if cum.shape[1] else np.zeros(len(eff), np.int64)


def brute_candidates(xd, xq, width):
    """First ``width`` data rows of each query by (exact d², row); rows sorted by key."""
    cand = np.empty((len(xq), width), dtype=np.int64)
    d2 = np.empty((len(xq), width))
    step = max(1, 2_000_000 // max(1, len(xd)))
    for s in range(0, len(xq), step):
        full = full_d2(xq[s : s + step], xd)
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
    rows, _ = expand(take)
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

