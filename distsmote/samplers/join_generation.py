"""SMOTE for classes larger than the driver: generation from the distributed kNN join.

The broadcast path collects the rows of every class to oversample to the driver, builds
an index over them and ships it to the workers.  When those rows would exceed the
sampler's ``driver_budget``, SMOTE runs this path instead, and no class row reaches the
driver:

* each class's rows become one point per content key with its multiplicity, kept on
  the workers (:func:`~distsmote._join_kernels.merge_copies`, persisted);
* the allocation is SMOTE's even spread, keyed by content: two small passes (a
  histogram of the copies' hashes, then the copies of one bin) tell the driver which
  copy is the last to get an extra child;
* the neighbours come from the kNN join of the class with itself
  (:func:`~distsmote.neighbors.join.knn_join`);
* two shuffles by key bring each synthetic row its seed, then its partner
  (:func:`~distsmote._join_kernels.requests`, :func:`~distsmote._join_kernels.synthesize`).

The random streams are keyed by content keys on both paths, so with ``knn="exact"``
this path returns the same rows as the broadcast path.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import numpy as np

from distsmote import _join_kernels as jk
from distsmote._kernels import SmotePayload
from distsmote._plan import nth_score
from distsmote.engines.base import Engine, empty_frame
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.join import knn_join
from distsmote.neighbors.join_plan import ROWS_PER_PARTITION
from distsmote.neighbors.table import KEY, prepare_table, table_meta
from distsmote.progress import stage
from distsmote.samplers.frame_info import FrameInfo

logger = logging.getLogger("distsmote")


def driver_bytes(info: FrameInfo, active: dict) -> int:
    """Driver memory the broadcast path needs for the classes to oversample: their rows
    as float64 features, categorical and partition codes and the label (8 bytes each)."""
    columns = len(info.features) + len(info.categorical) + len(info.roles.partition if info.roles else ()) + 1
    return int(sum(info.counts[c] for c in active)) * columns * 8


def join_knn_config(knn: KnnConfig) -> KnnConfig:
    """The sampler's ``knn`` for the join: ``generation_nprobe`` cells per row, and IVF
    cells for ``"hnsw"`` (which has no join mode)."""
    if knn.method == "hnsw":
        logger.info("knn='hnsw' has no kNN-join mode: the join uses 'ivf' cells")
        knn = replace(knn, method="ivf")
    return replace(knn, join_nprobe=knn.generation_nprobe)


def extra_threshold(engine: Engine, points: Any, n_rows: int, n_new: int, seed: int, class_pos: int):
    """The score of the last copy that gets an extra child, from two small passes
    (``None`` when ``n_new`` is a multiple of the class's rows)."""
    extra = n_new % n_rows
    if not extra:
        return None
    hist = engine.aggregate(
        engine.map_partitions(points, jk.copy_histogram, engine.broadcast((seed, class_pos)),
                              empty_frame({"bin": np.int64, "copies": np.int64})),
        "bin", {"copies": "sum"},
    )
    bins = hist["bin"].to_numpy(np.int64)
    cum = np.cumsum(hist["copies"].to_numpy(np.int64))
    at = int(np.searchsorted(cum, extra))  # first bin whose running total reaches `extra`
    before = int(cum[at - 1]) if at else 0
    in_bin = engine.map_partitions(
        points, jk.copies_in_bin, engine.broadcast((seed, class_pos, int(bins[at]))),
        empty_frame({"hash": np.int64, "key": np.int64, "copy": np.int64}),
    )
    rows = engine.collect_small(in_bin, max_rows=int(cum[at]) - before)
    return nth_score(rows["hash"].to_numpy(np.int64).view(np.uint64), rows["key"].to_numpy(np.int64),
                     rows["copy"].to_numpy(np.int64), extra - before)


def generate_from_join(
    engine: Engine, frame: Any, info: FrameInfo, active: dict, payload: SmotePayload,
    knn: KnnConfig, like: Any,
) -> Any:
    """The synthetic rows of every class of ``active`` (``{class: rows to make}``),
    with ``like``'s schema, made on the workers from the kNN join.

    Parameters
    ----------
    engine : Engine
    frame : frame
        The input.
    info : FrameInfo
    active : dict
        ``{class: synthetic rows}``, in the order that numbers the random streams.
    payload : SmotePayload
        Features, label, indicator, ``k``, seed and output columns (``classes`` unused).
    knn : KnnConfig
        The join's search: exact, or approximate (IVF cells).
    like : frame
        A frame with the output schema.
    """
    d, k, seed = len(info.features), payload.k, payload.seed
    dtype = np.dtype(info.point_dtype).name
    knn = join_knn_config(knn)
    base_parts = max(1, engine.num_partitions(frame))
    out = []
    for pos, (cls, n_new) in enumerate(active.items()):
        n_rows = int(info.counts[cls])
        parts = max(base_parts, math.ceil((n_rows + n_new) / ROWS_PER_PARTITION))
        with stage(f"class {cls!r}: points by key"):
            table = prepare_table(engine, frame, info.label, info.features, info.classes, dtype, only=[cls])
            points = engine.persist(engine.shuffle_map(
                table, KEY, jk.merge_copies, engine.broadcast(d), table_meta(d, dtype), parts,
            ))
        with stage(f"class {cls!r}: allocation"):
            threshold = extra_threshold(engine, points, n_rows, int(n_new), seed, pos)
        with stage(f"class {cls!r}: kNN join planning"):
            lists, join_info = knn_join(
                engine, points, k=k, n_rows=n_rows, n_features=d, dtype=dtype, n_classes=len(info.classes),
                knn=knn, finish=jk.neighbour_lists, finish_args=(k, d, dtype),
                finish_meta=jk.stage1_meta(d, k, dtype), seed=seed,
            )
        logger.info("class %r: %d rows, %d to generate from the kNN join (%s)", cls, n_rows, n_new, join_info.mode)
        spec = engine.broadcast(jk.JoinGeneration(payload, pos, cls, int(n_new), n_rows, threshold, d, dtype))
        stage1 = engine.union([
            engine.map_partitions(points, jk.points_stage1, engine.broadcast(k), jk.stage1_meta(d, k, dtype)),
            lists,
        ])
        asked = engine.shuffle_map(stage1, KEY, jk.requests, spec, jk.stage2_meta(d, dtype), parts)
        stage2 = engine.union([
            asked,
            engine.map_partitions(points, jk.points_stage2, engine.broadcast(d), jk.stage2_meta(d, dtype)),
        ])
        out.append(engine.shuffle_map(stage2, KEY, jk.synthesize, spec, like, parts))
    return engine.union(out)


__all__ = ["driver_bytes", "extra_threshold", "generate_from_join", "join_knn_config"]
