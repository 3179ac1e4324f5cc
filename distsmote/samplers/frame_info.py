"""One description of a sampler's input frame, made once per call (:func:`describe`).

Features, label, column roles, dtypes, class counts and ``y`` when it is in memory, with
every input check: the first step of the sampler template (:mod:`distsmote.samplers.base`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from distsmote._strategy import sorted_classes
from distsmote._validation import DistSmoteInputError, check_label_stats, check_label_type
from distsmote.columns import ColumnRoles, resolve_roles
from distsmote.engines.base import Engine, Prefetch


@dataclass(frozen=True)
class FrameInfo:
    """What one description of a frame tells a sampler.

    Attributes
    ----------
    label : str
        The class column.
    features : tuple of str
        The numeric feature columns, in frame order (what distances and interpolation
        use; categorical features are in ``roles``).
    columns : dict
        Every column with the numpy dtype of numeric columns (``None`` otherwise).
    counts : dict
        ``{class: rows}``.
    y : array or None
        The label column when it is already in driver memory (pandas input).
    indicator : str or None
        The synthetic-row indicator column requested by the caller.
    indicator_present : bool
        Whether the frame already carries the indicator column (inside a combined
        sampler, after over-sampling).
    roles : ColumnRoles
        Every column's role: categorical features, passthrough, partition and id columns.
    """

    label: str
    features: tuple[str, ...]
    columns: Mapping[str, np.dtype | None]
    counts: dict
    y: Any = field(default=None, compare=False)
    indicator: str | None = None
    indicator_present: bool = False
    roles: ColumnRoles | None = None

    @property
    def categorical(self) -> tuple[str, ...]:
        """The categorical feature columns."""
        return self.roles.categorical if self.roles else ()

    @property
    def all_features(self) -> tuple[str, ...]:
        """Numeric and categorical features, in frame order."""
        chosen = set(self.features) | set(self.categorical)
        return tuple(c for c in self.columns if c in chosen)

    @property
    def classes(self) -> list:
        """Classes in sorted order (the order of class codes)."""
        return sorted_classes(self.counts)

    @property
    def n_rows(self) -> int:
        """Rows of the frame."""
        return int(sum(self.counts.values()))

    @property
    def point_dtype(self) -> type:
        """float32 when every feature is float32, else float64."""
        f32 = np.dtype(np.float32)
        return np.float32 if all(self.columns[f] == f32 for f in self.features) else np.float64

    def oversampled(self, engine: Engine, frame: Any, n_new: Mapping[Any, int]) -> "FrameInfo":
        """The description of ``frame`` after ``n_new`` rows were added per class."""
        counts = {c: n + int(n_new.get(c, 0)) for c, n in self.counts.items()}
        return replace(
            self,
            counts=counts,
            y=engine.labels_in_memory(frame, self.label),
            indicator_present=self.indicator is not None,
        )


def describe(
    engine: Engine,
    frame: Any,
    label: str,
    indicator: str | None = None,
    *,
    roles: dict | None = None,
    accepts: str = "numeric",
    sampler: str = "this sampler",
    prefetch_budget: int | None = None,
) -> FrameInfo:
    """Describe ``frame`` once, with every input check (one pass over the data).

    ``roles`` holds the declared ``categorical``, ``passthrough``, ``partition_columns``
    and ``id_column``; ``accepts`` says which features the sampler takes (see
    :func:`distsmote.columns.resolve_roles`).  ``prefetch_budget`` (bytes): the same
    pass also brings back, within this budget, the rows an oversampler collects next
    (:class:`~distsmote.engines.base.Prefetch`).

    Raises
    ------
    DistSmoteInputError
        On a missing label, a column with no valid role, missing labels, missing or
        non-finite features or a continuous label, naming the column.
    """
    columns = engine.columns(frame)
    if label not in columns:
        raise DistSmoteInputError(
            f"Label column {label!r} not found. Available columns: {list(columns)}. "
            "Pass the name of the class column with label=..."
        )
    if indicator and indicator in columns:
        raise DistSmoteInputError(
            f"Column {indicator!r} already exists, so it cannot be used as the synthetic-row "
            "indicator. Choose another name with indicator=..."
        )
    kinds = engine.column_kinds(frame)
    role = resolve_roles(kinds, label, accepts=accepts, sampler=sampler, **(roles or {}))
    if role.id_column is not None and kinds[role.id_column] != "string" and columns[role.id_column] != np.int64:
        raise DistSmoteInputError(
            f"The id column {role.id_column!r} is {columns[role.id_column]}; fresh ids are 63-bit "
            "integers, so it must be int64 (or string). Cast it, or pass another id_column=..."
        )
    features = [*role.numeric, *role.categorical]
    prefetch = None
    if prefetch_budget is not None:
        wanted = dict.fromkeys([*role.numeric, *role.categorical, *role.partition, label])
        prefetch = Prefetch(tuple(wanted), prefetch_budget)
    stats = engine.label_stats(frame, label, features, prefetch)
    check_label_stats(stats, label)
    check_label_type(stats.counts, label)
    return FrameInfo(
        label=label,
        features=role.numeric,
        columns=columns,
        counts=dict(stats.counts),
        y=engine.labels_in_memory(frame, label),
        indicator=indicator,
        roles=role,
    )
