"""SMOTENC: SMOTE for continuous and categorical features, on the SMOTE-family template."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from sklearn.utils._param_validation import StrOptions

from distsmote._kernels import Neighbours
from distsmote._plan import allocate_children
from distsmote._validation import DistSmoteInputError
from distsmote.engines.base import Engine
from distsmote.neighbors.categorical import smotenc_neighbours
from distsmote.progress import stage
from distsmote.samplers.arrays import categorical_columns, to_frame
from distsmote.samplers.base import KNN, OVER_SAMPLING_STRATEGY, POSITIVE_INT, RANDOM_STATE
from distsmote.samplers.frame_info import FrameInfo
from distsmote.samplers.oversampling import Allocation, BaseOverSampler, ClassRows

logger = logging.getLogger("distsmote")

#: ``categorical_features``: "auto", column positions, names or a boolean mask.
CATEGORICAL_FEATURES = ["array-like", StrOptions({"auto"}), None]


def class_neighbours(rows: ClassRows, children: np.ndarray, table: np.ndarray, point_dtype: Any) -> Neighbours:
    """A class's precomputed neighbour table: seed rows get theirs, others none."""
    n, k = len(children), table.shape[1]
    full = np.full((n, k), -1, np.int64)
    seeds = np.flatnonzero(children > 0)
    full[seeds] = table
    count = (full >= 0).sum(axis=1).astype(np.int64)
    return Neighbours(full, count, rows.x.astype(point_dtype), np.ones(n, bool))


class SMOTENC(BaseOverSampler):
    """SMOTE for data with continuous and categorical features, on pandas, Dask or Spark.

    Parameters
    ----------
    categorical_features : "auto", list of int, list of str or array of bool, default="auto"
        The categorical features, in imbalanced-learn's forms: positions among the
        features, names, or a boolean mask.  ``"auto"``: every string, pandas
        ``category``, Arrow ``dictionary`` and boolean column (imbalanced-learn's
        ``"auto"`` takes ``category`` columns only).  ``resample(categorical=...)``
        overrides it.
    sampling_strategy : float, str, dict or callable, default="auto"
        As for :class:`SMOTE` (imbalanced-learn's semantics).
    k_neighbors : int, default=5
        Neighbours of each seed row: its synthetic rows step toward one of them, and take
        their most frequent categories.
    random_state : int, RandomState, Generator or None, default=None
        Seed; the output depends only on the rows, the parameters and this seed.
    knn : {"auto", "exact", "ivf", "hnsw"}, dict or KnnConfig, default="auto"
        Search inside each group of the neighbour search; ``"exact"`` gives
        imbalanced-learn's neighbours.

    Attributes
    ----------
    median_std_ : dict
        ``{class: median of the continuous features' standard deviations}``.
    sampling_strategy_, class_counts_, n_features_in_, feature_names_in_
        As for :class:`SMOTE`.
    categorical_features_ : ndarray of int
        Positions of the categorical features among the features.
    continuous_features_ : ndarray of int
        Positions of the continuous features.

    Notes
    -----
    *Distance.*  imbalanced-learn's: continuous features as they are, each categorical
    feature one-hot encoded at ``median_std / √2`` (``median_std``: the median of the
    class's continuous standard deviations), so a differing category adds
    ``median_std²`` to the squared distance.  No one-hot of the data is built: see
    :mod:`distsmote.neighbors.categorical`.

    *Categories.*  A synthetic row takes, for each categorical feature, the most frequent
    value among its seed row's ``k`` neighbours.  Ties are drawn per synthetic row from
    the counter-based stream keyed by (seed, class, row, child, feature): the same on
    every engine and partitioning.  imbalanced-learn breaks them with its sequential
    random generator (``rng.permutation`` of the tied one-hot columns).

    *Allocation and continuous features* are SMOTE's (an even spread of the synthetic
    rows over the class; one step ``u`` per synthetic row).

    *Not supported*: imbalanced-learn's ``categorical_encoder`` (the categories are the
    values themselves) and sparse input.
    """

    _accepts = "mixed"
    _parameter_constraints = {
        "categorical_features": CATEGORICAL_FEATURES,
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "k_neighbors": POSITIVE_INT,
        "random_state": RANDOM_STATE,
        "knn": KNN,
    }

    def __init__(
        self,
        categorical_features: Any = "auto",
        *,
        sampling_strategy: Any = "auto",
        k_neighbors: int = 5,
        random_state: Any = None,
        knn: Any = "auto",
    ) -> None:
        self.categorical_features = categorical_features
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.random_state = random_state
        self.knn = knn

    def _k(self) -> int:
        return int(self.k_neighbors)

    def _check_params(self) -> None:
        super()._check_params()
        if isinstance(self.categorical_features, str) and self.categorical_features != "auto":
            raise ValueError(
                "categorical_features must be 'auto', column indices, column names or a "
                f"boolean mask. Got {self.categorical_features!r}."
            )

    def _declared_categorical(self, columns: list[str]) -> list[str] | None:
        return categorical_columns(self.categorical_features, columns)

    def _to_frame(self, X: Any, y: Any) -> tuple[Any, str]:
        return to_frame(X, y, self.categorical_features)

    def _set_fitted(self, info: FrameInfo, targets: dict, names: Any) -> None:
        super()._set_fitted(info, targets, names)
        features = list(info.all_features)
        self.categorical_features_ = np.array([features.index(c) for c in info.categorical], dtype=np.int64)
        self.continuous_features_ = np.array([features.index(c) for c in info.features], dtype=np.int64)

    def _fit_resample(self, engine: Engine, frame: Any, info: FrameInfo, targets: dict) -> Any:
        if not info.categorical:
            raise DistSmoteInputError(
                "SMOTE-NC is not designed to work only with numerical features. It requires "
                "some categorical features: declare them with categorical_features=[...] "
                "(or resample(categorical=[...]))."
            )
        if not info.features:
            raise DistSmoteInputError(
                "SMOTE-NC is not designed to work only with categorical features. It requires "
                "some numerical features. Use SMOTEN when every feature is categorical."
            )
        return super()._fit_resample(engine, frame, info, targets)

    def _allocate(self, engine: Engine, frame: Any, info: FrameInfo, rows: list[ClassRows], seed: int) -> list[Allocation]:
        k = self._k()
        knn = self._knn()
        self.median_std_ = {}
        out = []
        for r in rows:
            children = allocate_children(len(r.x), r.n_new, seed, r.pos)
            with stage(f"neighbours of class {r.value!r} (continuous + categorical)"):
                table, m = smotenc_neighbours(
                    r.x, r.codes, np.flatnonzero(children > 0), k, knn, seed, os.cpu_count() or 1
                )
            self.median_std_[r.value] = m
            out.append(Allocation(children, class_neighbours(r, children, table, info.point_dtype)))
        return out


__all__ = ["SMOTENC"]
