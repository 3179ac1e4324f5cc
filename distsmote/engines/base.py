"""The engine protocol: the few primitives the samplers are written against.

A sampler never imports an engine and an engine knows nothing about SMOTE.  Engines
supply schema inspection, one aggregation pass for class statistics, a filtered collect
of a small subset, broadcast, task-based generation and union.  Every primitive that
returns data to the driver returns something small by construction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: ``fn(task, payload, threads) -> pandas.DataFrame`` run inside a worker task.
TaskFn = Callable[[Any, Any, int], pd.DataFrame]


@dataclass
class LabelStats:
    """What one pass over the data tells the driver.

    Attributes
    ----------
    counts : dict
        ``{class: rows}``.
    nonfinite : dict
        ``{feature: rows with NaN, ±inf or null}``, only columns with at least one.
    null_labels : int
        Rows whose label is missing.
    """

    counts: dict
    nonfinite: dict = field(default_factory=dict)
    null_labels: int = 0


class Engine(ABC):
    """Primitives a sampler may use.  Subclasses wrap one kind of frame."""

    #: Short name used in logs and errors ("local", "dask", "spark").
    name: str = "engine"

    @abstractmethod
    def columns(self, frame: Any) -> dict[str, np.dtype | None]:
        """Column names in order, with the numpy dtype of numeric columns (else ``None``)."""

    @abstractmethod
    def label_stats(self, frame: Any, label: str, features: Sequence[str]) -> LabelStats:
        """Class counts and non-finite feature counts, in one pass over the data."""

    def labels_in_memory(self, frame: Any, label: str) -> Any | None:
        """The label column if it is already in driver memory, else ``None``."""
        return None

    @abstractmethod
    def collect_rows(
        self, frame: Any, label: str, classes: Sequence[Any], columns: Sequence[str]
    ) -> pd.DataFrame:
        """Rows of the given classes only (small by construction), as pandas."""

    @abstractmethod
    def broadcast(self, value: Any) -> Any:
        """Ship ``value`` once to every worker; return a handle tasks can resolve."""

    @abstractmethod
    def generate(self, fn: TaskFn, tasks: Sequence[Any], handle: Any, like: Any) -> Any:
        """A frame with ``like``'s schema made of ``fn(task, payload, threads)`` per task.

        Each task is independent and pure, so a retried or recomputed task yields
        identical rows.
        """

    @abstractmethod
    def union(self, frames: Sequence[Any]) -> Any:
        """Concatenate frames of the same schema, keeping their partitions."""

    @abstractmethod
    def with_constant(self, frame: Any, name: str, value: bool) -> Any:
        """Add a constant boolean column."""


def numeric_dtype(dtype: Any) -> np.dtype | None:
    """The numpy dtype of an int/float column, ``None`` for anything else (bool included)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return None
    if dt.kind in "iuf":
        return dt
    return None


def conform_pandas(pdf: pd.DataFrame, dtypes: pd.Series) -> pd.DataFrame:
    """Cast a generated frame to the column order and dtypes of the input.

    Float → int casts truncate, as imbalanced-learn's ``astype(X.dtype)`` does.
    """
    pdf = pdf[list(dtypes.index)]
    return pdf.astype(dtypes.to_dict())
