"""Skew splits: a crowded cell of the kNN join becomes a grid of buckets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BucketPlan:
    """How cells are split into buckets so that no bucket holds too many rows.

    Cell ``c`` becomes a grid of ``data_splits[c] × query_splits[c]`` buckets: its data
    rows are spread over the data parts and its queries over the query parts by key
    hash, and bucket ``(i, j)`` searches query part ``j`` against data part ``i``.
    """

    data_splits: np.ndarray
    query_splits: np.ndarray
    offsets: np.ndarray

    @property
    def n_buckets(self) -> int:
        return int((self.data_splits * self.query_splits).sum())

    @classmethod
    def from_counts(cls, n_data: np.ndarray, n_query: np.ndarray, max_rows: int) -> "BucketPlan":
        max_rows = max(1, int(max_rows))
        sd = np.maximum(1, np.ceil(np.asarray(n_data) / max_rows)).astype(np.int64)
        sq = np.maximum(1, np.ceil(np.asarray(n_query) / max_rows)).astype(np.int64)
        sizes = sd * sq
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return cls(sd, sq, offsets)
