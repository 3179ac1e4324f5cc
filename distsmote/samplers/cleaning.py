"""Cleaning samplers: Tomek links and edited nearest neighbours, on any engine.

Both are written once over the distributed kNN join
(:func:`distsmote.neighbors.join.knn_join`): the join yields every query row's nearest
neighbours with their labels; a decision per row gives a partitioned table of row keys to
remove; an anti-join by key drops those rows from the input.  Nothing but a sample, the
centroids and per-cell counts reaches the driver.

Ties and duplicates
-------------------
Neighbours are ordered by exact float64 distance, then by row key (a hash of the row's
content), so the result does not depend on engine or partitioning.  Rows with equal
features and label are copies of one point: each copy has the others as neighbours at
distance 0 but never itself, and all copies are kept or removed together.  A row that
has a copy is therefore never in a Tomek link, and its copy counts as an agreeing
neighbour for ENN — what imbalanced-learn does too when its neighbour search happens
to list the row itself first.  Rows with equal features and *different* labels are
distinct points at distance 0, ordered by key.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from distsmote._kernels import (
    ROW_KEY,
    enn_decide,
    removed_meta,
    tomek_edges,
    tomek_edges_meta,
    tomek_links,
)
from distsmote._validation import DistSmoteInputError
from distsmote.engines.base import Engine
from distsmote.neighbors.all_classes import Neighbourhood, neighbours_over_all_classes
from distsmote.neighbors.join import JoinInfo, row_keys
from distsmote.progress import stage
from distsmote.samplers.base import (
    CLEAN_SAMPLING_STRATEGY,
    JOIN_KNN,
    POSITIVE_INT,
    BaseSampler,
    join_knn,
)
from distsmote.samplers.frame_info import FrameInfo
from sklearn.utils._param_validation import StrOptions

logger = logging.getLogger("distsmote")


class _CleaningSampler(BaseSampler):
    """Template of the cleaning samplers: a neighbourhood over all classes gives the
    keys of the rows to remove; an anti-join by key drops them from the input."""

    _sampling_type = "clean-sampling"
    _sample_indices = True

    def _check_params(self) -> None:
        join_knn(self.knn)

    def _k(self) -> int:
        raise NotImplementedError

    def _removed(self, engine: Engine, frame: Any, info: FrameInfo, targeted: list) -> tuple[Any, JoinInfo]:
        raise NotImplementedError

    def _neighbourhood(self, engine: Engine, frame: Any, info: FrameInfo, k: int,
                       query_classes: list | None, finish, finish_meta, finish_args=None) -> Neighbourhood:
        return neighbours_over_all_classes(
            engine, frame, label=info.label, features=info.features, classes=info.classes,
            dtype=info.point_dtype, n_rows=info.n_rows, k=k, query_classes=query_classes,
            knn=join_knn(self.knn), finish=finish, finish_meta=finish_meta, finish_args=finish_args,
        )

    def _fit_resample(self, engine: Engine, frame: Any, info: FrameInfo, targets: dict) -> Any:
        k = self._k()
        if info.n_rows <= k:
            raise DistSmoteInputError(
                f"{type(self).__name__} needs at least {k + 1} rows to find {k} neighbour(s) "
                f"per row (Expected n_neighbors <= n_samples_fit, but n_neighbors = {k + 1}, "
                f"n_samples_fit = {info.n_rows}). Got {info.n_rows} rows; lower n_neighbors or "
                "pass more data."
            )
        t0 = time.perf_counter()
        with stage("planning the kNN join (the join runs with the write)"):
            removed, join_info = self._removed(engine, frame, info, [c for c in info.classes if c in targets])
        self.join_info_: JoinInfo = join_info
        by = row_keys(engine, info.label, info.features, info.classes)
        kept = engine.anti_join(frame, removed, ROW_KEY, by=by)
        logger.info("%s planned in %.1fs (%s kNN join)", type(self).__name__, time.perf_counter() - t0, join_info.mode)
        return kept


class TomekLinks(_CleaningSampler):
    """Remove Tomek links: pairs of rows of different classes that are each other's
    nearest neighbour.  On pandas, Dask or Spark.

    Parameters
    ----------
    sampling_strategy : str or list, default="auto"
        Classes whose rows may be removed, with imbalanced-learn's semantics:
        ``'auto'`` = ``'not minority'``; ``'majority'``, ``'not majority'``, ``'all'``,
        or a list of classes.  Floats and dicts are refused, as in imbalanced-learn.
    knn : {"auto", "exact", "ivf"}, dict or KnnConfig, default="auto"
        Neighbour search of the kNN join.  ``"exact"`` removes exactly the rows
        imbalanced-learn removes; ``"ivf"`` is approximate (k-means cells, ``nprobe``
        cells per row); ``"auto"`` is exact up to ``exact_max_rows`` rows, else ``"ivf"``.

    Attributes
    ----------
    class_counts_ : dict
        Rows per class of the input.
    sampling_strategy_ : dict
        The targeted classes (imbalanced-learn's ``{class: n_min}`` form).
    join_info_ : JoinInfo
        Planning facts of the kNN join (mode, cells, probes per row).
    n_features_in_, feature_names_in_
        Number and names of the features.
    sample_indices_ : ndarray
        Positions of the kept rows (``fit_resample`` only: a partitioned frame has no
        row positions).

    Notes
    -----
    Each row's nearest neighbour comes from a 1-NN edge table; joining it with its
    reverse (by the unordered pair of keys) finds the mutual pairs.  See the module
    documentation for the tie and duplicate policy.  Cleaning is deterministic: it has
    no ``random_state``.
    """

    _parameter_constraints = {"sampling_strategy": CLEAN_SAMPLING_STRATEGY, "knn": JOIN_KNN}

    def __init__(self, *, sampling_strategy: Any = "auto", knn: Any = "auto") -> None:
        self.sampling_strategy = sampling_strategy
        self.knn = knn

    def _k(self) -> int:
        return 1

    def _removed(self, engine, frame, info, targeted):
        hood = self._neighbourhood(engine, frame, info, 1, None, tomek_edges, tomek_edges_meta())
        mask = np.array([c in targeted for c in info.classes], dtype=bool)
        parts = max(1, engine.num_partitions(hood.table))
        removed = engine.shuffle_map(
            hood.result, "pair", tomek_links, engine.broadcast(mask), removed_meta(), parts
        )
        return removed, hood.info


class EditedNearestNeighbours(_CleaningSampler):
    """Edited nearest neighbours: remove rows whose neighbours disagree with their class.
    On pandas, Dask or Spark.

    Parameters
    ----------
    sampling_strategy : str or list, default="auto"
        Classes whose rows may be removed (imbalanced-learn's semantics; ``'auto'`` =
        ``'not minority'``).
    n_neighbors : int, default=3
        Neighbours looked at per row.
    kind_sel : {"all", "mode"}, default="all"
        ``'all'``: remove a row if any neighbour has another class.  ``'mode'``: remove
        it if the most frequent neighbour class is not its own (ties go to the smallest
        class, as in imbalanced-learn).
    knn : {"auto", "exact", "ivf"}, dict or KnnConfig, default="auto"
        Neighbour search of the kNN join (see :class:`TomekLinks`).

    Attributes
    ----------
    class_counts_, sampling_strategy_, join_info_, n_features_in_, feature_names_in_, sample_indices_
        As for :class:`TomekLinks`.

    Notes
    -----
    Only rows of the targeted classes are queries of the kNN join; every row is a
    candidate neighbour.  Neighbour labels travel on the edges, so the decision is
    taken where the edges are merged, with no further shuffle.
    """

    _parameter_constraints = {
        "sampling_strategy": CLEAN_SAMPLING_STRATEGY,
        "n_neighbors": POSITIVE_INT,
        "kind_sel": [StrOptions({"all", "mode"})],
        "knn": JOIN_KNN,
    }

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        n_neighbors: int = 3,
        kind_sel: str = "all",
        knn: Any = "auto",
    ) -> None:
        self.sampling_strategy = sampling_strategy
        self.n_neighbors = n_neighbors
        self.kind_sel = kind_sel
        self.knn = knn

    def _k(self) -> int:
        return int(self.n_neighbors)

    def _removed(self, engine, frame, info, targeted):
        hood = self._neighbourhood(
            engine, frame, info, self._k(), targeted, enn_decide, removed_meta(),
            (self.kind_sel, len(info.classes)),
        )
        return hood.result, hood.info
