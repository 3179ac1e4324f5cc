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
    removed_meta,
    tomek_edges_meta,
    enn_decide,
    tomek_edges,
    tomek_links,
)
from distsmote._strategy import resolve_sampling_strategy, sorted_classes
from distsmote._validation import (
    DistSmoteInputError,
    check_columns,
    check_k,
    check_label_stats,
)
from distsmote.engines.base import Engine
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.join import JoinInfo, knn_join, prepare_table, with_row_keys
from distsmote.samplers.base import BaseSampler

logger = logging.getLogger("distsmote")

_SEL_KIND = ("all", "mode")

class _CleaningSampler(BaseSampler):
    """Shared machinery of the cleaning samplers."""

    _sampling_type = "clean-sampling"

    def _resample(self, engine: Engine, frame: Any, label: str, indicator: str | None) -> Any:
        self._check_params()
        features = check_columns(engine.columns(frame), label, [indicator] if indicator else [])
        stats = engine.label_stats(frame, label, features)
        check_label_stats(stats, label)
        y = engine.labels_in_memory(frame, label)
        out = self._clean(engine, frame, label, features, stats.counts, y)
        return engine.with_constant(out, indicator, False) if indicator else out

    def _check_params(self) -> None:
        KnnConfig.coerce(self.knn)

    def _clean(
        self,
        engine: Engine,
        frame: Any,
        label: str,
        features: list[str],
        counts: dict,
        y: Any = None,
    ) -> Any:
        """Remove the rows this cleaner selects from ``frame`` (lazy on Dask/Spark)."""
        self._check_params()
        targets = resolve_sampling_strategy(self.sampling_strategy, counts, "clean-sampling", y)
        self.class_counts_ = dict(counts)
        self.sampling_strategy_ = dict(targets)
        classes = sorted_classes(counts)
        n_rows = int(sum(counts.values()))
        k = self._k()
        if n_rows <= k:
            raise DistSmoteInputError(
                f"{type(self).__name__} needs at least {k + 1} rows to find {k} neighbour(s) "
                f"per row (Expected n_neighbors <= n_samples_fit, but n_neighbors = {k + 1}, "
                f"n_samples_fit = {n_rows}). Got {n_rows} rows; lower n_neighbors or pass "
                "more data."
            )
        columns = engine.columns(frame)
        dtype = np.float32 if all(columns[f] == np.dtype(np.float32) for f in features) else np.float64
        targeted = np.array([c in targets for c in classes], dtype=bool)
        t0 = time.perf_counter()
        table = prepare_table(engine, frame, label, features, classes, dtype)
        removed, info = self._removed(engine, table, classes, targeted, n_rows, len(features), dtype)
        self.join_info_: JoinInfo = info
        keyed = with_row_keys(engine, frame, label, features, classes, ROW_KEY)
        kept = engine.drop(engine.anti_join(keyed, removed, ROW_KEY), [ROW_KEY])
        logger.info("%s planned in %.1fs (%s kNN join)", type(self).__name__, time.perf_counter() - t0, info.mode)
        return kept

    def _k(self) -> int:
        raise NotImplementedError

    def _removed(self, engine, table, classes, targeted, n_rows, n_features, dtype):
        raise NotImplementedError


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

    Notes
    -----
    Each row's nearest neighbour comes from a 1-NN edge table; joining it with its
    reverse (by the unordered pair of keys) finds the mutual pairs.  See the module
    documentation for the tie and duplicate policy.  Cleaning is deterministic: it has
    no ``random_state``.
    """

    def __init__(self, *, sampling_strategy: Any = "auto", knn: Any = "auto") -> None:
        self.sampling_strategy = sampling_strategy
        self.knn = knn

    def _k(self) -> int:
        return 1

    def _removed(self, engine, table, classes, targeted, n_rows, n_features, dtype):
        edges, info = knn_join(
            engine, table, k=1, n_rows=n_rows, n_features=n_features, dtype=dtype,
            n_classes=len(classes), knn=KnnConfig.coerce(self.knn),
            finish=tomek_edges, finish_meta=tomek_edges_meta(),
        )
        parts = max(1, engine.num_partitions(table))
        removed = engine.shuffle_map(
            edges, "pair", tomek_links, engine.broadcast(targeted), removed_meta(), parts
        )
        return removed, info


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
    class_counts_, sampling_strategy_, join_info_
        As for :class:`TomekLinks`.

    Notes
    -----
    Only rows of the targeted classes are queries of the kNN join; every row is a
    candidate neighbour.  Neighbour labels travel on the edges, so the decision is
    taken where the edges are merged, with no further shuffle.
    """

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

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.n_neighbors, (int, np.integer)) or isinstance(self.n_neighbors, bool):
            raise DistSmoteInputError(
                "n_neighbors must be an integer >= 1 (a NearestNeighbors object is not "
                f"supported: distsmote searches with its own kNN join). Got {self.n_neighbors!r}."
            )
        check_k(self.n_neighbors, "n_neighbors")
        if self.kind_sel not in _SEL_KIND:
            raise DistSmoteInputError(
                f"kind_sel must be one of {_SEL_KIND}. Got {self.kind_sel!r} instead."
            )

    def _k(self) -> int:
        return int(self.n_neighbors)

    def _removed(self, engine, table, classes, targeted, n_rows, n_features, dtype):
        codes = np.flatnonzero(targeted)
        return knn_join(
            engine, table, k=int(self.n_neighbors), n_rows=n_rows, n_features=n_features,
            dtype=dtype, n_classes=len(classes), knn=KnnConfig.coerce(self.knn),
            query_classes=codes.tolist(), finish=enn_decide,
            finish_args=(self.kind_sel, len(classes)), finish_meta=removed_meta(),
        )
