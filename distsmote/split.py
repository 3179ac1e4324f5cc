"""A deterministic, optionally stratified train/test split on pandas, Dask or Spark.

Which side a row lands on is decided by a 64-bit hash of its *content* (the values of
all of its columns, label included) and the seed, never by partition number, row
order or engine.  The rows of each class with the smallest hashes form the test side,
so the test count of every class is exactly ``round(test_fraction * n_class)`` (half
up), and the same table gives the same split on every engine and partitioning.

The threshold of each class is found without collecting the table:

1. one aggregation counts rows per ``(class, hash bucket)`` (a histogram of at most
   ``2**16`` buckets per class);
2. the bucket holding each class's boundary is scanned again, and only the *distinct
   hashes* of that bucket with their multiplicities reach the driver (about
   ``n_class / buckets`` values);
3. the output frames are built lazily: a side column per row, then an anti-join on it.

Identical rows share a hash.  When such a group straddles a class's boundary, the
group is taken out of both sides, one copy of it is fetched by aggregation, and the
required number of copies is regenerated on each side, so counts stay exact and the
output multisets do not depend on which physical copy went where.

Hashing: numeric and boolean columns are hashed by their value as float64 (so an int
column and the same values read back as float hash alike; ``-0.0`` equals ``0.0`` and
every NaN/null is one value), other columns by their text (UTF-8) with nulls as one
value.  Columns are visited in sorted name order.  Two different rows of a class share
a hash with probability about ``n**2 / 2**64``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from distsmote._random import mix64, stream_key
from distsmote.engines import engine_for
from distsmote.neighbors.keys import class_codes, key_hash

__all__ = ["train_test_split"]

_HASH = "__distsmote_split_hash"
_GROUP = "__distsmote_split_group"
_ONE = "__distsmote_split_one"
_KEY = "__distsmote_split_key"
_SIDE = "__distsmote_split_side"
_HELPERS = (_HASH, _GROUP, _ONE, _KEY, _SIDE)

_TRAIN, _TEST, _SPLIT_GROUP = 0, 1, 2
_CONTENT = stream_key(0, "distsmote-split-content")
_NULL_TEXT = np.uint64(0x6A09E667F3BCC908)


# -- row hashes (run inside tasks) ---------------------------------------------------


def _column_bits(col: pd.Series) -> np.ndarray:
    """64 bits per value of one column, identical for equal values on every engine."""
    dtype = getattr(col.dtype, "numpy_dtype", col.dtype)
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        kind = "O"
    if kind in "iufb":
        x = col.to_numpy(dtype=np.float64, na_value=np.nan) + 0.0
        x[np.isnan(x)] = np.nan  # one NaN bit pattern
        return np.ascontiguousarray(x).view(np.uint64)
    null = col.isna().to_numpy()
    text = np.asarray([str(v) for v in col.astype(object).to_numpy()], dtype=object)
    bits = pd.util.hash_array(text, categorize=True).astype(np.uint64)
    bits[null] = _NULL_TEXT
    return bits


def _row_hash(pdf: pd.DataFrame, payload: dict) -> np.ndarray:
    """The split hash of each row: 63 bits (a non-negative int64)."""
    h = np.full(len(pdf), _CONTENT, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in payload["columns"]:
            h = mix64(h ^ _column_bits(pdf[name]))
    u = key_hash(h.view(np.int64), payload["seed"], "train-test-split")
    return (u >> np.uint64(1)).view(np.int64)


def _codes(pdf: pd.DataFrame, payload: dict) -> np.ndarray:
    if payload["classes"] is None:
        return np.zeros(len(pdf), dtype=np.int64)
    return class_codes(pdf[payload["label"]], payload["classes"], payload["label"]).astype(np.int64)


def _group(pdf: pd.DataFrame, payload: dict) -> np.ndarray:
    """``class code << bits | bucket`` of each row (the histogram's group)."""
    bucket = pdf[_HASH].to_numpy(np.int64) >> (63 - payload["bits"])
    return (_codes(pdf, payload) << payload["bits"]) | bucket


def _ones(pdf: pd.DataFrame, payload: Any) -> np.ndarray:
    return np.ones(len(pdf), dtype=np.int64)


def _decode(pdf: pd.DataFrame, payload: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = pdf[_GROUP].to_numpy(np.int64)
    bits = payload["bits"]
    return g >> bits, g & ((1 << bits) - 1), pdf[_HASH].to_numpy(np.int64)


def _boundary_key(pdf: pd.DataFrame, payload: dict) -> np.ndarray:
    """The hash of rows in their class's boundary bucket, ``-1`` for every other row."""
    code, bucket, h = _decode(pdf, payload)
    return np.where(bucket == payload["bucket"][code], h, -1)


def _side(pdf: pd.DataFrame, payload: dict) -> np.ndarray:
    """0 (train), 1 (test) or 2 (a group of identical rows split by regeneration)."""
    code, bucket, h = _decode(pdf, payload)
    cb, ch, split = payload["bucket"][code], payload["hash"][code], payload["split"][code]
    at = np.where(h < ch, _TEST, np.where(h > ch, _TRAIN, np.where(split, _SPLIT_GROUP, _TEST)))
    return np.where(bucket < cb, _TEST, np.where(bucket > cb, _TRAIN, at)).astype(np.int64)


def _split_group_key(pdf: pd.DataFrame, payload: dict) -> np.ndarray:
    return np.where(pdf[_SIDE].to_numpy(np.int64) == _SPLIT_GROUP, pdf[_HASH].to_numpy(np.int64), -1)


def _side_rows(task: Sequence[int], payload: Any, threads: int) -> pd.DataFrame:
    return pd.DataFrame({_SIDE: np.asarray(task, dtype=np.int64)})


def _copies(task: tuple[int, int], payload: pd.DataFrame, threads: int) -> pd.DataFrame:
    """``count`` copies of the representative row with split hash ``hash``."""
    h, count = task
    row = payload[payload[_KEY] == h].drop(columns=[_KEY])
    return row.loc[row.index.repeat(count)].reset_index(drop=True)


# -- planning on the driver ----------------------------------------------------------


def _validate(columns: Sequence[str], label: str, test_fraction: Any, seed: Any) -> None:
    if label not in columns:
        raise ValueError(
            f"Label column {label!r} is not in the table; its columns are {list(columns)}. "
            "Pass the name of the class column as label."
        )
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, (int, float, np.integer, np.floating))
        or not 0.0 < float(test_fraction) < 1.0
    ):
        raise ValueError(
            f"test_fraction must be a number strictly between 0 and 1 (e.g. 0.2). Got {test_fraction!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer. Got {seed!r}.")
    clash = sorted(set(columns) & set(_HELPERS))
    if clash:
        raise ValueError(f"Column {clash[0]!r} is reserved by train_test_split; rename it.")


def _test_count(test_fraction: float, n: int) -> int:
    """``round(test_fraction * n)``, halves rounded up."""
    return int(math.floor(test_fraction * n + 0.5))


def _plan_buckets(hist: pd.DataFrame, targets: dict[int, int], bits: int) -> tuple[dict, dict]:
    """Per class: the bucket holding the boundary and how many rows of it go to test."""
    code = hist[_GROUP].to_numpy(np.int64) >> bits
    bucket = hist[_GROUP].to_numpy(np.int64) & ((1 << bits) - 1)
    n = hist[_ONE].to_numpy(np.int64)
    boundary, need = {}, {}
    for c, t in targets.items():
        mine = code == c
        b, cnt = bucket[mine], n[mine]
        order = np.argsort(b)
        b, cnt = b[order], cnt[order]
        total = int(cnt.sum())
        if t <= 0:
            boundary[c] = -1  # every bucket is above: all train
        elif t >= total:
            boundary[c] = 1 << bits  # every bucket is below: all test
        else:
            cum = np.cumsum(cnt)
            i = int(np.searchsorted(cum, t))  # first bucket with cum >= t
            boundary[c] = int(b[i])
            need[c] = t - (int(cum[i - 1]) if i else 0)
    return boundary, need


def _plan_hashes(
    counts: pd.DataFrame, boundary: dict, need: dict, bits: int
) -> tuple[dict, dict]:
    """Per class: the boundary hash, and ``(test copies, train copies)`` of a split group."""
    keys = counts[_KEY].to_numpy(np.int64)
    n = counts[_ONE].to_numpy(np.int64)
    code = counts[_GROUP].to_numpy(np.int64) >> bits
    cut, split = {}, {}
    for c, r in need.items():
        mine = (keys >= 0) & (code == c)
        h, m = keys[mine], n[mine]
        order = np.argsort(h)
        h, m = h[order], m[order]
        cum = np.cumsum(m)
        i = int(np.searchsorted(cum, r))
        below = int(cum[i - 1]) if i else 0
        j = r - below  # copies of the group at the boundary hash that go to test
        cut[c] = int(h[i])
        if j < int(m[i]):
            split[c] = (int(h[i]), j, int(m[i]) - j)
    return cut, split


def train_test_split(
    frame: Any,
    label: str,
    test_fraction: float,
    *,
    stratify: bool = True,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Split a table into train and test sides by a content hash, lazily on its engine.

    Parameters
    ----------
    frame : pandas, Dask or Spark DataFrame
        The table; the result is the same kind of frame, with the same columns.
    label : str
        The class column.
    test_fraction : float
        Share of rows for the test side, strictly between 0 and 1.
    stratify : bool, default True
        Take ``round(test_fraction * n_class)`` rows of every class (halves rounded
        up); otherwise ``round(test_fraction * n_rows)`` rows overall.
    seed : int, default 0
        Different seeds give different, independent splits.

    Returns
    -------
    train, test : frames of the input's type
        Disjoint; together they hold every input row exactly once (as multisets).
        The same rows, seed and fraction give the same sides on every engine and
        partitioning.

    Raises
    ------
    ValueError
        If ``label`` is missing, ``test_fraction`` is outside (0, 1), the seed is
        invalid, or (stratified) some labels are missing.
    """
    engine = engine_for(frame)
    columns = list(engine.columns(frame))
    _validate(columns, label, test_fraction, seed)
    test_fraction = float(test_fraction)

    stats = engine.label_stats(frame, label, [])
    if stratify:
        if stats.null_labels:
            raise ValueError(
                f"Label column {label!r} has {stats.null_labels} missing values; a stratified "
                "split needs a class for every row. Drop or fill them, or pass stratify=False."
            )
        classes: list | None = list(stats.counts)
        targets = {i: _test_count(test_fraction, stats.counts[c]) for i, c in enumerate(classes)}
        n_rows = sum(stats.counts.values())
    else:
        classes = None
        n_rows = sum(stats.counts.values()) + stats.null_labels
        targets = {0: _test_count(test_fraction, n_rows)}
    bits = int(min(16, max(1, math.ceil(math.log2(max(n_rows, 2) / 512)))))
    payload = {"seed": int(seed), "label": label, "columns": sorted(columns), "classes": classes, "bits": bits}

    hashed = engine.add_column(frame, _HASH, _row_hash, engine.broadcast(payload))
    grouped = engine.add_column(hashed, _GROUP, _group, engine.broadcast(payload))
    nothing = engine.broadcast(None)
    counted = engine.add_column(grouped, _ONE, _ones, nothing)
    hist = engine.aggregate(counted, _GROUP, {_ONE: "sum"})  # one row per (class, bucket)
    boundary, need = _plan_buckets(hist, targets, bits)

    n_codes = len(targets)
    plan = dict(payload)
    plan["bucket"] = np.array([boundary[c] for c in range(n_codes)], dtype=np.int64)
    cut, split = {}, {}
    if need:
        keyed = engine.add_column(counted, _KEY, _boundary_key, engine.broadcast(plan))
        # One row per distinct hash of the boundary buckets, plus one for all others.
        counts = engine.aggregate(keyed, _KEY, {_ONE: "sum", _GROUP: "max"})
        cut, split = _plan_hashes(counts, boundary, need, bits)
    plan["hash"] = np.array([cut.get(c, -1) for c in range(n_codes)], dtype=np.int64)
    plan["split"] = np.array([c in split for c in range(n_codes)], dtype=bool)

    tagged = engine.add_column(grouped, _SIDE, _side, engine.broadcast(plan))
    side_like = engine.drop(tagged, [c for c in columns] + [_HASH, _GROUP])
    helpers = [_HASH, _GROUP, _SIDE]

    def keep(side: int) -> Any:
        others = [s for s in (_TRAIN, _TEST, _SPLIT_GROUP) if s != side]
        keys = engine.generate(_side_rows, [others], nothing, side_like)
        return engine.drop(engine.anti_join(tagged, keys, _SIDE), helpers)

    train, test = keep(_TRAIN), keep(_TEST)
    if split:
        # Identical rows straddle a boundary: fetch one copy per group, regenerate them.
        grouped_key = engine.add_column(tagged, _KEY, _split_group_key, nothing)
        reps = engine.aggregate(grouped_key, _KEY, {c: "min" for c in columns})
        reps = reps[reps[_KEY] >= 0].reset_index(drop=True)
        handle = engine.broadcast(reps)
        test_tasks = [(h, j) for h, j, _ in split.values() if j]
        train_tasks = [(h, k) for h, _, k in split.values() if k]
        test = engine.union([test, engine.generate(_copies, test_tasks, handle, test)])
        train = engine.union([train, engine.generate(_copies, train_tasks, handle, train)])
    return train, test
