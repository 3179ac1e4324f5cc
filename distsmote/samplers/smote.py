"""SMOTE: synthetic minority over-sampling, on the SMOTE-family template."""

from __future__ import annotations

from typing import Any

from distsmote.samplers.base import (
    DRIVER_BUDGET, KNN, OVER_SAMPLING_STRATEGY, POSITIVE_INT, RANDOM_STATE, parse_budget,
)
from distsmote.samplers.oversampling import BaseOverSampler


class SMOTE(BaseOverSampler):
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
    random_state : int, RandomState, Generator or None, default=None
        Seed.  The output depends only on the input rows, the parameters and this seed,
        never on the engine or partitioning.  ``None`` draws a fresh seed per call.
    knn : {"auto", "exact", "ivf", "hnsw"}, dict or KnnConfig, default="auto"
        Neighbour search.  ``"exact"`` returns imbalanced-learn's neighbours; ``"auto"``
        is exact for small classes and IVF (recall@k ≥ 0.98) for large ones.
    driver_budget : int, str or None, default="2GiB"
        Driver memory the rows of the classes to oversample may take (bytes, or a size
        such as ``"512MiB"``; estimated as 8 bytes per value).  Within it they are
        collected and a neighbour index is broadcast; above it SMOTE generates from
        the distributed kNN join and no class row reaches the driver (numeric features
        without partition columns; the join's search is exact up to
        ``knn.exact_max_rows`` rows per class, else IVF cells, and ``"hnsw"`` becomes
        IVF).  With ``knn="exact"`` both paths return the same rows.  ``None``: always
        collect.

    Attributes
    ----------
    sampling_strategy_ : dict
        Rows generated per class.
    class_counts_ : dict
        Rows per class of the input.
    n_features_in_ : int
        Number of features.
    feature_names_in_ : ndarray of str
        Feature names, when the input has string column names.
    knn_recall_ : dict
        ``{class: recall@k}`` measured on each approximate per-class index (broadcast
        path; empty on the join path).
    generated_from_join_ : bool
        Whether the classes exceeded ``driver_budget`` and were generated from the kNN join.

    Notes
    -----
    *Allocation.*  Each of a class's ``m`` rows gets ``⌊N/m⌋`` or ``⌈N/m⌉`` of its ``N``
    synthetic rows; the seed chooses which rows take the extra one.  imbalanced-learn
    instead draws seed rows with replacement.

    *Neighbours.*  A row's own id is dropped, so an exact duplicate of it is a
    legitimate neighbour at distance 0.  Ties are broken by content key.

    *Streams.*  Rows are keyed by content (:mod:`distsmote.neighbors.keys`): the copies
    of a row are one point, the copies that take an extra child and every random draw
    are functions of the keys and the seed, so the broadcast and join paths agree.
    """

    _parameter_constraints = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "k_neighbors": POSITIVE_INT,
        "random_state": RANDOM_STATE,
        "knn": KNN,
        "driver_budget": DRIVER_BUDGET,
    }
    _keyed = True

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        k_neighbors: int = 5,
        random_state: Any = None,
        knn: Any = "auto",
        driver_budget: Any = "2GiB",
    ) -> None:
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.random_state = random_state
        self.knn = knn
        self.driver_budget = driver_budget

    def _check_params(self) -> None:
        super()._check_params()
        parse_budget(self.driver_budget)

    def _driver_budget(self) -> int | None:
        return parse_budget(self.driver_budget)

    def _k(self) -> int:
        return int(self.k_neighbors)
