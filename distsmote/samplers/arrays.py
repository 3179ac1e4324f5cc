"""In-memory ``X, y`` (numpy, lists, pandas) to a frame with a label column, and back.

``fit_resample`` accepts what imbalanced-learn accepts: arrays, lists, DataFrames, a
1-d ``y``, a column vector or a one-vs-all indicator matrix, and returns the same kinds.
Sparse input is refused (distsmote interpolates dense vectors).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: The label column of the frame built from ``X, y``.
LABEL = "__distsmote_label__"


def names_of(X: Any) -> Any:
    """Feature names of ``X`` if it is a DataFrame with string column names."""
    if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
        return list(X.columns)
    return None


def check_target(y: Any) -> tuple[np.ndarray, str]:
    """``y`` as a 1-d array and its form: ``"1d"``, ``"column"`` or ``"ova"``.

    A column vector is flattened; a one-vs-all indicator matrix becomes class indices
    (imbalanced-learn's rule); any other 2-d target is refused with its wording.
    """
    arr = y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr.ravel(), "column"
    if arr.ndim == 2:
        if np.isin(arr, (0, 1)).all() and (arr.sum(axis=1) == 1).all():
            return arr.argmax(axis=1), "ova"
        raise ValueError(
            "Imbalanced-learn currently supports binary, multiclass and binarized encoded "
            "multiclasss targets. Multilabel and multioutput targets are not supported."
        )
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-dimensional. Got shape {arr.shape}.")
    return arr, "1d"


def categorical_columns(categorical_features: Any, columns: list[str]) -> list[str] | None:
    """imbalanced-learn's ``categorical_features`` as column names.

    ``"auto"`` or ``None``: ``None`` (the dtypes decide).  Otherwise a list of column
    positions, of names, or a boolean mask over ``columns``.
    """
    if categorical_features is None or (isinstance(categorical_features, str) and categorical_features == "auto"):
        return None
    values = list(np.asarray(categorical_features).ravel()) if not isinstance(categorical_features, (list, tuple)) else list(categorical_features)
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        if len(values) != len(columns):
            raise ValueError(
                f"When categorical_features is a boolean mask it needs one value per feature: "
                f"got {len(values)} for {len(columns)} features."
            )
        return [c for c, flag in zip(columns, values) if flag]
    out = []
    for v in values:
        if isinstance(v, (int, np.integer)):
            if not -len(columns) <= int(v) < len(columns):
                raise ValueError(
                    f"categorical_features has index {int(v)}, but there are only "
                    f"{len(columns)} features (indices 0 to {len(columns) - 1})."
                )
            out.append(columns[int(v)])
        elif isinstance(v, str):
            out.append(v)
        else:
            raise ValueError(
                "categorical_features must be 'auto', column indices, column names or a "
                f"boolean mask. Got {categorical_features!r}."
            )
    return out


def to_frame(X: Any, y: Any, categorical_features: Any = None) -> tuple[pd.DataFrame, str]:
    """``X, y`` as one frame with the label in :data:`LABEL`, and ``y``'s form.

    With ``categorical_features`` (imbalanced-learn's forms), the other columns of an
    object array (strings mixed with numbers) are converted to numbers.
    """
    from scipy import sparse

    if sparse.issparse(X) or (
        isinstance(X, pd.DataFrame) and any(isinstance(t, pd.SparseDtype) for t in X.dtypes)
    ):
        raise TypeError(
            "distsmote does not accept sparse input: it interpolates dense feature "
            "vectors. Convert it with X.toarray() (or DataFrame.sparse.to_dense())."
        )
    y_arr, form = check_target(y)
    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True).copy()
        frame.columns = [str(c) for c in frame.columns]
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-dimensional. Got shape {arr.shape}.")
        frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
    if len(y_arr) != len(frame):
        raise ValueError(
            f"y must have one label per row of X. Got {len(y_arr)} labels for X with "
            f"{len(frame)} rows."
        )
    cats = categorical_columns(categorical_features, list(frame.columns))
    if cats is not None and not isinstance(X, pd.DataFrame):
        for c in frame.columns:
            if c not in cats and frame[c].dtype == object:
                frame[c] = pd.to_numeric(frame[c])
    frame[LABEL] = y_arr
    return frame, form


def from_frame(out: pd.DataFrame, X: Any, y: Any, form: str) -> tuple[Any, Any]:
    y_res = out.pop(LABEL).to_numpy()
    if isinstance(X, pd.DataFrame):
        out = out.reset_index(drop=True)
        out.columns = X.columns
        X_res = out
    elif isinstance(X, list):
        X_res = out.to_numpy().tolist()
    else:
        X_res = out.to_numpy(dtype=np.asarray(X).dtype)
    if form == "ova":
        n_classes = np.asarray(y).shape[1]
        y_res = np.eye(n_classes, dtype=np.asarray(y).dtype)[y_res]
    elif form == "column":
        y_res = y_res.reshape(-1, 1)
    if isinstance(y, pd.Series):
        y_res = pd.Series(y_res, name=y.name, dtype=y.dtype)
    elif isinstance(y, pd.DataFrame):
        y_res = pd.DataFrame(y_res.reshape(len(y_res), -1), columns=y.columns).astype(y.dtypes.to_dict())
    elif isinstance(y, list):
        y_res = y_res.tolist()
    return X_res, y_res
