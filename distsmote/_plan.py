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


def allocate_children(n_rows: int, n_new: int, seed: int, class_pos: int) -> np.ndarray:
    """Children per canonical row: ``n_new // n_rows`` each, plus one for a seeded subset.

    The ``n_new % n_rows`` rows that get one extra child are the rows with the smallest
    hash of ``(seed, class, row)``, so the choice is uniform and reproducible.
    """
    base, extra = divmod(int(n_new), int(n_rows))
    counts = np.full(n_rows, base, dtype=np.int64)
    if extra:
        bits = draw_bits(stream_key(seed, "allocate", class_pos), np.arange(n_rows))
        counts[np.argpartition(bits, extra - 1)[:extra]] += 1
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
