"""Planning of the kNN joins, on the driver: sample, cells, counts and groups.

The driver only ever sees a deterministic sample (rows whose key hash falls below a
threshold, independent of partitioning), the quantizer trained on it, per-cell counts
(exact mode: one grouped reduction; approximate mode: estimated from the sample) and
the small plan derived from them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from distsmote.engines.base import Engine
from distsmote.neighbors import faiss_ops
from distsmote.neighbors.buckets import BucketPlan
from distsmote.neighbors.cells import Quantizer, default_cells, train_quantizer
from distsmote.neighbors.exact_cells import exact_probes
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.exact import expand
from distsmote.neighbors.keys import key_hash
from distsmote.neighbors.probes import BoundIndex, JoinPayload, cell_stats, probe_pairs, stats_meta, upper_bounds
from distsmote.neighbors.table import CLS, HASH_SEED, KEY, TableSource, feature_names, table_arrays, table_meta

#: Exact mode: sample rows per cell (at least ``BOUND_SAMPLE_ROWS`` in all) used to
#: bound each query's k-th distance; a larger sample gives tighter bounds, fewer probes.
BOUND_ROWS_PER_CELL = 256
BOUND_SAMPLE_ROWS = 100_000
#: Exact mode: cells of the bound sample searched per query.  Any sample rows give a
#: valid bound; 2 cells instead of 8 give slightly looser bounds (SMOTEENN at 200 000
#: rows: 11.6 probes per query instead of 10.9) for a quarter of the bound search, and
#: the join is 14-19 % faster in all.
BOUND_NPROBE = 2
#: Largest quantizer training sample (rows collected to the driver).
MAX_TRAIN_ROWS = 600_000
#: Approximate mode: sample rows used to estimate per-cell row and probe counts.
ESTIMATE_ROWS = 50_000
#: Target rows per shuffle partition.
ROWS_PER_PARTITION = 1_000_000


def estimate_probes(p: JoinPayload, q: Quantizer, sample: pd.DataFrame, n_qrows: int) -> np.ndarray:
    """Exact mode: query copies per cell, estimated on the driver from ≤ 20 000 sample
    rows (only used to split crowded cells, so an estimate suffices)."""
    cls = sample[CLS].to_numpy(np.int32)
    sub = sample.loc[p.query_mask[cls]]
    if len(sub) > 20_000:
        pick = np.argsort(key_hash(sub[KEY].to_numpy(np.int64), HASH_SEED, "plan"), kind="stable")[:20_000]
        sub = sub.iloc[np.sort(pick)]
    if len(sub) == 0:
        return np.zeros(q.n_cells, np.int64)
    x = sub[feature_names(p.n_features)].to_numpy(np.float64)
    keys = sub[KEY].to_numpy(np.int64)
    p = JoinPayload(p.n_features, p.dtype, True, q, p.nprobe, p.k, p.extra, p.query_mask, bound=p.bound)
    upper = upper_bounds(p, x, keys, 1)
    _, _, cells = exact_probes(q, x, upper)
    counts = np.bincount(cells, minlength=q.n_cells) * (n_qrows / len(sub))
    return np.ceil(counts).astype(np.int64)


def measure_cells(engine: Engine, table: Any, p: JoinPayload, sample: pd.DataFrame):
    """Exact mode: one pass for per-cell rows, query rows and radii (the probes need
    the radii); query copies per cell are estimated from the sample."""
    stats = engine.aggregate(
        engine.map_partitions(table, cell_stats, engine.broadcast(p), stats_meta()),
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
    return q, n_data, estimate_probes(p, q, sample, n_qrows), n_qrows


def estimate_cells(p: JoinPayload, sample: pd.DataFrame, n_rows: int):
    """Approximate mode: rows and query copies per cell, estimated from ≤ 50 000 sample
    rows and scaled up (they only size the skew splits and shuffle partitions), so the
    join needs no counting pass over the data."""
    if len(sample) > ESTIMATE_ROWS:
        pick = np.argsort(key_hash(sample[KEY].to_numpy(np.int64), HASH_SEED, "plan"), kind="stable")
        sample = sample.iloc[np.sort(pick[:ESTIMATE_ROWS])]
    C = p.quantizer.n_cells
    if len(sample) == 0:
        return np.zeros(C, np.int64), np.zeros(C, np.int64), 0
    x, keys, cls, _ = table_arrays(sample, p.n_features)
    is_query = p.query_mask[cls]
    home, _, cells, _ = probe_pairs(p, x, keys, is_query, 1, use_radius=False)
    scale = n_rows / len(sample)
    n_data = np.bincount(home, minlength=C) * scale
    n_query = np.bincount(cells, minlength=C) * scale
    return n_data, n_query, is_query.sum() * scale


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


def bucket_groups(q: Quantizer, plan: BucketPlan, n_groups: int, seed: int) -> np.ndarray:
    """Shuffle group of each bucket: nearby cells share a group, so most of a query's
    probes are searched in one task (fewer query copies, fewer partial edges)."""
    C = q.n_cells
    if n_groups >= C:
        cell_group = np.arange(C, dtype=np.int64)
        n_groups = C
    else:
        groups = faiss_ops.kmeans(q.centroids, n_groups, 20, seed, min_points_per_centroid=1).astype(np.float64)
        d2 = ((q.centroids[:, None, :] - groups[None, :, :]) ** 2).sum(-1)
        cell_group = d2.argmin(1).astype(np.int64)
    sizes = plan.data_splits * plan.query_splits
    cell, pos = expand(sizes)
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


def sample_table(
    engine: Engine, table: Any, n_rows: int, target: int, n_features: int, dtype, source: TableSource | None = None
) -> pd.DataFrame:
    """About ``target`` distinct rows of ``table`` whose key hash falls below a
    threshold (deterministic, independent of partitioning), sorted by key.

    With the table's ``source``, the same rows are made from the frame directly.
    """
    fraction = min(1.0, target / max(n_rows, 1))
    threshold = np.uint64(min(2**64 - 1, int(fraction * 2**64)))

    def pick(pdf: pd.DataFrame, thr: np.uint64, threads: int) -> pd.DataFrame:
        keys = pdf[KEY].to_numpy(np.int64)
        return pdf.loc[key_hash(keys, HASH_SEED, "sample") <= thr]

    if source is not None:
        picked = source.sampled(engine, threshold)
    else:
        picked = engine.map_partitions(table, pick, engine.broadcast(threshold), table_meta(n_features, dtype))
    # Expected target rows; generous cap for the variance (and the driver's safety).
    rows = engine.collect_small(picked, max_rows=2 * target + 10_000)
    rows = rows.sort_values(KEY, kind="stable").drop_duplicates(KEY).reset_index(drop=True)
    return rows


def bound_index(q: Quantizer, sample: pd.DataFrame, n_features: int, nprobe: int) -> BoundIndex:
    """Exact mode: the sample as a shipped index (flat when small, else IVF over the
    cells), searched to bound each query's k-th neighbour distance."""
    keys = sample[KEY].to_numpy(np.int64)
    pts = sample[feature_names(n_features)].to_numpy(np.float64) - q.center
    if q.n_cells <= 16 or len(pts) <= 20_000:
        index, method = faiss_ops.flat_index(pts), "exact"
    else:
        index, method = faiss_ops.ivf_flat(q.centroids, pts), "ivf"
    return BoundIndex(keys, pts, faiss_ops.ship(index, method, max(1, nprobe), 0))


def query_mask(n_classes: int, query_classes: Sequence[int] | None) -> np.ndarray:
    """Boolean mask over class codes: which classes' rows are queries."""
    mask = np.zeros(n_classes, dtype=bool)
    mask[list(range(n_classes)) if query_classes is None else list(query_classes)] = True
    return mask


def plan_cells(
    engine: Engine, table: Any, n_rows: int, n_features: int, dtype: Any, knn: KnnConfig,
    exact: bool, seed: int, info: JoinInfo, source: TableSource | None = None,
) -> tuple[Quantizer, pd.DataFrame, BoundIndex | None]:
    """Sample the table (from its ``source`` frame when given), train the cells'
    quantizer and, in exact mode, the bound index."""
    t0 = time.perf_counter()
    n_cells = default_cells(n_rows, knn.nlist, exact)
    target = min(n_cells * knn.train_rows_per_cell, MAX_TRAIN_ROWS)
    if exact:
        target = max(target, n_cells * BOUND_ROWS_PER_CELL, BOUND_SAMPLE_ROWS)
    sample = sample_table(engine, table, n_rows, target, n_features, dtype, source)
    info.sample_rows = len(sample)
    train_frac = min(1.0, min(n_cells * knn.train_rows_per_cell, MAX_TRAIN_ROWS) / max(len(sample), 1))
    train_pick = key_hash(sample[KEY].to_numpy(np.int64), HASH_SEED, "train") <= np.uint64(
        min(2**64 - 1, int(train_frac * 2**64))
    )
    train = sample.loc[train_pick, feature_names(n_features)].to_numpy(np.float64)
    quantizer = train_quantizer(train, n_cells, knn.kmeans_iter, knn.train_rows_per_cell, seed)
    info.n_cells = quantizer.n_cells
    bound = bound_index(quantizer, sample, n_features, BOUND_NPROBE) if exact else None
    info.seconds["sample+kmeans"] = time.perf_counter() - t0
    return quantizer, sample, bound

