"""Kernels that run inside worker tasks: SMOTE generation and cleaning decisions.

Workers unpickle these functions by reference, so this module imports only numpy,
pandas and the neighbour search: no scikit-learn, which keeps worker start-up fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from distsmote._faults import fault_point
from distsmote._plan import Task
from distsmote.engines.base import empty_frame
from distsmote._random import draw_integers, draw_uniform, stream_key
from distsmote.neighbors.index import ShippedIndex, search_neighbors


@dataclass(frozen=True)
class ClassPlan:
    """Everything a worker needs to generate one class's synthetic rows."""

    value: Any
    points: np.ndarray  # canonical order; float32 if every feature is float32, else float64
    children: np.ndarray  # children per canonical row
    index: ShippedIndex


@dataclass(frozen=True)
class SmotePayload:
    """The broadcast object: one plan per oversampled class."""

    features: tuple[str, ...]
    label: str
    indicator: str | None
    classes: tuple[ClassPlan, ...]
    k: int
    seed: int
    rerank_extra: int


def smote_task(task: Task, payload: SmotePayload, threads: int) -> pd.DataFrame:
    """Generate the children of canonical rows ``[task.start, task.stop)`` of one class.

    Child ``j`` of row ``i`` is ``x_i + u·(x_nn − x_i)`` where ``nn`` is drawn among the
    ``k`` nearest other rows of ``x_i`` and ``u ∈ [0, 1)``, both from the counter-based
    stream keyed by ``(seed, class, i, j)``.
    """
    fault_point("generate")
    plan = payload.classes[task.class_pos]
    counts = plan.children[task.start : task.stop]
    seeds = np.arange(task.start, task.stop)
    nbrs = search_neighbors(
        plan.index, plan.points, seeds, payload.k, payload.rerank_extra, threads
    )
    rows = np.repeat(seeds, counts)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    child = np.arange(len(rows)) - offsets
    pick = draw_integers(stream_key(payload.seed, "neighbour", task.class_pos), payload.k, rows, child)
    gap = draw_uniform(stream_key(payload.seed, "gap", task.class_pos), rows, child)
    base = plan.points[rows]
    diff = np.subtract(plan.points[nbrs[rows - task.start, pick]], base, dtype=np.float64)
    # Float64 arithmetic, one cast back to the points' dtype; column-major so that each
    # column below is a contiguous view, not a copy.
    values = np.asfortranarray(base + gap[:, None] * diff, dtype=plan.points.dtype)
    columns = {name: values[:, j] for j, name in enumerate(payload.features)}
    columns[payload.label] = np.full(len(values), plan.value, dtype=object if isinstance(plan.value, str) else None)
    out = pd.DataFrame(columns, copy=False)
    if payload.indicator:
        out[payload.indicator] = True
    return out


#: Row-key column added to the input while the removed rows are anti-joined away.
ROW_KEY = "__distsmote_row_key__"


def removed_meta() -> pd.DataFrame:
    return empty_frame({ROW_KEY: np.int64})


def _groups(qkey: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, qkey[1:] != qkey[:-1]]) if len(qkey) else np.empty(0, np.int64)


def enn_decide(edges: pd.DataFrame, args: tuple[str, int]) -> pd.DataFrame:
    """Keys of the query rows ENN removes, from their complete edge lists.

    ``kind_sel='all'`` removes a row when any neighbour has another class; ``'mode'``
    when the most frequent neighbour class (ties: the smallest class, as
    ``scipy.stats.mode``) is not the row's class.
    """
    kind_sel, n_classes = args
    edges = edges.sort_values(["qkey", "rank"], kind="stable")
    qkey = edges["qkey"].to_numpy(np.int64)
    qcls = edges["qcls"].to_numpy(np.int64)
    ncls = edges["ncls"].to_numpy(np.int64)
    start = _groups(qkey)
    if not len(start):
        return removed_meta()
    if kind_sel == "all":
        remove = np.logical_or.reduceat(ncls != qcls, start)
    else:
        group = np.cumsum(np.r_[True, qkey[1:] != qkey[:-1]]) - 1
        counts = np.zeros((len(start), n_classes), np.int64)
        np.add.at(counts, (group, ncls), 1)
        remove = counts.argmax(1) != qcls[start]
    return pd.DataFrame({ROW_KEY: qkey[start][remove]})


def tomek_edges(edges: pd.DataFrame, args: Any) -> pd.DataFrame:
    """Each row's nearest-neighbour edge, keyed by the smaller key of the pair."""
    first = edges[(edges["rank"] == 0) & (edges["qkey"] != edges["nkey"])]
    qkey = first["qkey"].to_numpy(np.int64)
    nkey = first["nkey"].to_numpy(np.int64)
    return pd.DataFrame(
        {
            "pair": np.minimum(qkey, nkey),
            "qkey": qkey,
            "qcls": first["qcls"].to_numpy(np.int32),
            "nkey": nkey,
            "ncls": first["ncls"].to_numpy(np.int32),
        }
    )


def tomek_edges_meta() -> pd.DataFrame:
    return empty_frame({"pair": np.int64, "qkey": np.int64, "qcls": np.int32, "nkey": np.int64, "ncls": np.int32})


def tomek_links(pdf: pd.DataFrame, targeted: np.ndarray, threads: int) -> pd.DataFrame:
    """Keys removed by Tomek links: mutual nearest neighbours with different classes.

    ``pdf`` holds complete pairs (both directions of an edge share ``pair``).  Only the
    rows whose class is ``targeted`` are removed.
    """
    qkey = pdf["qkey"].to_numpy(np.int64)
    nkey = pdf["nkey"].to_numpy(np.int64)
    lo, hi = np.minimum(qkey, nkey), np.maximum(qkey, nkey)
    order = np.lexsort((qkey, hi, lo))
    lo, hi, qkey = lo[order], hi[order], qkey[order]
    qcls = pdf["qcls"].to_numpy(np.int64)[order]
    ncls = pdf["ncls"].to_numpy(np.int64)[order]
    mutual = (lo[1:] == lo[:-1]) & (hi[1:] == hi[:-1]) & (qcls[1:] != ncls[1:])
    first = np.flatnonzero(mutual)
    rows = np.concatenate([first, first + 1])
    rows = rows[targeted[qcls[rows]]]
    return pd.DataFrame({ROW_KEY: np.sort(qkey[rows])})
