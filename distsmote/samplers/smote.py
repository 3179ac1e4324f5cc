"""SMOTE: synthetic minority over-sampling, written once against the engine primitives."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from distsmote._faults import fault_point
from distsmote._kernels import ClassPlan, SmotePayload, smote_task
from distsmote._plan import allocate_children, canonical_order, plan_tasks
from distsmote._random import resolve_seed
from distsmote._strategy import resolve_sampling_strategy
from distsmote._validation import (
    check_class_sizes,
    check_columns,
    check_k,
    check_label_stats,
)
from distsmote.engines.base import Engine, numeric_dtype
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.index import build_index
from distsmote.samplers.base import BaseSampler

logger = logging.getLogger("distsmote")


class SMOTE(BaseSampler):
    """Synthetic Minority Over-sampling Technique, on pandas, Dask or Spark.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        imbalanced-learn's semantics: a float (binary only) sets the minority to
        ``int(ratio · N_majority)``; ``'auto'``/``'not majority'``, ``'minority'``,
        ``'not minority'`` and ``'all'`` equalise the targeted classes with the majority;
        a dict gives each class's desired *total*; a callable returns such a dict.
    k_neighbors : int, default=5
        Neighbours among which each synthetic row's partner is drawn.
    random_state : int or None, default=None
        Seed.  The output depends only on the input rows, the parameters and this seed,
        never on the engine or partitioning.  ``None`` draws a fresh seed per call.
    knn : {"auto", "exact", "ivf", "hnsw"}, dict or KnnConfig, default="auto"
        Neighbour search.  ``"exact"`` returns imbalanced-learn's neighbours; ``"auto"``
        is exact for small classes and IVF (recall@k ≥ 0.98) for large ones.

    Notes
    -----
    *Allocation.*  Each of a class's ``m`` rows gets ``⌊N/m⌋`` or ``⌈N/m⌉`` of its ``N``
    synthetic rows; the seed chooses which rows take the extra one.  imbalanced-learn
    instead draws seed rows with replacement.

    *Neighbours.*  A row's own id is dropped, so an exact duplicate of it is a
    legitimate neighbour at distance 0.  Ties are broken by canonical order.
    """

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        k_neighbors: int = 5,
        random_state: int | None = None,
        knn: Any = "auto",
    ) -> None:
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.random_state = random_state
        self.knn = knn

    def _resample(self, engine: Engine, frame: Any, label: str, indicator: str | None) -> Any:
        k = check_k(self.k_neighbors, "k_neighbors")
        knn = KnnConfig.coerce(self.knn)
        seed = resolve_seed(self.random_state)
        features = check_columns(engine.columns(frame), label, [indicator] if indicator else [])

        t0 = time.perf_counter()
        stats = engine.label_stats(frame, label, features)
        check_label_stats(stats, label)
        y = engine.labels_in_memory(frame, label)
        targets = resolve_sampling_strategy(self.sampling_strategy, stats.counts, "over-sampling", y)
        check_class_sizes(stats.counts, targets, k)
        self.class_counts_ = dict(stats.counts)
        self.sampling_strategy_ = dict(targets)
        logger.info("class counts %s; to generate %s (%.1fs)", stats.counts, targets, time.perf_counter() - t0)

        base = engine.with_constant(frame, indicator, False) if indicator else frame
        active = {c: n for c, n in targets.items() if n > 0}
        if not active:
            return base
        payload, tasks = self._plan(engine, frame, label, indicator, features, active, k, knn, seed)
        synthetic = engine.generate(smote_task, tasks, engine.broadcast(payload), like=base)
        return engine.union([base, synthetic])

    def _plan(self, engine, frame, label, indicator, features, active, k, knn, seed):
        """Collect the classes to oversample, order them, allocate children, build indexes."""
        fault_point("plan")
        t0 = time.perf_counter()
        rows = engine.collect_rows(frame, label, list(active), [*features, label])
        dtypes = {numeric_dtype(t) for t in rows[features].dtypes}
        point_dtype = np.float32 if dtypes == {np.dtype(np.float32)} else np.float64
        y = rows[label].to_numpy()
        classes = []
        for pos, (cls, n_new) in enumerate(active.items()):
            x = rows.loc[y == cls, features].to_numpy(dtype=np.float64)
            x = x[canonical_order(x)]
            config = knn.resolve(len(x))
            index = build_index(x.astype(np.float32), config, seed)
            classes.append(
                ClassPlan(cls, x.astype(point_dtype), allocate_children(len(x), n_new, seed, pos), index)
            )
            logger.info("class %r: %d rows, %d to generate, %s search", cls, len(x), n_new, config.method)
        payload = SmotePayload(
            tuple(features), label, indicator, tuple(classes), k, seed, knn.rerank_extra
        )
        tasks = plan_tasks([c.children for c in classes])
        logger.info("plan: %d generation tasks (%.1fs)", len(tasks), time.perf_counter() - t0)
        return payload, tasks
