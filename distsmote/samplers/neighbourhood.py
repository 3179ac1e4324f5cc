"""Per-row neighbourhood facts over all classes, for the oversampled classes' rows.

ADASYN weighs a row by how many of its nearest rows (among all classes) belong to
another class; Borderline-SMOTE keeps the rows where that count is high but not total
(the *danger* rows), and Borderline-SMOTE-2 also steps toward those neighbours.  All of
them come from one call to the neighbour service over the kNN join, reduced per query
row on the engine, so only one small row per oversampled row reaches the driver.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from distsmote._kernels import Neighbours, neighbour_profile, neighbour_profile_meta
from distsmote.engines.base import Engine
from distsmote.neighbors.all_classes import (
    Neighbourhood,
    collect_per_query,
    driver_keys,
    driver_queries,
    fetch_rows,
    neighbours_over_all_classes,
)
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.join import KEY, feature_names
from distsmote.progress import stage
from distsmote.samplers.frame_info import FrameInfo
from distsmote.samplers.oversampling import ClassRows

logger = logging.getLogger("distsmote")


@dataclass(frozen=True)
class Profile:
    """Neighbourhood facts of one class's rows, in canonical order.

    Attributes
    ----------
    n_other : ndarray of int
        Neighbours of another class among the first ``m``.
    n_edges : ndarray of int
        Neighbours found among the first ``m`` (``m`` except in approximate mode,
        where a row in sparse cells may get fewer).
    nkey, ncls : ndarray of shape (n, k_out) or None
        Keys and class codes of the first ``k_out`` neighbours (``-1`` pads).
    """

    n_other: np.ndarray
    n_edges: np.ndarray
    nkey: np.ndarray | None = None
    ncls: np.ndarray | None = None


def _positions(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each key in ``sorted_keys`` (``-1`` when absent)."""
    if not len(sorted_keys):
        return np.full(len(keys), -1, np.int64)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == keys, pos, -1)


def profiles(
    engine: Engine,
    frame: Any,
    info: FrameInfo,
    rows: list[ClassRows],
    *,
    m: int,
    k_out: int,
    knn: KnnConfig,
) -> tuple[list[Profile], Neighbourhood]:
    """The neighbourhood profile of every row of ``rows``' classes over all classes.

    Parameters
    ----------
    m : int
        Neighbours counted for ``n_other``.
    k_out : int
        Neighbours whose keys and classes are returned too (0: none).
    """
    k = max(m, k_out)
    t0 = time.perf_counter()
    with stage("neighbours over all classes: planning"):
        hood = neighbours_over_all_classes(
            engine, frame, label=info.label, features=info.features, classes=info.classes,
            dtype=info.point_dtype, n_rows=info.n_rows, k=k, query_classes=[r.value for r in rows],
            knn=knn, finish=neighbour_profile, finish_meta=neighbour_profile_meta(k_out),
            finish_args=(m, k_out), queries=driver_queries([r.x for r in rows], [r.code for r in rows]),
        )
    with stage("neighbours over all classes: search"):
        table = collect_per_query(engine, hood.result, max_rows=sum(len(r.x) for r in rows))
    table = table.sort_values("qkey", kind="stable")
    logger.info("neighbours over all classes of %d rows: %.1fs (%s)", len(table), time.perf_counter() - t0, hood.info.mode)
    qkeys = table["qkey"].to_numpy(np.int64)
    out = []
    for r in rows:
        pos = _positions(qkeys, driver_keys(r.x, r.code))
        found = pos >= 0

        def column(name: str, dtype: Any, fill: int = 0) -> np.ndarray:
            values = np.full(len(pos), fill, dtype)
            values[found] = table[name].to_numpy(dtype)[pos[found]]
            return values

        nkey = ncls = None
        if k_out:
            nkey = np.stack([column(f"nkey{j}", np.int64, -1) for j in range(k_out)], axis=1)
            ncls = np.stack([column(f"ncls{j}", np.int64, -1) for j in range(k_out)], axis=1)
        out.append(Profile(column("n_other", np.int64), column("n_edges", np.int64), nkey, ncls))
    return out, hood


def neighbours_table(
    engine: Engine, hood: Neighbourhood, info: FrameInfo, row: ClassRows, profile: Profile,
    seeds: np.ndarray,
) -> Neighbours:
    """Borderline-SMOTE-2's neighbours of the ``seeds`` rows, with their points.

    Same-class neighbours are rows already on the driver; the other classes' neighbours
    are fetched by key in one filtering pass (at most ``len(seeds) · k`` rows).
    """
    nkey, ncls = profile.nkey, profile.ncls
    n, k = nkey.shape
    own_keys = driver_keys(row.x, row.code)
    own_order = np.argsort(own_keys, kind="stable")
    own_sorted = own_keys[own_order]
    use = np.zeros(n, bool)
    use[seeds] = True
    other = use[:, None] & (ncls != row.code) & (nkey != -1)
    fetched = fetch_rows(engine, hood, nkey[other], len(info.features), info.point_dtype)
    foreign_keys = fetched[KEY].to_numpy(np.int64)
    foreign = fetched[feature_names(len(info.features))].to_numpy(np.float64)
    pool = np.concatenate([row.x, foreign]) if len(foreign) else row.x
    same = np.r_[np.ones(len(row.x), bool), np.zeros(len(foreign), bool)]
    index = np.full((n, k), -1, np.int64)
    mine = use[:, None] & (ncls == row.code)
    pos = _positions(own_sorted, nkey[mine])
    index[mine] = np.where(pos >= 0, own_order[np.maximum(pos, 0)], -1)
    pos = _positions(foreign_keys, nkey[other])
    index[other] = np.where(pos >= 0, len(row.x) + pos, -1)
    # Neighbours come in rank order; a missing one (approximate mode) ends the list.
    valid = index >= 0
    count = np.where(valid.all(axis=1), k, valid.argmin(axis=1)).astype(np.int64)
    return Neighbours(index, count, pool.astype(row.x.dtype), same)


__all__ = ["Profile", "profiles", "neighbours_table"]
