"""SMOTE: synthetic minority over-sampling, on the SMOTE-family template."""

from __future__ import annotations

from typing import Any

from distsmote.samplers.base import KNN, OVER_SAMPLING_STRATEGY, POSITIVE_INT, RANDOM_STATE
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

    Notes
    -----
    *Allocation.*  Each of a class's ``m`` rows gets ``⌊N/m⌋`` or ``⌈N/m⌉`` of its ``N``
    synthetic rows; the seed chooses which rows take the extra one.  imbalanced-learn
    instead draws seed rows with replacement.

    *Neighbours.*  A row's own id is dropped, so an exact duplicate of it is a
    legitimate neighbour at distance 0.  Ties are broken by canonical order.
    """

    _parameter_constraints = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "k_neighbors": POSITIVE_INT,
        "random_state": RANDOM_STATE,
        "knn": KNN,
    }

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        k_neighbors: int = 5,
        random_state: Any = None,
        knn: Any = "auto",
    ) -> None:
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.random_state = random_state
        self.knn = knn

    def _k(self) -> int:
        return int(self.k_neighbors)
