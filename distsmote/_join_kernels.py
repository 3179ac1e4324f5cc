"""Worker-side steps of SMOTE generation from the distributed kNN join.

Used when a class to oversample is larger than the driver may hold
(:mod:`distsmote.samplers.join_generation`).  The rows never reach the driver; each
step is a partition function over a frame keyed by content key:

1. :func:`merge_copies`: the class's join-table rows, shuffled by key, become one
   *point* per key with its total multiplicity;
2. :func:`copy_histogram` and :func:`copies_in_bin`: the two small passes that choose
   which copies get an extra child (:mod:`distsmote._plan`);
3. the kNN join's merge task reduces each point's edges to one *neighbour list*
   (:func:`neighbour_lists`);
4. :func:`requests`: points and lists, shuffled by key together, give one request per
   synthetic row, addressed to the key of its partner;
5. :func:`synthesize`: requests and points, shuffled by the partner's key, give the
   synthetic rows.

Points, children, picks, steps and ids are the same functions of the content keys and
the seed as in the broadcast path (:func:`distsmote._kernels.smote_task`), so in exact
mode both paths give the same rows.  Like :mod:`distsmote._kernels`, this module
imports only numpy, pandas and the kernels, which keeps worker start-up fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from distsmote._kernels import SmotePayload, finish_rows, gaps, interpolate, neighbour_picks
from distsmote._plan import HIST_BITS, copy_scores, keyed_children
from distsmote.engines.base import empty_frame
from distsmote.neighbors.keys import keyed_order
from distsmote.neighbors.table import CLS, KEY, MULT
from distsmote.neighbors.table import feature_names as _features
#: Column of a stage-1 row: neighbours found (``-1`` marks a point row).
COUNT = "__count"
#: Columns of a stage-2 row: the requesting key and child (``-1`` marks a point row).
QKEY, CHILD = "__qkey", "__child"


@dataclass(frozen=True)
class JoinGeneration:
    """What the workers need to generate one class from the join (broadcast).

    Attributes
    ----------
    payload : SmotePayload
        Features, label, seed, k and output columns (``classes`` is empty).
    class_pos : int
        Position of the class among the oversampled classes (keys the streams).
    value : class label
    n_new, n_rows : int
        Synthetic rows to make, rows of the class.
    threshold : tuple or None
        Score of the last copy that gets an extra child (:func:`distsmote._plan.keyed_children`).
    n_features : int
    dtype : str
        The points' dtype (float32 when every feature is float32).
    """

    payload: SmotePayload
    class_pos: int
    value: Any
    n_new: int
    n_rows: int
    threshold: tuple[int, int, int] | None
    n_features: int
    dtype: str


def _lists(k: int) -> list[str]:
    return [f"__n{j}" for j in range(k)]


def stage1_meta(d: int, k: int, dtype: Any) -> pd.DataFrame:
    """Points and neighbour lists in one schema: ``__key, __mult, f…, __n0…, __count``."""
    return empty_frame({KEY: np.int64, MULT: np.int64, **{f: dtype for f in _features(d)},
                        **{n: np.int64 for n in _lists(k)}, COUNT: np.int64})


def stage2_meta(d: int, dtype: Any) -> pd.DataFrame:
    """Requests and points in one schema: ``__key, __qkey, __child, f…``."""
    return empty_frame({KEY: np.int64, QKEY: np.int64, CHILD: np.int64, **{f: dtype for f in _features(d)}})


def merge_copies(pdf: pd.DataFrame, d: int, threads: int) -> pd.DataFrame:
    """One join-table row per key, with the key's total multiplicity.

    All rows of a key are in this partition.  Their features are equal unless two
    contents share a key (about ``n²/2⁶⁵``); the smallest features then stand for the
    key, as the smallest canonical row does on the driver.
    """
    keys = pdf[KEY].to_numpy(np.int64)
    x = pdf[_features(d)].to_numpy()
    order = keyed_order(keys, x) if len(keys) else np.empty(0, np.int64)
    keys = keys[order]
    start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.empty(0, np.int64)
    out = pdf.iloc[order[start]].reset_index(drop=True)
    out[MULT] = np.add.reduceat(pdf[MULT].to_numpy(np.int64)[order], start) if len(start) else np.empty(0, np.int64)
    return out


def copy_histogram(pdf: pd.DataFrame, args: tuple[int, int], threads: int) -> pd.DataFrame:
    """Copies per histogram bin of their allocation hash: ``bin, copies``."""
    seed, class_pos = args
    hashes = copy_scores(seed, class_pos, pdf[KEY].to_numpy(np.int64), pdf[MULT].to_numpy(np.int64))[0]
    counts = np.bincount((hashes >> np.uint64(64 - HIST_BITS)).astype(np.int64), minlength=1 << HIST_BITS)
    bins = np.flatnonzero(counts)
    return pd.DataFrame({"bin": bins.astype(np.int64), "copies": counts[bins].astype(np.int64)})


def copies_in_bin(pdf: pd.DataFrame, args: tuple[int, int, int], threads: int) -> pd.DataFrame:
    """The scores of the copies whose hash falls in one bin: ``hash`` (bits as int64),
    ``key``, ``copy``."""
    seed, class_pos, wanted = args
    hashes, keys, copy, _ = copy_scores(seed, class_pos, pdf[KEY].to_numpy(np.int64), pdf[MULT].to_numpy(np.int64))
    pick = (hashes >> np.uint64(64 - HIST_BITS)).astype(np.int64) == wanted
    return pd.DataFrame({"hash": hashes[pick].view(np.int64), "key": keys[pick], "copy": copy[pick]})


def points_stage1(pdf: pd.DataFrame, k: int, threads: int) -> pd.DataFrame:
    """Point rows in the stage-1 schema (``__count = -1``)."""
    out = pdf.drop(columns=[CLS])
    for name in _lists(k):
        out[name] = np.int64(-1)
    out[COUNT] = np.int64(-1)
    return out


def neighbour_lists(edges: pd.DataFrame, args: tuple[int, int, str]) -> pd.DataFrame:
    """The kNN join's ``finish``: each query's neighbour keys in rank order, as a
    stage-1 row (``__count`` neighbours found, ``-1`` pads)."""
    k, d, dtype = args
    edges = edges.sort_values(["qkey", "rank"], kind="stable")
    qkey = edges["qkey"].to_numpy(np.int64)
    if not len(qkey):
        return stage1_meta(d, k, dtype)
    start = np.flatnonzero(np.r_[True, qkey[1:] != qkey[:-1]])
    group = np.cumsum(np.r_[True, qkey[1:] != qkey[:-1]]) - 1
    rank = edges["rank"].to_numpy(np.int64)
    lists = np.full((len(start), k), -1, np.int64)
    sel = rank < k
    lists[group[sel], rank[sel]] = edges["nkey"].to_numpy(np.int64)[sel]
    out = {KEY: qkey[start], MULT: np.zeros(len(start), np.int64)}
    out.update({f: np.zeros(len(start), dtype) for f in _features(d)})
    out.update({n: lists[:, j] for j, n in enumerate(_lists(k))})
    out[COUNT] = np.bincount(group[sel], minlength=len(start)).astype(np.int64)
    return pd.DataFrame(out)


def requests(pdf: pd.DataFrame, spec: JoinGeneration, threads: int) -> pd.DataFrame:
    """One stage-2 row per synthetic row: the key of its partner, its seed's key and
    features, and its child number."""
    p = spec.payload
    point = pdf[COUNT].to_numpy(np.int64) < 0
    pts = pdf.loc[point].sort_values(KEY, kind="stable")
    lists = pdf.loc[~point].sort_values(KEY, kind="stable").drop_duplicates(KEY)
    keys = pts[KEY].to_numpy(np.int64)
    children = keyed_children(keys, pts[MULT].to_numpy(np.int64), spec.n_new, spec.n_rows, p.seed,
                              spec.class_pos, spec.threshold)
    has = children > 0
    keys, children = keys[has], children[has]
    x = pts[_features(spec.n_features)].to_numpy()[has]
    slot = np.searchsorted(lists[KEY].to_numpy(np.int64), keys)
    slot = np.minimum(slot, max(len(lists) - 1, 0))
    found = (lists[KEY].to_numpy(np.int64)[slot] == keys) if len(lists) else np.zeros(len(keys), bool)
    count = lists[COUNT].to_numpy(np.int64)[slot] if len(lists) else np.zeros(len(keys), np.int64)
    if not (found & (count > 0)).all():
        raise RuntimeError(
            "The kNN join found no neighbour for a row that needs children (approximate "
            "mode, an isolated row). Use knn='exact', or raise knn={'generation_nprobe': ...}."
        )
    owner = np.repeat(np.arange(len(keys)), children)
    child = np.arange(len(owner)) - np.repeat(np.cumsum(children) - children, children)
    ids = keys[owner]
    pick = neighbour_picks(p.seed, spec.class_pos, count[owner], ids, child)
    nbrs = lists[_lists(p.k)].to_numpy(np.int64)[slot]
    out = {KEY: nbrs[owner, pick], QKEY: ids, CHILD: child}
    out.update({f: x[owner, j] for j, f in enumerate(_features(spec.n_features))})
    return pd.DataFrame(out)


def points_stage2(pdf: pd.DataFrame, d: int, threads: int) -> pd.DataFrame:
    """Point rows in the stage-2 schema (``__child = -1``)."""
    out = pdf[[KEY, *_features(d)]].copy()
    out.insert(1, QKEY, np.int64(-1))
    out.insert(2, CHILD, np.int64(-1))
    return out


def synthesize(pdf: pd.DataFrame, spec: JoinGeneration, threads: int) -> pd.DataFrame:
    """The synthetic rows of the requests in this partition, in (seed key, child) order:
    ``x + u·(x_nn − x)``, then the label, passthrough, id and indicator columns."""
    p = spec.payload
    names = _features(spec.n_features)
    point = pdf[CHILD].to_numpy(np.int64) < 0
    pts = pdf.loc[point].drop_duplicates(KEY).sort_values(KEY, kind="stable")
    req = pdf.loc[~point].sort_values([QKEY, CHILD], kind="stable")
    pkeys = pts[KEY].to_numpy(np.int64)
    slot = np.searchsorted(pkeys, req[KEY].to_numpy(np.int64))
    ids = req[QKEY].to_numpy(np.int64)
    child = req[CHILD].to_numpy(np.int64)
    gap = gaps(p.seed, spec.class_pos, ids, child)
    values = interpolate(req[names].to_numpy(), np.arange(len(req)), pts[names].to_numpy(), slot, gap, spec.dtype)
    columns = {name: values[:, j] for j, name in enumerate(p.features)}
    return finish_rows(columns, p, spec.value, ids, child, spec.class_pos)
