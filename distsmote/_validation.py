"""Input checks that run before anything is computed or written.

Every error names the culprit (column, class, key) and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from distsmote.engines.base import LabelStats


class DistSmoteInputError(ValueError):
    """The input frame or parameters cannot be resampled as given."""


def check_columns(
    columns: Mapping[str, np.dtype | None], label: str, reserved: Sequence[str] = ()
) -> list[str]:
    """Return the feature columns (all but the label), checking they are numeric.

    Raises
    ------
    DistSmoteInputError
        If ``label`` is missing, a reserved name is already taken, there is no feature,
        or a feature column is not int/float.
    """
    if label not in columns:
        raise DistSmoteInputError(
            f"Label column {label!r} not found. Available columns: {list(columns)}. "
            "Pass the name of the class column with label=..."
        )
    for name in reserved:
        if name in columns:
            raise DistSmoteInputError(
                f"Column {name!r} already exists, so it cannot be used as the synthetic-row "
                "indicator. Choose another name with indicator=..."
            )
    features = [c for c in columns if c != label]
    if not features:
        raise DistSmoteInputError(
            f"No feature columns: the frame only has the label column {label!r}."
        )
    bad = [c for c in features if columns[c] is None]
    if bad:
        raise DistSmoteInputError(
            f"Feature column(s) {bad} are not numeric (int or float). SMOTE interpolates "
            "between rows, so every column except the label must be numeric. Encode or "
            "drop these columns first (categorical-feature support, SMOTENC, comes later)."
        )
    return features


def check_label_stats(stats: LabelStats, label: str) -> None:
    """Refuse missing labels and non-finite feature values, naming the columns."""
    if stats.null_labels:
        raise DistSmoteInputError(
            f"Label column {label!r} has {stats.null_labels} missing value(s). "
            "Drop or fill those rows before resampling."
        )
    if stats.nonfinite:
        detail = ", ".join(f"{c!r} ({n} rows)" for c, n in stats.nonfinite.items())
        raise DistSmoteInputError(
            f"Feature column(s) contain NaN, null or ±inf values: {detail}. "
            "Impute or drop those rows before resampling."
        )


def check_label_type(counts: Mapping[Any, int], label: str) -> None:
    """Refuse a continuous label, with scikit-learn's wording.

    A float label with any non-integral value is a regression target (scikit-learn's
    ``type_of_target`` calls it ``'continuous'``): resampling it would treat every
    value as its own class.
    """
    for value in counts:
        if isinstance(value, (float, np.floating)) and not float(value).is_integer():
            raise DistSmoteInputError(
                f"Unknown label type: continuous. Label column {label!r} holds "
                f"non-integral floats such as {value!r}, and a sampler expects discrete "
                "classes. Maybe you are trying to fit a classifier, which expects discrete "
                "classes on a regression target with continuous values; bin or encode it "
                "first."
            )


def check_class_sizes(counts: Mapping[Any, int], targets: Mapping[Any, int], k: int) -> None:
    """Each class to oversample needs more than ``k`` rows (imbalanced-learn's rule)."""
    for cls, n_new in targets.items():
        if n_new > 0 and counts[cls] <= k:
            raise DistSmoteInputError(
                f"Class {cls!r} has {counts[cls]} row(s), but k_neighbors={k} needs at least "
                f"{k + 1} rows per class to oversample (Expected n_neighbors <= "
                f"n_samples_fit, but n_neighbors = {k + 1}, n_samples_fit = {counts[cls]}). "
                "Lower k_neighbors or leave this class out of sampling_strategy."
            )
