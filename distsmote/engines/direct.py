"""Values that an engine's hash partitioning sends to a chosen partition.

``Engine.shuffle_map(..., direct=True)`` gives each value ``0 … n − 1`` of its column a
partition of its own.  Dask and Spark only partition by a hash, so a row is shuffled by
the value whose hash lands in the partition its own value names: a lookup table of
``n`` values, found once per ``n`` by hashing candidate values with the engine's own
function.  Equal values still share a partition whatever the table holds, so the
result never depends on it; only the balance of the tasks does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from distsmote._random import mix64


def destinations(values: np.ndarray, n: int, direct: bool) -> np.ndarray:
    """Partition of each row of a shuffle into ``n`` parts that an engine computes in
    Python: ``values`` itself (direct), else a SplitMix64 hash of the int64 values."""
    values = np.asarray(values, dtype=np.int64)
    if direct:
        return values
    return (mix64(values.view(np.uint64)) % np.uint64(max(1, n))).astype(np.int64)


def first_values(npartitions: int, partition_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """For each partition ``p < npartitions``, the smallest int64 ``v ≥ 0`` with
    ``partition_of([v]) == [p]`` (``partition_of`` maps an array of candidate values to
    their partitions)."""
    n = int(npartitions)
    found, start = np.full(n, -1, np.int64), 0
    while (found < 0).any():
        values = np.arange(start, start + 64 * n, dtype=np.int64)
        parts, first = np.unique(np.asarray(partition_of(values), np.int64), return_index=True)
        missing = found[parts] < 0
        found[parts[missing]] = values[first[missing]]
        start += 64 * n
    return found
