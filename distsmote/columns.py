"""Column roles: features (numeric or categorical), the label, and passthrough columns.

Every column of a frame has one role:

* a **numeric feature** (int or float): interpolated by the SMOTE family, used in every
  distance;
* a **categorical feature**: string, pandas ``category``, Arrow ``dictionary`` and
  boolean columns by default, or any column declared ``categorical=[...]``; only SMOTENC
  and SMOTEN accept them;
* the **label**;
* **passthrough**: carried along untouched on original rows, never used in a distance.
  Synthetic rows get nulls there, except the declared **partition columns** (the seed
  row's value, so a partitioned write stays partitioned) and the optional **id column**
  (fresh, unique, deterministic ids).

A column that is neither numeric nor categorical (a timestamp, a list, a struct) must be
declared passthrough; anything else is a one-line error naming the column and the
option that declares it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import hashlib

import numpy as np
import pandas as pd

from distsmote._random import mix64
from distsmote._validation import DistSmoteInputError

#: Logical column kinds reported by :meth:`distsmote.engines.base.Engine.column_kinds`.
NUMERIC, BOOL, STRING, CATEGORY, DATE, TIMESTAMP = "numeric", "bool", "string", "category", "date", "timestamp"
#: Kinds that are categorical features unless declared otherwise.
CATEGORICAL_KINDS = frozenset({BOOL, STRING, CATEGORY})


class ColumnRoleError(DistSmoteInputError):
    """A column's role or type cannot be resampled as given (a one-line message)."""


def pandas_kind(dtype: Any) -> str:
    """The logical kind of a pandas (or Dask) column dtype.

    ``"numeric"``, ``"bool"``, ``"string"``, ``"category"``, ``"date"``,
    ``"timestamp"`` or ``"other: <dtype>"``.  ``object`` columns are taken as strings
    (their values are not inspected).
    """
    if isinstance(dtype, pd.CategoricalDtype):
        return CATEGORY
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        t = dtype.pyarrow_dtype
        if pa.types.is_dictionary(t):
            return CATEGORY
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return STRING
        if pa.types.is_boolean(t):
            return BOOL
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            return NUMERIC
        if pa.types.is_date(t):
            return DATE
        if pa.types.is_timestamp(t):
            return TIMESTAMP
        return f"other: {t}"
    if isinstance(dtype, pd.StringDtype) or dtype == object:
        return STRING
    if pd.api.types.is_bool_dtype(dtype):
        return BOOL
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return TIMESTAMP
    try:
        kind = np.dtype(getattr(dtype, "numpy_dtype", dtype)).kind
    except TypeError:
        return f"other: {dtype}"
    if kind in "iuf":
        return NUMERIC
    return f"other: {dtype}"


@dataclass(frozen=True)
class ColumnRoles:
    """The role of every column of a frame.

    Attributes
    ----------
    numeric : tuple of str
        Numeric features, in frame order.
    categorical : tuple of str
        Categorical features, in frame order.
    passthrough : tuple of str
        Every passthrough column (partition and id columns included), in frame order.
    partition : tuple of str
        Passthrough columns whose seed-row value synthetic rows copy.
    id_column : str or None
        The passthrough column that gets fresh ids on synthetic rows.
    kinds : dict
        The logical kind of every column.
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    passthrough: tuple[str, ...] = ()
    partition: tuple[str, ...] = ()
    id_column: str | None = None
    kinds: Mapping[str, str] | None = None

    @property
    def null_passthrough(self) -> tuple[str, ...]:
        """Passthrough columns that are null on synthetic rows."""
        return tuple(c for c in self.passthrough if c not in self.partition and c != self.id_column)


def _names(value: Any, option: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out = list(value)
    if not all(isinstance(v, str) for v in out):
        raise ColumnRoleError(f"{option} must be a list of column names. Got {value!r}.")
    return out


def resolve_roles(
    kinds: Mapping[str, str],
    label: str,
    *,
    categorical: Sequence[str] | None = None,
    passthrough: Sequence[str] | None = None,
    partition_columns: Sequence[str] | None = None,
    id_column: str | None = None,
    accepts: str = "numeric",
    sampler: str = "this sampler",
) -> ColumnRoles:
    """Give every column of a frame its role, with a one-line error for each bad case.

    Parameters
    ----------
    kinds : dict
        ``{column: kind}`` from :meth:`Engine.column_kinds`, in frame order.
    label : str
        The class column (checked by the caller).
    categorical : list of str, optional
        Declared categorical features.  ``None``: string, category, dictionary and
        boolean columns.
    passthrough, partition_columns : list of str, optional
        Passthrough columns; partition columns are passthrough too.
    id_column : str, optional
        Passthrough column that gets fresh ids on synthetic rows (int64 or string).
    accepts : {"numeric", "mixed", "categorical"}
        What the sampler takes: numeric features only, both (SMOTENC), or categorical
        features only (SMOTEN: every feature is categorical).
    sampler : str
        The sampler's name, for messages.
    """
    declared = {
        "passthrough": _names(passthrough, "passthrough"),
        "partition_columns": _names(partition_columns, "partition_columns"),
        "id_column": _names(id_column, "id_column"),
        "categorical": _names(categorical, "categorical"),
    }
    for option, names in declared.items():
        for name in names:
            if name not in kinds:
                raise ColumnRoleError(
                    f"Column {name!r} given in {option}= is not in the frame. "
                    f"Available columns: {list(kinds)}."
                )
            if name == label:
                raise ColumnRoleError(f"Column {name!r} is the label; it cannot also be in {option}=.")
    carried = set(declared["passthrough"]) | set(declared["partition_columns"]) | set(declared["id_column"])
    both = carried & set(declared["categorical"])
    if both:
        raise ColumnRoleError(
            f"Column {sorted(both)[0]!r} is declared both categorical and passthrough; "
            "a column has one role."
        )
    if id_column is not None and kinds[id_column] not in (NUMERIC, STRING):
        raise ColumnRoleError(
            f"The id column {id_column!r} is {kinds[id_column]}; fresh ids need an int64 "
            "or string column. Pass another column with id_column=..."
        )
    features = [c for c in kinds if c != label and c not in carried]
    if categorical is None:
        cats = [c for c in features if kinds[c] in CATEGORICAL_KINDS]
        if accepts == "categorical":
            cats = list(features)
    else:
        cats = list(declared["categorical"])
        if accepts == "categorical":
            cats = list(features)  # every feature of SMOTEN is categorical
    numeric = [c for c in features if c not in cats]
    for c in numeric:
        if kinds[c] != NUMERIC:
            raise ColumnRoleError(
                f"Feature column(s) [{c!r}] are not numeric: {c!r} ({kinds[c]}) is neither "
                "numeric nor categorical. Declare it "
                f"passthrough=[{c!r}] (CLI: --passthrough {c}) to carry it along unchanged, "
                "or drop it."
            )
    for c in cats:
        if kinds[c].startswith("other") or kinds[c] == TIMESTAMP:
            raise ColumnRoleError(
                f"Column {c!r} ({kinds[c]}) cannot be a categorical feature. Declare it "
                f"passthrough=[{c!r}] (CLI: --passthrough {c}), or drop it."
            )
    if cats and accepts == "numeric":
        c = cats[0]
        raise ColumnRoleError(
            f"Feature column(s) {cats} are not numeric (int or float): {c!r} is a categorical "
            f"{kinds[c]} column, and {sampler} interpolates numeric features only. Use SMOTENC "
            f"(SMOTEN when every feature is categorical), or declare it passthrough=[{c!r}] "
            f"(CLI: --passthrough {c}) to carry it along unchanged."
        )
    if not features:
        raise ColumnRoleError(f"No feature columns: the frame only has the label {label!r} and passthrough columns.")
    order = {c: i for i, c in enumerate(kinds)}
    return ColumnRoles(
        numeric=tuple(numeric),
        categorical=tuple(sorted(cats, key=order.get)),
        passthrough=tuple(c for c in kinds if c in carried),
        partition=tuple(declared["partition_columns"]),
        id_column=id_column,
        kinds=dict(kinds),
    )


# --------------------------------------------------------------- values, codes, keys


def plain_values(series: pd.Series) -> np.ndarray:
    """A column's values as a numpy array of plain values (categories decoded)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return np.asarray(series.astype(object))
    return series.to_numpy()


def sorted_codes(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the values in sorted-value order, and the sorted distinct values.

    The order depends only on the values, never on their representation (a pandas
    category, an Arrow dictionary or plain strings give the same codes), so the codes
    agree on every engine.  Missing values get code ``-1``.
    """
    codes, uniques = pd.factorize(plain_values(series), sort=True, use_na_sentinel=True)
    return codes.astype(np.int32), np.asarray(uniques, dtype=object)


def _scalar_key(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        text = f"b:{bool(value)}"
    elif isinstance(value, (int, float, np.integer, np.floating)):
        text = f"n:{float(value)!r}"
    else:
        text = f"s:{value}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def value_keys(values: Any, salt: int = 0) -> np.ndarray:
    """A 64-bit key per value, equal for equal values on every engine (int64).

    Numbers hash by value (``1`` and ``1.0`` agree), booleans and strings by their
    text; ``salt`` (e.g. the feature's position) separates the columns.
    """
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    ukeys = np.array([_scalar_key(u) for u in uniques], dtype=np.uint64)
    with np.errstate(over="ignore"):
        ukeys = mix64(ukeys ^ np.uint64(salt))
    out = np.where(codes >= 0, ukeys[np.maximum(codes, 0)] if len(ukeys) else 0, np.uint64(0))
    return np.asarray(out, dtype=np.uint64).view(np.int64)


__all__ = [
    "CATEGORICAL_KINDS",
    "ColumnRoleError",
    "ColumnRoles",
    "pandas_kind",
    "plain_values",
    "resolve_roles",
    "sorted_codes",
    "value_keys",
]
