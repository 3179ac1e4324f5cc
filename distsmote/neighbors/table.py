"""Join tables and edge tables: their columns, schemas and how a frame becomes one.

A *join table* holds one row per distinct content within a partition:
``(__key, __cls, __mult, f0 … f{d-1})`` — content key, class code, multiplicity and the
features.  An *edge table* holds one row per ``(query, rank)``:
``qkey, qcls, rank, nkey, ncls, distance``.  Partial candidates between the search and
the merge carry ``qkey, qcls, nkey, ncls, d2, mult``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from distsmote.engines.base import Engine, empty_frame
from distsmote.neighbors.keys import class_codes, content_keys, key_hash

KEY, CLS, MULT = "__key", "__cls", "__mult"
#: Seed of every key hash the join plans with (sample, skew-split parts).
HASH_SEED = 0x5EED


def feature_names(n_features: int) -> list[str]:
    """Internal feature column names of a join table."""
    return [f"f{j}" for j in range(n_features)]


def table_meta(n_features: int, dtype: Any) -> pd.DataFrame:
    """Empty frame with the columns and dtypes of a join table."""
    return empty_frame({KEY: np.int64, CLS: np.int32, MULT: np.int64, **{f: dtype for f in feature_names(n_features)}})


def edge_meta() -> pd.DataFrame:
    """Empty frame with the columns and dtypes of an edge table."""
    return empty_frame(
        {"qkey": np.int64, "qcls": np.int32, "rank": np.int32, "nkey": np.int64, "ncls": np.int32, "distance": np.float64}
    )


def partial_meta() -> pd.DataFrame:
    """Empty frame with the columns and dtypes of partial candidates."""
    return empty_frame(
        {"qkey": np.int64, "qcls": np.int32, "nkey": np.int64, "ncls": np.int32, "d2": np.float64, "mult": np.int64}
    )


@dataclass(frozen=True)
class _KeySpec:
    features: tuple[str, ...]
    label: str
    classes: tuple[Any, ...]
    dtype: str
    #: Only the rows of these classes (``None``: every row).
    only: tuple[Any, ...] | None = None


def _frame_keys(pdf: pd.DataFrame, spec: _KeySpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if spec.only is not None:
        pdf = pdf.loc[pdf[spec.label].isin(list(spec.only)).to_numpy(bool)]
    values = pdf[list(spec.features)].to_numpy(dtype=np.float64)
    codes = class_codes(pdf[spec.label], spec.classes, spec.label)
    return values, codes, content_keys(values, codes)


def _prepare(pdf: pd.DataFrame, spec: _KeySpec, threads: int) -> pd.DataFrame:
    return _table_rows(*_frame_keys(pdf, spec), spec.dtype)


def _table_rows(values: np.ndarray, codes: np.ndarray, keys: np.ndarray, dtype: str) -> pd.DataFrame:
    """Join-table rows of some rows of a partition: copies merged, counted."""
    uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
    out = pd.DataFrame(values[first].astype(dtype), columns=feature_names(values.shape[1]))
    out.insert(0, MULT, counts.astype(np.int64))
    out.insert(0, CLS, codes[first])
    out.insert(0, KEY, uniq)
    return out


def _sampled_rows(pdf: pd.DataFrame, args: tuple[_KeySpec, np.uint64], threads: int) -> pd.DataFrame:
    spec, threshold = args
    values, codes, keys = _frame_keys(pdf, spec)
    pick = key_hash(keys, HASH_SEED, "sample") <= threshold
    return _table_rows(values[pick], codes[pick], keys[pick], spec.dtype)


@dataclass(frozen=True)
class TableSource:
    """The frame a join table is made from, and how (see :func:`table_source`)."""

    frame: Any
    spec: _KeySpec

    def sampled(self, engine: Engine, threshold: np.uint64) -> Any:
        """The join-table rows whose key hash is at most ``threshold``, made from the
        frame directly: the same rows as filtering the table, without building the
        table rows that are left out."""
        meta = table_meta(len(self.spec.features), self.spec.dtype)
        return engine.map_partitions(self.frame, _sampled_rows, engine.broadcast((self.spec, threshold)), meta)


def table_source(
    frame: Any, label: str, features: Sequence[str], classes: Sequence[Any], dtype: Any,
    only: Sequence[Any] | None = None,
) -> TableSource:
    """What :func:`prepare_table` needs to make a join table of ``frame``."""
    spec = _KeySpec(tuple(features), label, tuple(classes), np.dtype(dtype).name,
                    None if only is None else tuple(only))
    return TableSource(frame, spec)


def _keys_only(pdf: pd.DataFrame, spec: _KeySpec) -> np.ndarray:
    return _frame_keys(pdf, spec)[2]


def prepare_table(
    engine: Engine, frame: Any, label: str, features: Sequence[str], classes: Sequence[Any], dtype: Any,
    only: Sequence[Any] | None = None,
) -> Any:
    """The join table of a frame: content key, class code, multiplicity, features.

    Copies of a row within one partition are merged into one table row with their count
    (copies in other partitions are merged later, inside the join).  ``only``: keep the
    rows of these classes alone (class codes still count every class).
    """
    spec = table_source(frame, label, features, classes, dtype, only).spec
    meta = table_meta(len(features), dtype)
    return engine.map_partitions(frame, _prepare, engine.broadcast(spec), meta)


def row_keys(engine: Engine, label: str, features: Sequence[str], classes: Sequence[Any]) -> tuple[Any, Any]:
    """``(fn, handle)`` computing each row's content key (the keys of :func:`prepare_table`),
    for :meth:`~distsmote.engines.base.Engine.anti_join`'s ``by``."""
    return _keys_only, engine.broadcast(_KeySpec(tuple(features), label, tuple(classes), "float64"))


def table_arrays(pdf: pd.DataFrame, n_features: int):
    """Features (float64), keys, class codes and multiplicities of a join-table frame."""
    x = pdf[feature_names(n_features)].to_numpy(dtype=np.float64)
    return (
        x,
        pdf[KEY].to_numpy(dtype=np.int64),
        pdf[CLS].to_numpy(dtype=np.int32),
        pdf[MULT].to_numpy(dtype=np.int64),
    )

