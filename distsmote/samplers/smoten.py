"""SMOTEN: SMOTE for nominal (all-categorical) data, on the SMOTE-family template."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from distsmote._kernels import value_class_meta, value_class_partial
from distsmote._plan import allocate_children
from distsmote.columns import value_keys
from distsmote.engines.base import Engine
from distsmote.neighbors.categorical import vdm_neighbours, vdm_tables
from distsmote.neighbors.config import KnnConfig
from distsmote.progress import stage
from distsmote.samplers.base import OVER_SAMPLING_STRATEGY, POSITIVE_INT, RANDOM_STATE
from distsmote.samplers.frame_info import FrameInfo
from distsmote.samplers.oversampling import Allocation, BaseOverSampler, ClassRows
from distsmote.samplers.smotenc import class_neighbours

logger = logging.getLogger("distsmote")


def value_class_counts(engine: Engine, frame: Any, features: Sequence[str], label: str, classes: Sequence[Any]) -> pd.DataFrame:
    """Rows per (feature value, class) over the whole frame, collected to the driver.

    One pass: partial counts per partition, summed per value key on the engine.  One
    row per distinct value of every feature reaches the driver (small for categorical
    features).
    """
    meta = value_class_meta(len(classes))
    partial = engine.map_partitions(
        frame, value_class_partial, engine.broadcast((tuple(features), label, tuple(classes))), meta
    )
    aggs = {f"n{c}": "sum" for c in range(len(classes))}
    return engine.aggregate(partial, "vkey", aggs)


def probabilities(counts: pd.DataFrame, vocab: Sequence[np.ndarray], n_classes: int) -> list[np.ndarray]:
    """``P(class | value)`` for each value of each feature's ``vocab`` (rows: values)."""
    table = counts.set_index("vkey")[[f"n{c}" for c in range(n_classes)]]
    out = []
    for j, values in enumerate(vocab):
        rows = table.reindex(value_keys(values, salt=j + 1)).to_numpy(np.float64)
        rows = np.nan_to_num(rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.nan_to_num(rows / rows.sum(axis=1, keepdims=True)))
    return out


class SMOTEN(BaseOverSampler):
    """SMOTE for nominal data: every feature is categorical.  On pandas, Dask or Spark.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        As for :class:`SMOTE` (imbalanced-learn's semantics).
    k_neighbors : int, default=5
        Neighbours of each seed row.
    random_state : int, RandomState, Generator or None, default=None
        Seed; the output depends only on the rows, the parameters and this seed.

    Attributes
    ----------
    sampling_strategy_, class_counts_, n_features_in_, feature_names_in_
        As for :class:`SMOTE`.

    Notes
    -----
    *Distance.*  imbalanced-learn's value difference metric (``k=1, r=2``), with the
    class shares ``P(c | value)`` counted over the whole frame in one pass.  The search
    within the class is an exact float64 brute force (time ∝ rows², memory ∝ rows).

    *Synthetic rows.*  Each feature takes the most frequent value among the seed row and
    its ``k`` nearest other rows.  Ties (of counts, and of distances at the k-th
    neighbour, which are common in nominal data) are broken deterministically:
    distances by canonical position, counts by the seed, per synthetic row.
    imbalanced-learn takes ``scipy.stats.mode``, i.e. the smallest category, and its
    neighbour order among equal distances is the search's.

    *Allocation* is SMOTE's even spread; imbalanced-learn draws seeds with replacement.
    Every column is a categorical feature, numbers included (as in imbalanced-learn),
    except the declared passthrough columns.
    """

    _accepts = "categorical"
    _parameter_constraints = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "k_neighbors": POSITIVE_INT,
        "random_state": RANDOM_STATE,
    }

    def __init__(self, *, sampling_strategy: Any = "auto", k_neighbors: int = 5, random_state: Any = None) -> None:
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.random_state = random_state

    def _k(self) -> int:
        return int(self.k_neighbors)

    def _knn(self) -> KnnConfig:
        return KnnConfig(method="exact")

    def _allocate(self, engine: Engine, frame: Any, info: FrameInfo, rows: list[ClassRows], seed: int) -> list[Allocation]:
        k = self._k()
        with stage("value difference metric: counts per value and class"):
            counts = value_class_counts(engine, frame, info.categorical, info.label, info.classes)
        out = []
        for r in rows:
            children = allocate_children(len(r.x), r.n_new, seed, r.pos)
            tables = vdm_tables(probabilities(counts, r.vocab, len(info.classes)))
            with stage(f"neighbours of class {r.value!r} (value difference metric)"):
                table = vdm_neighbours(r.codes, tables, np.flatnonzero(children > 0), k)
            out.append(Allocation(children, class_neighbours(r, children, table, info.point_dtype)))
        return out


__all__ = ["SMOTEN"]
