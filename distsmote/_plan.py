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


# -- even allocation by content key (SMOTE) -------------------------------------------
#
# SMOTE's rows are keyed by content (:mod:`distsmote.neighbors.keys`): the copies of a
# row share a key and are one point with a multiplicity.  Every copy gets ``⌊N/n⌋``
# children and the ``N mod n`` copies with the smallest score ``(hash, key, copy)`` one
# more.  The score depends only on content, so the driver (all keys in memory) and the
# distributed path (a histogram of the hashes, then one bin) choose the same copies.

#: Histogram bins of the distributed selection: the top ``HIST_BITS`` bits of a hash.
HIST_BITS = 16


def copy_scores(seed: int, class_pos: int, keys: np.ndarray, mult: np.ndarray):
    """The score ``(hash, key, copy)`` of every copy of every key, and its owner.

    Parameters
    ----------
    seed, class_pos : int
        Key of the allocation stream.
    keys : ndarray of int64
        Content keys, one per point.
    mult : ndarray of int64
        Copies of each point.

    Returns
    -------
    hashes : ndarray of uint64
    copy_keys : ndarray of int64
    copy : ndarray of int64
        Copy number within its key, from 0.
    owner : ndarray of int64
        Position of the copy's key in ``keys``.
    """
    mult = np.asarray(mult, dtype=np.int64)
    owner = np.repeat(np.arange(len(mult)), mult)
    copy = np.arange(len(owner)) - np.repeat(np.cumsum(mult) - mult, mult)
    copy_keys = np.asarray(keys, dtype=np.int64)[owner]
    hashes = draw_bits(stream_key(seed, "allocate-key", class_pos), copy_keys.view(np.uint64), copy)
    return hashes, copy_keys, copy, owner


def nth_score(hashes: np.ndarray, keys: np.ndarray, copy: np.ndarray, n: int) -> tuple[int, int, int]:
    """The ``n``-th smallest score (1-based) among these copies, as ``(hash, key, copy)``."""
    order = np.lexsort((copy, keys, hashes))
    i = order[n - 1]
    return int(hashes[i]), int(keys[i]), int(copy[i])


def at_most(hashes: np.ndarray, keys: np.ndarray, copy: np.ndarray, threshold: tuple[int, int, int]) -> np.ndarray:
    """Whether each score is at most ``threshold`` (lexicographic order)."""
    h, k, c = threshold
    h = np.uint64(h)
    return (hashes < h) | ((hashes == h) & ((keys < k) | ((keys == k) & (copy <= c))))


def keyed_children(
    keys: np.ndarray, mult: np.ndarray, n_new: int, n_rows: int, seed: int, class_pos: int,
    threshold: tuple[int, int, int] | None,
) -> np.ndarray:
    """Children of each point: ``⌊N/n⌋`` per copy, one more per copy scoring at most
    ``threshold`` (``None``: no extra children, ``N`` is a multiple of ``n``)."""
    mult = np.asarray(mult, dtype=np.int64)
    counts = mult * (int(n_new) // int(n_rows))
    if threshold is not None and len(keys):
        hashes, copy_keys, copy, owner = copy_scores(seed, class_pos, keys, mult)
        extra = at_most(hashes, copy_keys, copy, threshold)
        counts = counts + np.bincount(owner[extra], minlength=len(keys))
    return counts.astype(np.int64)


def even_keyed_children(keys: np.ndarray, mult: np.ndarray, n_new: int, seed: int, class_pos: int) -> np.ndarray:
    """:func:`keyed_children` with the threshold chosen here, from every copy (driver)."""
    n_rows = int(np.sum(mult))
    extra = int(n_new) % n_rows if n_rows else 0
    threshold = None
    if extra:
        hashes, copy_keys, copy, _ = copy_scores(seed, class_pos, keys, mult)
        threshold = nth_score(hashes, copy_keys, copy, extra)
    return keyed_children(keys, mult, n_new, n_rows, seed, class_pos, threshold)
