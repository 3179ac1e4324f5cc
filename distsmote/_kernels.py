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
from distsmote._numba import compiled
from distsmote._plan import Task
from distsmote.engines.base import empty_frame
from distsmote._random import draw_bits, draw_uniform, mix64, stream_key
from distsmote.neighbors.index import SearchIndex, search_neighbors


@dataclass(frozen=True)
class Neighbours:
    """Precomputed neighbours of a class's rows among *all* classes (Borderline-SMOTE-2).

    Attributes
    ----------
    rows : ndarray of shape (n_rows, k), int64
        For each canonical row with children, positions in ``pool`` of its ``k``
        nearest rows over all classes (``-1`` pads a short list); unused for other rows.
    count : ndarray of shape (n_rows,), int64
        Valid entries of each row of ``rows``.
    pool : ndarray of shape (n_pool, d)
        The neighbour points.
    same : ndarray of shape (n_pool,), bool
        Whether a pool point belongs to the class being oversampled.
    """

    rows: np.ndarray
    count: np.ndarray
    pool: np.ndarray
    same: np.ndarray


@dataclass(frozen=True)
class ClassPlan:
    """Everything a worker needs to generate one class's synthetic rows.

    The allocation (``children``) is an input: even for SMOTE, weighted for ADASYN,
    the danger rows only for Borderline-SMOTE.  Neighbours come from ``index`` (the
    class's own rows) or, when ``neighbours`` is given, from that precomputed table.
    """

    value: Any
    points: np.ndarray  # canonical order; float32 if every feature is float32, else float64
    children: np.ndarray  # children per canonical row
    index: SearchIndex | None
    neighbours: Neighbours | None = None
    codes: np.ndarray | None = None  # categorical features as codes into vocab (canonical order)
    vocab: tuple = ()  # each categorical feature's sorted distinct values in the class
    extra: pd.DataFrame | None = None  # partition columns, canonical order
    #: Content keys (canonical order) that key the random streams instead of the
    #: canonical row numbers (SMOTE: the same streams as generation from the kNN join).
    ids: np.ndarray | None = None


@dataclass(frozen=True)
class OutputColumns:
    """The columns of synthetic rows besides the numeric features and the label.

    Attributes
    ----------
    categorical : tuple of str
        Categorical features: the most frequent value among the seed's neighbours.
    nulls : tuple of str
        Passthrough columns, null on synthetic rows.
    partition : tuple of str
        Partition columns: the seed row's value.
    id_column : str or None
        Gets fresh ids: a hash of (seed, class, canonical row, child).
    id_string : bool
        Whether the id column holds strings (else int64).
    """

    categorical: tuple[str, ...] = ()
    nulls: tuple[str, ...] = ()
    partition: tuple[str, ...] = ()
    id_column: str | None = None
    id_string: bool = False


@dataclass(frozen=True)
class SmotePayload:
    """The broadcast object: one plan per oversampled class.

    ``other_step`` scales the step toward a neighbour of another class (Borderline-
    SMOTE-2 draws it uniformly from ``[0, other_step)``).
    """

    features: tuple[str, ...]
    label: str
    indicator: str | None
    classes: tuple[ClassPlan, ...]
    k: int
    seed: int
    rerank_extra: int
    other_step: float = 0.5
    out: OutputColumns = OutputColumns()


def neighbour_picks(seed: int, class_pos: int, high: Any, ids: np.ndarray, child: np.ndarray) -> np.ndarray:
    """Rank of each child's partner among its row's ``high`` nearest (an int, or one
    count per child), from the stream keyed by ``(seed, class, row id, child)``."""
    u = draw_uniform(stream_key(seed, "neighbour", class_pos), ids, child)
    return np.minimum((u * high).astype(np.int64), np.asarray(high, dtype=np.int64) - 1)


def gaps(seed: int, class_pos: int, ids: np.ndarray, child: np.ndarray) -> np.ndarray:
    """Each child's step ``u ∈ [0, 1)`` toward its partner."""
    return draw_uniform(stream_key(seed, "gap", class_pos), ids, child)


@compiled(nogil=True, boundscheck=False)
def _interpolate(base: np.ndarray, rows: np.ndarray, pool: np.ndarray, targets: np.ndarray,
                 gap: np.ndarray, out: np.ndarray) -> None:
    n, d = out.shape
    for i in range(n):
        b, t, g = rows[i], targets[i], gap[i]
        for j in range(d):
            v = np.float64(base[b, j])
            out[i, j] = v + g * (np.float64(pool[t, j]) - v)


def interpolate(base: np.ndarray, rows: np.ndarray, pool: np.ndarray, targets: np.ndarray,
                gap: np.ndarray, dtype: Any) -> np.ndarray:
    """``x + gap · (p − x)`` for ``x = base[rows]`` and ``p = pool[targets]``, row by row:
    in float64, cast once to ``dtype``.

    Column-major, so that each column of the result is a contiguous view, not a copy;
    the rows are gathered as they are used (a fifth of the time of gathering both
    tables, computing and transposing with numpy, for the same values).
    """
    rows, targets = np.asarray(rows, np.int64), np.asarray(targets, np.int64)
    if len(rows) and not (0 <= rows.min() and rows.max() < len(base) and 0 <= targets.min()
                          and targets.max() < len(pool)):
        raise IndexError("a synthetic row's seed or partner is not a row of its table")
    out = np.empty((len(rows), base.shape[1]), dtype=dtype, order="F")
    _interpolate(base, rows, pool, targets, np.asarray(gap, np.float64), out)
    return out


def _partners(plan: ClassPlan, payload: SmotePayload, seeds: np.ndarray, rows: np.ndarray,
              ids: np.ndarray, child: np.ndarray, class_pos: int,
              threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The partner of each child, as a table and a row of it, and its extra step factor
    (1 within the class)."""
    if plan.neighbours is None:
        active = seeds[plan.children[seeds] > 0]
        nbrs = search_neighbors(plan.index, plan.points, active, payload.k, payload.rerank_extra, threads)
        slot = np.searchsorted(active, rows)
        pick = neighbour_picks(payload.seed, class_pos, payload.k, ids, child)
        return plan.points, nbrs[slot, pick], np.ones(len(rows))
    nb = plan.neighbours
    pick = neighbour_picks(payload.seed, class_pos, nb.count[rows], ids, child)
    target = nb.rows[rows, pick]
    factor = np.where(
        nb.same[target], 1.0,
        payload.other_step * draw_uniform(stream_key(payload.seed, "other-step", class_pos), ids, child),
    )
    return nb.pool, target, factor


def smote_task(task: Task, payload: SmotePayload, threads: int) -> pd.DataFrame:
    """Generate the children of canonical rows ``[task.start, task.stop)`` of one class.

    Child ``j`` of row ``i`` is ``x_i + u·(x_nn − x_i)`` where ``nn`` is drawn among the
    ``k`` nearest other rows of ``x_i`` and ``u ∈ [0, 1)``, both from the counter-based
    stream keyed by ``(seed, class, id of i, j)``: the row's content key when the plan
    has ``ids`` (SMOTE), else its canonical row number.  Toward a neighbour of another class
    (Borderline-SMOTE-2) the step is ``u·v`` with ``v ∈ [0, other_step)``.
    """
    fault_point("generate")
    plan = payload.classes[task.class_pos]
    counts = plan.children[task.start : task.stop]
    seeds = np.arange(task.start, task.stop)
    rows = np.repeat(seeds, counts)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    child = np.arange(len(rows)) - offsets
    ids = rows if plan.ids is None else plan.ids[rows]
    pool, target, factor = _partners(plan, payload, seeds, rows, ids, child, task.class_pos, threads)
    gap = gaps(payload.seed, task.class_pos, ids, child) * factor
    values = interpolate(plan.points, rows, pool, target, gap, plan.points.dtype)
    columns = {name: values[:, j] for j, name in enumerate(payload.features)}
    spec = payload.out
    if spec.categorical:
        nb = plan.neighbours
        for j, name in enumerate(spec.categorical):
            key = stream_key(payload.seed, "category", task.class_pos, j)
            codes = vote(plan.codes[:, j][np.maximum(nb.rows[rows], 0)], nb.rows[rows] >= 0, key, ids, child)
            columns[name] = plan.vocab[j][codes]
    for name in spec.partition:
        columns[name] = plan.extra[name].to_numpy()[rows] if len(rows) else plan.extra[name].to_numpy()[:0]
    return finish_rows(columns, payload, plan.value, ids, child, task.class_pos)


def finish_rows(columns: dict, payload: SmotePayload, value: Any, ids: np.ndarray,
                child: np.ndarray, class_pos: int) -> pd.DataFrame:
    """Synthetic rows of one class from their feature columns: add the label, the null
    passthrough columns, fresh ids and the indicator."""
    n = len(ids)
    spec = payload.out
    columns[payload.label] = np.full(n, value, dtype=object if isinstance(value, str) else None)
    for name in spec.nulls:
        columns[name] = np.full(n, None, dtype=object)
    if spec.id_column:
        bits = draw_bits(stream_key(payload.seed, "id", class_pos), ids, child) >> np.uint64(1)
        fresh = bits.astype(np.int64)
        columns[spec.id_column] = (
            np.array([f"synthetic-{v:016x}" for v in fresh], dtype=object) if spec.id_string else fresh
        )
    out = pd.DataFrame(columns, copy=False)
    if payload.indicator:
        out[payload.indicator] = True
    return out


def vote(codes: np.ndarray, valid: np.ndarray, key: np.uint64, rows: np.ndarray,
         child: np.ndarray) -> np.ndarray:
    """The most frequent code of each row of ``codes`` (n, k); ties drawn by the seed.

    Among the codes with the highest count, the one with the smallest hash of
    ``(key, row, child, code)`` wins: a uniform, deterministic choice per synthetic row.
    Memory is ``n × k × k`` booleans at most, never proportional to the number of
    categories.
    """
    if not len(codes):
        return np.empty(0, np.int64)
    codes = np.where(valid, codes, -1).astype(np.int64)
    counts = ((codes[:, :, None] == codes[:, None, :]) & valid[:, None, :]).sum(-1)
    counts[~valid] = -1
    top = counts == counts.max(axis=1, keepdims=True)
    salt = draw_bits(key, rows, child)
    with np.errstate(over="ignore"):
        score = mix64(codes.astype(np.uint64) ^ salt[:, None])
    score = np.where(top, score, np.uint64(np.iinfo(np.uint64).max))
    return codes[np.arange(len(codes)), score.argmin(axis=1)]


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


def neighbour_profile_meta(k_out: int) -> pd.DataFrame:
    """Schema of :func:`neighbour_profile` with ``k_out`` neighbour columns."""
    cols: dict[str, Any] = {"qkey": np.int64, "n_other": np.int32, "n_edges": np.int32}
    cols.update({f"nkey{j}": np.int64 for j in range(k_out)})
    cols.update({f"ncls{j}": np.int32 for j in range(k_out)})
    return empty_frame(cols)


def neighbour_profile(edges: pd.DataFrame, args: tuple[int, int]) -> pd.DataFrame:
    """One row per query: its neighbourhood over all classes, reduced.

    ``args = (m, k_out)``: ``n_other`` counts the neighbours of another class among the
    first ``m`` (``n_edges`` of them were found), and, when ``k_out > 0``, the first
    ``k_out`` neighbours' keys and class codes follow (``-1`` pads a short list).
    ADASYN reads ``n_other`` as its weight; Borderline-SMOTE its danger test, and
    Borderline-SMOTE-2 its neighbours.
    """
    m, k_out = args
    edges = edges.sort_values(["qkey", "rank"], kind="stable")
    qkey = edges["qkey"].to_numpy(np.int64)
    if not len(qkey):
        return neighbour_profile_meta(k_out)
    rank = edges["rank"].to_numpy(np.int64)
    other = edges["ncls"].to_numpy(np.int64) != edges["qcls"].to_numpy(np.int64)
    start = _groups(qkey)
    group = np.cumsum(np.r_[True, qkey[1:] != qkey[:-1]]) - 1
    within = rank < m
    out = {
        "qkey": qkey[start],
        "n_other": np.bincount(group, weights=other & within, minlength=len(start)).astype(np.int32),
        "n_edges": np.bincount(group, weights=within, minlength=len(start)).astype(np.int32),
    }
    if k_out:
        nkey = np.full((len(start), k_out), -1, np.int64)
        ncls = np.full((len(start), k_out), -1, np.int32)
        sel = rank < k_out
        nkey[group[sel], rank[sel]] = edges["nkey"].to_numpy(np.int64)[sel]
        ncls[group[sel], rank[sel]] = edges["ncls"].to_numpy(np.int32)[sel]
        out.update({f"nkey{j}": nkey[:, j] for j in range(k_out)})
        out.update({f"ncls{j}": ncls[:, j] for j in range(k_out)})
    return pd.DataFrame(out)


def value_class_partial(pdf: pd.DataFrame, args: tuple, threads: int) -> pd.DataFrame:
    """Rows per (feature value, class) of one partition, for SMOTEN's value difference
    metric.  ``args = (features, label, classes)``; one output row per distinct value
    key (:func:`distsmote.columns.value_keys`, salted by the feature's position) with
    a count column ``n<code>`` per class."""
    from distsmote.columns import plain_values, value_keys
    from distsmote.neighbors.keys import class_codes

    features, label, classes = args
    cls = class_codes(pdf[label], classes, label)
    parts = []
    for j, name in enumerate(features):
        keys = value_keys(plain_values(pdf[name]), salt=j + 1)
        parts.append(pd.DataFrame({"vkey": keys, "cls": cls}))
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"vkey": [], "cls": []})
    table = long.groupby(["vkey", "cls"]).size().unstack(fill_value=0)
    out = pd.DataFrame({"vkey": table.index.to_numpy(np.int64)})
    for c in range(len(classes)):
        out[f"n{c}"] = table[c].to_numpy(np.int64) if c in table.columns else np.zeros(len(out), np.int64)
    return out


def value_class_meta(n_classes: int) -> pd.DataFrame:
    """Schema of :func:`value_class_partial`."""
    return empty_frame({"vkey": np.int64, **{f"n{c}": np.int64 for c in range(n_classes)}})
