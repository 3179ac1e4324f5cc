"""SMOTE-style generation, shared by SMOTE, ADASYN and Borderline-SMOTE.

The flow is fixed: collect the classes to oversample (small by construction), put each
class in canonical order, ask the sampler for its *allocation* (children per canonical
row) and, optionally, precomputed neighbours, build the per-class indexes, and run pure
generation tasks over fixed ranges of the canonical order.  The canonical order, the
counter-based random streams and the task ranges are the same for every sampler, so
each inherits SMOTE's determinism on every engine and partitioning.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from distsmote._faults import fault_point
from distsmote._kernels import ClassPlan, Neighbours, OutputColumns, SmotePayload, smote_task
from distsmote._plan import allocate_children, canonical_order, even_keyed_children, plan_tasks
from distsmote._random import resolve_seed
from distsmote._validation import DistSmoteInputError, check_class_sizes
from distsmote.columns import sorted_codes
from distsmote.engines.base import Engine
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.index import build_index, measured_recall
from distsmote.neighbors.keys import content_keys, keyed_order
from distsmote.progress import stage
from distsmote.samplers.base import BaseSampler, join_knn
from distsmote.samplers.frame_info import FrameInfo
from distsmote.samplers.join_generation import driver_bytes, generate_from_join

logger = logging.getLogger("distsmote")


@dataclass(frozen=True)
class ClassRows:
    """One oversampled class on the driver, in canonical order.

    Attributes
    ----------
    value : class label
    pos : int
        Position among the oversampled classes (keys the random streams).
    code : int
        Position among all classes (the kNN join's class code).
    x : ndarray of shape (n, d), float64
        The class's numeric features in canonical order.
    n_new : int
        Synthetic rows to make.
    codes : ndarray of shape (n, c), int32, or None
        Categorical features as codes into ``vocab`` (canonical order).
    vocab : tuple of ndarray
        Each categorical feature's distinct values in the class, sorted.
    extra : pandas.DataFrame or None
        The partition columns, canonical order (synthetic rows copy their seed's).
    keys : ndarray of int64 or None
        Content keys, canonical order, when the class is keyed by content (SMOTE on
        numeric features): the canonical order sorts by key and the random streams use
        the keys.
    """

    value: Any
    pos: int
    code: int
    x: np.ndarray
    n_new: int
    codes: np.ndarray | None = None
    vocab: tuple = ()
    extra: pd.DataFrame | None = None
    keys: np.ndarray | None = None


def even_children(row: ClassRows, seed: int) -> np.ndarray:
    """SMOTE's even spread of ``row.n_new`` children over the class's canonical rows.

    Keyed by content, the copies of a row are one point whose first canonical row
    holds all of their children (:func:`distsmote._plan.even_keyed_children`), as the
    distributed path does.
    """
    if row.keys is None:
        return allocate_children(len(row.x), row.n_new, seed, row.pos)
    keys = row.keys
    start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.empty(0, np.int64)
    mult = np.diff(np.r_[start, len(keys)])
    children = np.zeros(len(keys), np.int64)
    children[start] = even_keyed_children(keys[start], mult, row.n_new, seed, row.pos)
    return children


@dataclass(frozen=True)
class Allocation:
    """A sampler's decision for one class: children per canonical row, and optionally
    precomputed neighbours (else the class's own k nearest rows are searched)."""

    children: np.ndarray
    neighbours: Neighbours | None = None


class BaseOverSampler(BaseSampler):
    """Template of the SMOTE family: subclasses choose the allocation (and neighbours).

    Subclasses implement ``_k()`` (neighbours used for generation) and may override
    ``_allocate(engine, frame, info, rows, seed)``; the default is SMOTE's even spread.
    """

    _sampling_type = "over-sampling"
    #: Whether the sampler also searches neighbours over all classes (the kNN join,
    #: which has no HNSW mode).
    _all_classes = False
    #: Whether the sampler keys its rows by content and can generate from the kNN join
    #: when the classes to oversample exceed ``driver_budget`` (SMOTE).
    _keyed = False

    def _driver_budget(self) -> int | None:
        """Bytes the classes to oversample may take on the driver (``None``: no limit)."""
        return None

    def _k(self) -> int:
        raise NotImplementedError

    def _prefetch_budget(self) -> int | None:
        # The classes to oversample are collected next: bring them back with the
        # statistics, within the driver budget (2 GiB without one).
        return self._driver_budget() or 2 * 2**30

    def _knn(self) -> KnnConfig:
        return join_knn(self.knn) if self._all_classes else KnnConfig.coerce(self.knn)

    def _check_params(self) -> None:
        self._knn()

    def _other_step(self) -> float:
        return 0.5

    def _allocate(
        self, engine: Engine, frame: Any, info: FrameInfo, rows: list[ClassRows], seed: int
    ) -> list[Allocation]:
        return [Allocation(even_children(r, seed)) for r in rows]

    def _fit_resample(self, engine: Engine, frame: Any, info: FrameInfo, targets: dict) -> Any:
        k = self._k()
        check_class_sizes(info.counts, targets, k)
        seed = resolve_seed(self.random_state)
        indicator = info.indicator
        nulls = info.roles.null_passthrough if info.roles else ()
        base = engine.nullable(frame, nulls) if nulls else frame
        base = engine.with_constant(base, indicator, False) if indicator else base
        active = {c: n for c, n in targets.items() if n > 0}
        logger.info("class counts %s; to generate %s", info.counts, targets)
        if not active:
            return base
        fault_point("plan")
        keyed = self._keyed and not info.categorical and not (info.roles and info.roles.partition)
        self.generated_from_join_ = self._over_budget(info, active, keyed)
        if self.generated_from_join_:
            self.knn_recall_ = {}
            payload = self._payload_spec(info, (), k, seed)
            synthetic = generate_from_join(engine, frame, info, active, payload, self._knn(), like=base)
            return self._with_input(engine, frame, base, synthetic)
        t0 = time.perf_counter()
        with stage("planning: collect the classes to oversample"):
            rows = collect_class_rows(engine, frame, info, active, keyed=keyed)
        allocations = self._allocate(engine, frame, info, rows, seed)
        with stage("planning: neighbour indexes"):
            payload, tasks = self._payload(info, rows, allocations, k, seed)
        logger.info("plan: %d generation tasks (%.1fs)", len(tasks), time.perf_counter() - t0)
        synthetic = engine.generate(smote_task, tasks, engine.broadcast(payload), like=base)
        return self._with_input(engine, frame, base, synthetic)

    def _with_input(self, engine: Engine, frame: Any, base: Any, synthetic: Any) -> Any:
        """The output: ``base`` (the input's rows) and the synthetic rows, or the synthetic
        rows alone when asked for (``new_rows_only``) and ``base`` is ``frame`` itself."""
        if getattr(self, "_new_rows_wanted", False) and base is frame:
            self.new_rows_only_ = True
            return synthetic
        return engine.union([base, synthetic])

    def _over_budget(self, info: FrameInfo, active: dict, keyed: bool) -> bool:
        """Whether the classes to oversample exceed ``driver_budget`` (then they are
        generated from the kNN join, which ``keyed`` samplers support; others fail)."""
        budget, needed = self._driver_budget(), driver_bytes(info, active)
        if budget is None or needed <= budget:
            return False
        if not keyed:
            raise DistSmoteInputError(
                f"The classes to oversample take about {needed / 2**30:.2f} GiB on the driver, "
                f"over driver_budget ({budget / 2**30:.2f} GiB), and generation from the kNN "
                "join supports numeric features without partition_columns only. Raise "
                "driver_budget (and the driver's memory), or drop the partition columns."
            )
        logger.info(
            "the classes to oversample take about %.2f GiB, over driver_budget (%.2f GiB): "
            "generating from the distributed kNN join", needed / 2**30, budget / 2**30,
        )
        return True

    def _payload(
        self, info: FrameInfo, rows: list[ClassRows], allocations: list[Allocation], k: int, seed: int
    ) -> tuple[SmotePayload, list]:
        knn = self._knn()
        point_dtype = info.point_dtype
        plans = []
        self.knn_recall_ = {}
        for r, alloc in zip(rows, allocations):
            index = None
            if alloc.neighbours is None:
                config = knn.resolve(len(r.x))
                index = build_index(r.x.astype(np.float32), config, seed)
                method = config.method
                if method != "exact":
                    recall = measured_recall(r.x, index, k, knn.rerank_extra, seed)
                    self.knn_recall_[r.value] = recall
                    method = f"{method} (measured recall@{k} {recall:.4f})"
            else:
                method = "precomputed"
            plans.append(ClassPlan(
                r.value, r.x.astype(point_dtype), alloc.children, index, alloc.neighbours,
                codes=r.codes, vocab=r.vocab, extra=r.extra, ids=r.keys,
            ))
            logger.info(
                "class %r: %d rows (%d seeds), %d to generate, %s neighbours",
                r.value, len(r.x), int((alloc.children > 0).sum()), r.n_new, method,
            )
        return self._payload_spec(info, tuple(plans), k, seed), plan_tasks([p.children for p in plans])

    def _payload_spec(self, info: FrameInfo, plans: tuple, k: int, seed: int) -> SmotePayload:
        return SmotePayload(
            tuple(info.features), info.label, info.indicator, plans, k, seed,
            self._knn().rerank_extra, self._other_step(), output_columns(info),
        )


def output_columns(info: FrameInfo) -> OutputColumns:
    """What synthetic rows hold besides the numeric features and the label."""
    roles = info.roles
    if roles is None:
        return OutputColumns()
    return OutputColumns(
        categorical=roles.categorical,
        nulls=roles.null_passthrough,
        partition=roles.partition,
        id_column=roles.id_column,
        id_string=roles.id_column is not None and roles.kinds[roles.id_column] == "string",
    )


def collect_class_rows(
    engine: Engine, frame: Any, info: FrameInfo, active: dict, keyed: bool = False
) -> list[ClassRows]:
    """The rows of the classes to oversample, per class in canonical order.

    The canonical order sorts by the numeric features, then the categorical features'
    codes, then the partition columns' codes (codes follow sorted values, so every
    engine and partitioning gives the same order).  ``keyed`` (numeric features only):
    by content key first, then the features, and the keys are kept.
    """
    features = list(info.features)
    categorical = list(info.categorical)
    partition = list(info.roles.partition) if info.roles else []
    wanted = [*features, *categorical, *partition, info.label]
    collected = engine.collect_rows(frame, info.label, list(active), list(dict.fromkeys(wanted)))
    y = collected[info.label].to_numpy()
    codes = {c: i for i, c in enumerate(info.classes)}
    out = []
    for pos, (cls, n_new) in enumerate(active.items()):
        part = collected.loc[y == cls].reset_index(drop=True)
        x = part[features].to_numpy(dtype=np.float64)
        cat = [sorted_codes(part[c]) for c in categorical]
        cat_codes = np.stack([c for c, _ in cat], axis=1) if cat else None
        keys = np.column_stack(
            [x, *([cat_codes] if cat else []), *[sorted_codes(part[c])[0] for c in partition]]
        ) if (cat or partition) else x
        row_keys = content_keys(x, np.full(len(x), codes[cls], np.int32)) if keyed else None
        order = canonical_order(keys) if row_keys is None else keyed_order(row_keys, x)
        extra = part[partition].iloc[order].reset_index(drop=True) if partition else None
        out.append(ClassRows(
            cls, pos, codes[cls], x[order], int(n_new),
            codes=None if cat_codes is None else np.ascontiguousarray(cat_codes[order]),
            vocab=tuple(v for _, v in cat), extra=extra,
            keys=None if row_keys is None else row_keys[order],
        ))
    return out


__all__ = ["Allocation", "BaseOverSampler", "ClassRows", "collect_class_rows"]
