"""Numeric features for the samplers: one-hot encoding of categorical columns.

Numeric-only samplers (SMOTE, ADASYN, ... and the cleaners) see every categorical
(non-numeric) column one-hot encoded as float64 columns ``"<column>=<value>"``, one per
category, and numeric columns as float64 (so synthetic rows are not truncated to the
integers of an int column, as in an imbalanced-learn pipeline on a numeric array), with the categories counted once on the whole table (one small aggregation
per column; no rows reach the driver).  Samplers named in :data:`NOMINAL_SAMPLERS`
(SMOTENC) take the categorical columns as they are instead.

The encoding is row-local and written once against the engine primitives, so it is the
same on pandas, Dask and Spark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from distsmote.engines import Engine

#: Samplers that resample categorical columns natively (no one-hot encoding).
NOMINAL_SAMPLERS = frozenset({"smotenc"})
#: The synthetic-row indicator column of resampled train sides (kept by the encoding).
SYNTHETIC = "__distsmote_synthetic"
#: More categories than this in one column is refused (one-hot would explode).
MAX_CATEGORIES = 200


@dataclass(frozen=True)
class Encoding:
    """How a table's columns become model features.

    Attributes
    ----------
    label : str
    numeric : tuple of str
        Numeric feature columns, kept as they are.
    categories : dict
        ``{categorical column: sorted categories}``.
    """

    label: str
    numeric: tuple[str, ...]
    categories: dict

    @property
    def dummies(self) -> list[str]:
        """The one-hot column names, in order."""
        return [f"{c}={v}" for c, values in self.categories.items() for v in values]

    @property
    def features(self) -> list[str]:
        """Every model feature of the encoded table, in order."""
        return [*self.numeric, *self.dummies]

    def apply(self, pdf: pd.DataFrame) -> pd.DataFrame:
        """One-hot encode a pandas frame (or one partition)."""
        out = {c: pdf[c].to_numpy(np.float64, na_value=np.nan) for c in self.numeric}
        for col, values in self.categories.items():
            text = pdf[col].astype(str).to_numpy(dtype=object)
            for v in values:
                out[f"{col}={v}"] = (text == v).astype(np.float64)
        out[self.label] = pdf[self.label]
        if SYNTHETIC in pdf.columns:  # a resampled side's indicator passes through
            out[SYNTHETIC] = pdf[SYNTHETIC]
        return pd.DataFrame(out, index=pdf.index)


def _apply(pdf: pd.DataFrame, encoding: Encoding, threads: int) -> pd.DataFrame:
    return encoding.apply(pdf)


def plan_encoding(engine: Engine, frame: Any, label: str) -> Encoding:
    """Find the numeric and categorical columns, and count each one's categories.

    Raises
    ------
    ValueError
        If the label is missing, or a categorical column has more than
        :data:`MAX_CATEGORIES` categories or missing values.
    """
    columns = engine.columns(frame)
    if label not in columns:
        raise ValueError(f"Label column {label!r} is not in the table; its columns are {list(columns)}.")
    numeric = tuple(c for c, dt in columns.items() if c != label and dt is not None)
    categories = {}
    for col in (c for c, dt in columns.items() if c != label and dt is None):
        stats = engine.label_stats(frame, col, [])  # {category: rows}: one row per category
        if stats.null_labels:
            raise ValueError(f"Categorical column {col!r} has {stats.null_labels} missing values; fill them first.")
        if len(stats.counts) > MAX_CATEGORIES:
            raise ValueError(
                f"Categorical column {col!r} has {len(stats.counts)} categories (more than "
                f"{MAX_CATEGORIES}); drop it or encode it yourself before evaluating."
            )
        categories[col] = sorted(str(v) for v in stats.counts)
    return Encoding(label, numeric, categories)


def encode(engine: Engine, frame: Any, encoding: Encoding) -> Any:
    """The table with its categorical columns one-hot encoded (lazy on Dask and Spark)."""
    columns = engine.columns(frame)
    meta = {c: np.dtype(np.float64) for c in encoding.numeric}
    meta.update({d: np.dtype(np.float64) for d in encoding.dummies})
    meta[encoding.label] = columns[encoding.label] or np.dtype(object)
    if SYNTHETIC in columns:
        meta[SYNTHETIC] = np.dtype(bool)
    empty = pd.DataFrame({c: np.array([], dtype=dt) for c, dt in meta.items()})
    return engine.map_partitions(frame, _apply, engine.broadcast(encoding), empty)
