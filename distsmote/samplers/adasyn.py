"""ADASYN: adaptive synthetic sampling, on the SMOTE-family template."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from distsmote._plan import allocate_children
from distsmote.engines.base import Engine
from distsmote.samplers.base import (
    JOIN_KNN,
    OVER_SAMPLING_STRATEGY,
    POSITIVE_INT,
    RANDOM_STATE,
)
from distsmote.samplers.frame_info import FrameInfo
from distsmote.samplers.neighbourhood import profiles
from distsmote.samplers.oversampling import Allocation, BaseOverSampler, ClassRows

logger = logging.getLogger("distsmote")


class ADASYN(BaseOverSampler):
    """Adaptive Synthetic sampling (He et al. 2008), on pandas, Dask or Spark.

    Each row of a class to oversample is weighted by the share of its ``n_neighbors``
    nearest rows, among *all* classes, that belong to another class; the class's
    synthetic rows are shared out in proportion to those weights, and each is made
    SMOTE-style toward one of the row's ``n_neighbors`` nearest rows of its own class.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        As for :class:`SMOTE` (imbalanced-learn's semantics).
    n_neighbors : int, default=5
        Neighbours used both for the weights (over all classes) and for generation
        (within the class).
    random_state : int, RandomState, Generator or None, default=None
        Seed; same rows, parameters and seed give the same output on every engine.
    knn : {"auto", "exact", "ivf"}, dict or KnnConfig, default="auto"
        Neighbour search: the kNN join over all classes for the weights and the
        class's own index for generation.  ``"exact"`` gives imbalanced-learn's weights.

    Attributes
    ----------
    sampling_strategy_ : dict
        Rows generated per class (exactly these many).
    class_counts_, n_features_in_, feature_names_in_
        Class counts, number and names of the features of the input.
    join_info_ : JoinInfo
        Planning facts of the kNN join.

    Notes
    -----
    *Exact totals.*  Row ``i`` of a class gets ``⌊N·w_i/W⌋`` children and the rows
    with the largest remainders one more each (ties broken by the seed), so a class
    gets exactly ``N`` rows.  imbalanced-learn rounds each row's share with ``rint``,
    so its total can miss the target by a few rows.

    *Errors.*  A class none of whose rows has a neighbour of another class raises
    imbalanced-learn's ``RuntimeError`` (its weights would all be 0).
    """

    _all_classes = True
    _parameter_constraints = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "n_neighbors": POSITIVE_INT,
        "random_state": RANDOM_STATE,
        "knn": JOIN_KNN,
    }

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        n_neighbors: int = 5,
        random_state: Any = None,
        knn: Any = "auto",
    ) -> None:
        self.sampling_strategy = sampling_strategy
        self.n_neighbors = n_neighbors
        self.random_state = random_state
        self.knn = knn

    def _k(self) -> int:
        return int(self.n_neighbors)

    def weights(
        self, engine: Engine, frame: Any, info: FrameInfo, rows: list[ClassRows]
    ) -> list[np.ndarray]:
        """Each class's per-row count of other-class neighbours, in canonical order."""
        found, hood = profiles(engine, frame, info, rows, m=self._k(), k_out=0, knn=self._knn())
        self.join_info_ = hood.info
        return [p.n_other for p in found]

    def _allocate(self, engine, frame, info, rows, seed) -> list[Allocation]:
        out = []
        for r, w in zip(rows, self.weights(engine, frame, info, rows)):
            if not w.sum():
                raise RuntimeError(
                    "Not any neigbours belong to the majority class. This case will induce "
                    "a NaN case with a division by zero. ADASYN is not suited for this "
                    f"specific dataset. Use SMOTE instead. (class {r.value!r})"
                )
            out.append(Allocation(allocate_children(len(r.x), r.n_new, seed, r.pos, weights=w)))
            logger.info("class %r: %d of %d rows have another class among their neighbours",
                        r.value, int((w > 0).sum()), len(w))
        return out
