"""Canonical ordering, child allocation and task chunking.

The plan is what makes the output independent of engine and partitioning:

* the rows of each class are put in a canonical order by content (identical rows are
  interchangeable, so their relative order does not matter);
* every row's number of children is fixed from that order and the seed;
* generation tasks cover fixed ranges of the canonical order, whose size depends only
  on the plan, never on how the input was partitioned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distsmote._random import draw_bits, stream_key

#: Target number of synthetic rows produced by one generation task.
ROWS_PER_TASK = 500_000
#: Upper bound on the seed rows one task searches.
SEEDS_PER_TASK = 65_536


def canonical_order(x: np.ndarray) -> np.ndarray:
    """Permutation that sorts rows lexicographically by value (``-0.0`` equals ``0.0``).

    Parameters
    ----------
    x : ndarray of shape (n, d)
        Finite feature values.
    """
    x = np.asarray(x, dtype=np.float64) + 0.0
    if x.shape[1] == 0:
        return np.arange(len(x))
    return np.lexsort(x.T[::-1])


def allocate_children(
    n_rows: int, n_new: int, seed: int, class_pos: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Children per canonical row, summing to exactly ``n_new``: largest remainder.

    Parameters
    ----------
    n_rows : int
        Rows of the class, in canonical order.
    n_new : int
        Synthetic rows to make for the class.
    seed, class_pos : int
        Key of the tie-break stream.
    weights : ndarray of int, optional
        Non-negative integer weight of each row (``None``: all equal, SMOTE's even
        spread).  Row ``i`` gets ``⌊n_new·w_i/W⌋`` children, and the rows with the
        largest remainders ``n_new·w_i mod W`` one more each, ties broken by the
        smallest hash of ``(seed, class, row)``, until the total is ``n_new``.  With
        equal weights this is ``⌊N/m⌋`` each plus one for ``N mod m`` seeded rows.
        Integer arithmetic throughout, so no rounding can change the total.
    """
    w = np.ones(n_rows, dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
    if len(w) != n_rows or (w < 0).any() or (n_new > 0 and w.sum() == 0):
        raise ValueError("weights must be n_rows non-negative integers, not all zero")
    total = int(w.sum()) if n_rows else 1
    if int(n_new) * int(w.max(initial=0)) < 2**62:
        scaled = w * np.int64(n_new)
    else:  # exact big-integer arithmetic, never reached at realistic sizes
        scaled = w.astype(object) * int(n_new)
    counts = (scaled // total).astype(np.int64)
    extra = int(n_new) - int(counts.sum())
    if extra:
        remainder = (scaled % total).astype(np.int64)
        bits = draw_bits(stream_key(seed, "allocate", class_pos), np.arange(n_rows))
        order = np.lexsort((bits, -remainder))  # largest remainder, then smallest hash
        counts[order[:extra]] += 1
    return counts


@dataclass(frozen=True)
class Task:
    """One generation task: canonical rows ``[start, stop)`` of class ``class_pos``."""

    class_pos: int
    start: int
    stop: int


def plan_tasks(children: list[np.ndarray]) -> list[Task]:
    """Cut each class's canonical order into tasks of about ``ROWS_PER_TASK`` children."""
    tasks = []
    for pos, counts in enumerate(children):
        n = len(counts)
        if counts.sum() == 0:
            continue
        ends = np.cumsum(counts)
        start = 0
        while start < n:
            done = ends[start - 1] if start else 0
            stop = int(np.searchsorted(ends, done + ROWS_PER_TASK, side="right"))
            stop = min(max(stop, start + 1), start + SEEDS_PER_TASK, n)
            tasks.append(Task(pos, start, stop))
            start = stop
    return tasks
