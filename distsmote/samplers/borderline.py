"""Borderline-SMOTE (kinds 1 and 2), on the SMOTE-family template."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.utils._param_validation import StrOptions

from distsmote._plan import allocate_children
from distsmote._validation import DistSmoteInputError
from distsmote.engines.base import Engine
from distsmote.samplers.base import (
    JOIN_KNN,
    OVER_SAMPLING_STRATEGY,
    POSITIVE_INT,
    RANDOM_STATE,
)
from distsmote.samplers.frame_info import FrameInfo
from distsmote.samplers.neighbourhood import Profile, neighbours_table, profiles
from distsmote.samplers.oversampling import Allocation, BaseOverSampler, ClassRows

logger = logging.getLogger("distsmote")


class BorderlineSMOTE(BaseOverSampler):
    """Borderline-SMOTE (Han et al. 2005), on pandas, Dask or Spark.

    Only the *danger* rows of a class generate: the rows whose ``m_neighbors``
    nearest rows among all classes include at least ``m/2`` but fewer than ``m`` rows
    of another class (imbalanced-learn's rule).

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        As for :class:`SMOTE` (imbalanced-learn's semantics).
    k_neighbors : int, default=5
        Neighbours among which each synthetic row's partner is drawn.
    m_neighbors : int, default=10
        Neighbours over all classes that decide whether a row is in danger.
    kind : {"borderline-1", "borderline-2"}, default="borderline-1"
        ``borderline-1`` steps toward the row's ``k_neighbors`` nearest rows of its own
        class.  ``borderline-2`` steps toward its ``k_neighbors`` nearest rows among
        *all* classes, and toward a row of another class only by ``u·v`` with ``v``
        drawn from ``[0, 0.5)``, as imbalanced-learn does.
    random_state : int, RandomState, Generator or None, default=None
        Seed; same rows, parameters and seed give the same output on every engine.
    knn : {"auto", "exact", "ivf"}, dict or KnnConfig, default="auto"
        Neighbour search (the kNN join over all classes, and the class's own index).
        ``"exact"`` gives imbalanced-learn's danger set.

    Attributes
    ----------
    sampling_strategy_ : dict
        Rows generated per class.
    class_counts_, n_features_in_, feature_names_in_
        Class counts, number and names of the features of the input.
    danger_counts_ : dict
        Danger rows per oversampled class.
    join_info_ : JoinInfo
        Planning facts of the kNN join.

    Notes
    -----
    The danger rows share the class's synthetic rows evenly (``⌊N/d⌋`` or ``⌈N/d⌉``
    each), so the total is exact; imbalanced-learn draws seed rows with replacement.
    A class with no danger row generates nothing, as in imbalanced-learn; a warning
    is logged.
    """

    _all_classes = True
    _parameter_constraints = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "k_neighbors": POSITIVE_INT,
        "m_neighbors": POSITIVE_INT,
        "kind": [StrOptions({"borderline-1", "borderline-2"})],
        "random_state": RANDOM_STATE,
        "knn": JOIN_KNN,
    }

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        k_neighbors: int = 5,
        m_neighbors: int = 10,
        kind: str = "borderline-1",
        random_state: Any = None,
        knn: Any = "auto",
    ) -> None:
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.m_neighbors = m_neighbors
        self.kind = kind
        self.random_state = random_state
        self.knn = knn

    def _k(self) -> int:
        return int(self.k_neighbors)

    def danger(
        self, engine: Engine, frame: Any, info: FrameInfo, rows: list[ClassRows]
    ) -> tuple[list[np.ndarray], list[Profile], Any]:
        """Each class's danger mask in canonical order, with the profiles behind it."""
        m = int(self.m_neighbors)
        if info.n_rows <= max(m, self._k()):
            raise DistSmoteInputError(
                f"BorderlineSMOTE needs more than m_neighbors={m} and k_neighbors="
                f"{self._k()} rows in all (Expected n_neighbors <= n_samples_fit). Got "
                f"{info.n_rows} rows; lower m_neighbors or pass more data."
            )
        k_out = self._k() if self.kind == "borderline-2" else 0
        found, hood = profiles(engine, frame, info, rows, m=m, k_out=k_out, knn=self._knn())
        self.join_info_ = hood.info
        # imbalanced-learn: m/2 <= n_other < m (m = neighbours found, in approximate mode)
        masks = [(2 * p.n_other >= p.n_edges) & (p.n_other < p.n_edges) for p in found]
        return masks, found, hood

    def _allocate(self, engine, frame, info, rows, seed) -> list[Allocation]:
        masks, found, hood = self.danger(engine, frame, info, rows)
        self.danger_counts_ = {r.value: int(mask.sum()) for r, mask in zip(rows, masks)}
        out = []
        for r, mask, profile in zip(rows, masks, found):
            neighbours = None
            if self.kind == "borderline-2" and mask.any():
                neighbours = neighbours_table(engine, hood, info, r, profile, np.flatnonzero(mask))
                mask = mask & (neighbours.count > 0)
            if not mask.any():
                logger.warning(
                    "class %r has no row in danger (m_neighbors=%d): no synthetic rows for "
                    "it, as in imbalanced-learn", r.value, int(self.m_neighbors),
                )
                out.append(Allocation(np.zeros(len(r.x), np.int64)))
                continue
            children = allocate_children(len(r.x), r.n_new, seed, r.pos, weights=mask.astype(np.int64))
            out.append(Allocation(children, neighbours))
        return out
