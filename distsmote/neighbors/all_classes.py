"""Neighbours over all classes: the one service under Tomek, ENN, ADASYN and Borderline.

Each of them asks the same question: *for the rows of some classes, which are the k
nearest rows among all rows, and what follows for each such row?*  This module answers
it with one call over the distributed kNN join (:func:`distsmote.neighbors.join.knn_join`):
the queries are the given classes' rows, the database is every row, and a ``finish``
function runs per query inside the join's merge task, so only its (small) result
leaves the engine.  Helpers to bring per-query results and a few rows back to the
driver live here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from distsmote._unique import unique_sorted
from distsmote.engines.base import Engine
from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.join import knn_join
from distsmote.neighbors.join_plan import JoinInfo, resolve_mode
from distsmote.neighbors.table import KEY, prepare_table, table_meta, table_source
from distsmote.neighbors.query_join import query_join
from distsmote.neighbors.keys import content_keys


@dataclass
class Neighbourhood:
    """The result of :func:`neighbours_over_all_classes`.

    Attributes
    ----------
    result : frame
        ``finish`` output, partitioned (lazy on Dask and Spark).
    table : frame
        The join table (``__key, __cls, __mult, f0…``), for fetching rows by key.
    info : JoinInfo
        Planning facts of the join.
    """

    result: Any
    table: Any
    info: JoinInfo


def neighbours_over_all_classes(
    engine: Engine,
    frame: Any,
    *,
    label: str,
    features: Sequence[str],
    classes: Sequence[Any],
    dtype: Any,
    n_rows: int,
    k: int,
    query_classes: Sequence[Any] | None,
    knn: KnnConfig,
    finish: Callable[[pd.DataFrame, Any], pd.DataFrame],
    finish_meta: pd.DataFrame,
    finish_args: Any = None,
    queries: pd.DataFrame | None = None,
) -> Neighbourhood:
    """The ``k`` nearest rows among all rows of every row of ``query_classes``.

    Parameters
    ----------
    engine : Engine
    frame : frame
        The input (pandas, Dask or Spark).
    label, features : str, sequence of str
        The class column and the feature columns.
    classes : sequence
        Every class, in sorted order (defines the class codes ``qcls``/``ncls``).
    dtype : numpy dtype
        Feature dtype of the join (float32 when every feature is float32).
    n_rows : int
        Rows of ``frame`` (from the class counts; sizes the join's sample and cells).
    k : int
        Neighbours per query row.
    query_classes : sequence, optional
        Classes whose rows are queries (``None``: all).
    knn : KnnConfig
        Exact or approximate join (see :func:`~distsmote.neighbors.join.knn_join`).
    finish : callable
        ``finish(edges, finish_args) -> frame`` on the complete edges
        (``qkey, qcls, rank, nkey, ncls, distance``) of the queries of one merge task.
    finish_meta : pandas.DataFrame
        Empty frame with ``finish``'s output schema.
    queries : pandas.DataFrame, optional
        The query rows when the caller already holds them on the driver (``key``,
        ``cls``, ``f0…``; see :func:`driver_queries`).  When they are few
        (:func:`broadcast_queries`) they are broadcast and the data never moves
        (:func:`~distsmote.neighbors.query_join.query_join`); the result is the same.

    Returns
    -------
    Neighbourhood
    """
    table = prepare_table(engine, frame, label, features, classes, dtype)
    source = table_source(frame, label, features, classes, dtype)
    codes = None
    if query_classes is not None:
        position = {c: i for i, c in enumerate(classes)}
        codes = [position[c] for c in query_classes]
    common = dict(
        k=k, n_rows=n_rows, n_features=len(features), dtype=dtype, n_classes=len(classes),
        knn=knn, query_classes=codes, finish=finish, finish_args=finish_args, finish_meta=finish_meta,
        source=source,
    )
    if queries is not None and broadcast_queries(len(queries), n_rows, resolve_mode(knn, n_rows)):
        result, info = query_join(engine, table, queries=queries, **common)
    else:
        result, info = knn_join(engine, table, **common)
    return Neighbourhood(result, table, info)


#: Exact mode broadcasts the queries when each partition can be searched exhaustively:
#: at most this many (query, row) distance pairs in all.
EXACT_BROADCAST_PAIRS = 2_000_000_000


def broadcast_queries(n_queries: int, n_rows: int, exact: bool) -> bool:
    """Whether driver-held queries are broadcast rather than shuffled with the data."""
    if exact:
        return n_queries * n_rows <= EXACT_BROADCAST_PAIRS
    return 4 * n_queries <= n_rows


def driver_queries(points: Sequence[np.ndarray], codes: Sequence[int]) -> pd.DataFrame:
    """The query table of rows held on the driver: one row per distinct content key."""
    parts = []
    for x, code in zip(points, codes):
        keys = driver_keys(x, code)
        keys, first = np.unique(keys, return_index=True)
        part = pd.DataFrame(np.asarray(x, dtype=np.float64)[first], columns=[f"f{j}" for j in range(x.shape[1])])
        part.insert(0, "cls", np.full(len(keys), code, np.int32))
        part.insert(0, "key", keys)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def driver_keys(x: np.ndarray, class_code: int) -> np.ndarray:
    """Content keys of rows of one class held on the driver (the join's keys)."""
    return content_keys(np.asarray(x, dtype=np.float64), np.full(len(x), class_code, np.int32))


def collect_per_query(engine: Engine, result: Any, max_rows: int) -> pd.DataFrame:
    """Collect a per-query ``finish`` result (one row per distinct query key).

    Copies of a query row in several input partitions give the same row more than
    once; they are merged here.  ``max_rows`` bounds what may reach the driver.
    """
    rows = engine.collect_small(result, max_rows=max_rows)
    return rows.drop_duplicates("qkey").reset_index(drop=True)


def _pick_keys(pdf: pd.DataFrame, keyset: np.ndarray, threads: int) -> pd.DataFrame:
    keys = pdf[KEY].to_numpy(np.int64)
    pos = np.minimum(np.searchsorted(keyset, keys), max(len(keyset) - 1, 0))
    hit = (keyset[pos] == keys) if len(keyset) else np.zeros(len(keys), bool)
    return pdf.loc[hit]


def fetch_rows(
    engine: Engine, hood: Neighbourhood, keys: np.ndarray, n_features: int, dtype: Any
) -> pd.DataFrame:
    """The join-table rows with these keys (``__key, __cls, __mult, f0…``), one per key.

    One filtering pass over the table; only the requested rows reach the driver.
    """
    keyset = unique_sorted(np.asarray(keys, dtype=np.int64))
    if not len(keyset):
        return table_meta(n_features, dtype)
    picked = engine.map_partitions(
        hood.table, _pick_keys, engine.broadcast(keyset), table_meta(n_features, dtype)
    )
    bound = len(keyset) * max(1, engine.num_partitions(hood.table))
    rows = engine.collect_small(picked, max_rows=bound)
    return rows.sort_values(KEY, kind="stable").drop_duplicates(KEY).reset_index(drop=True)


__all__ = [
    "Neighbourhood",
    "neighbours_over_all_classes",
    "driver_keys",
    "collect_per_query",
    "driver_queries",
    "fetch_rows",
]
