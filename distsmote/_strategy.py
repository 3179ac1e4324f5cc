"""Turn ``sampling_strategy`` into a per-class target, with imbalanced-learn's semantics.

Everything here works on *class counts* (a mapping ``class -> n_rows``), never on the
label column itself, so a distributed frame only has to ship its counts to the driver.
Error messages follow imbalanced-learn's wording so users recognise them.

Ties (two classes with the same count) are broken by the sorted class order; imbalanced-learn
breaks them by order of first appearance in ``y``, which a partitioned frame does not have.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from numbers import Real
from typing import Any, Literal

import numpy as np

SamplingType = Literal["over-sampling", "clean-sampling"]

SAMPLING_TARGET_KIND = ("minority", "majority", "not minority", "not majority", "all", "auto")


def sorted_classes(classes: Any) -> list:
    """Return classes in a deterministic order (sorted, falling back to ``repr``)."""
    classes = list(classes)
    try:
        return sorted(classes)
    except TypeError:
        return sorted(classes, key=repr)


def _majority(counts: Mapping) -> Any:
    order = sorted_classes(counts)
    return max(order, key=lambda c: counts[c])


def _minority(counts: Mapping) -> Any:
    order = sorted_classes(counts)
    return min(order, key=lambda c: counts[c])


def _from_string(kind: str, counts: Mapping, sampling_type: SamplingType) -> dict:
    if kind == "auto":
        kind = "not majority" if sampling_type == "over-sampling" else "not minority"
    if sampling_type == "over-sampling" and kind == "majority":
        raise ValueError("'sampling_strategy'='majority' cannot be used with over-sampler.")
    if sampling_type == "clean-sampling" and kind == "minority":
        raise ValueError(
            "'sampling_strategy'='minority' cannot be used with under-sampler and clean-sampler."
        )
    majority, minority = _majority(counts), _minority(counts)
    keep = {
        "all": lambda c: True,
        "majority": lambda c: c == majority,
        "minority": lambda c: c == minority,
        "not majority": lambda c: c != majority,
        "not minority": lambda c: c != minority,
    }[kind]
    if sampling_type == "over-sampling":
        n_max = max(counts.values())
        return {c: n_max - n for c, n in counts.items() if keep(c)}
    n_min = min(counts.values())
    return {c: n_min for c in counts if keep(c)}


def _missing_classes(requested: Any, counts: Mapping) -> None:
    missing = set(requested) - set(counts)
    if missing:
        raise ValueError(
            f"The {missing} target class is/are not present in the data. "
            f"Classes present: {sorted_classes(counts)}."
        )


def _from_dict(strategy: Mapping, counts: Mapping, sampling_type: SamplingType) -> dict:
    if sampling_type == "clean-sampling":
        raise ValueError(
            "'sampling_strategy' as a dict for cleaning methods is not supported. "
            "Please give a list of the classes to be targeted by the sampling."
        )
    _missing_classes(strategy.keys(), counts)
    if any(n < 0 for n in strategy.values()):
        raise ValueError(
            "The number of samples in a class cannot be negative."
            f"'sampling_strategy' contains some negative value: {dict(strategy)}"
        )
    out = {}
    for cls, n in strategy.items():
        if n < counts[cls]:
            raise ValueError(
                "With over-sampling methods, the number of samples in a class should be "
                f"greater or equal to the original number of samples. Originally, there is "
                f"{counts[cls]} samples and {n} samples are asked (class {cls!r})."
            )
        out[cls] = int(n) - counts[cls]
    return out


def _from_list(strategy: list, counts: Mapping, sampling_type: SamplingType) -> dict:
    if sampling_type != "clean-sampling":
        raise ValueError(
            "'sampling_strategy' cannot be a list for samplers which are not cleaning methods."
        )
    _missing_classes(strategy, counts)
    n_min = min(counts.values())
    return {c: n_min for c in strategy}


def _from_float(ratio: float, counts: Mapping, sampling_type: SamplingType) -> dict:
    if len(counts) != 2:  # imbalanced-learn checks this first
        raise ValueError(
            '"sampling_strategy" can be a float only when the type of target is binary. '
            "For multi-class, use a dict."
        )
    if sampling_type == "clean-sampling":
        raise ValueError("'clean-sampling' methods do let the user specify the sampling ratio.")
    n_max = max(counts.values())
    majority = _majority(counts)
    out = {c: int(n_max * ratio - n) for c, n in counts.items() if c != majority}
    if any(n <= 0 for n in out.values()):
        raise ValueError(
            "The specified ratio required to remove samples from the minority class while "
            "trying to generate new samples. Please increase the ratio."
        )
    return out


def resolve_sampling_strategy(
    sampling_strategy: Any,
    counts: Mapping,
    sampling_type: SamplingType,
    y: Any = None,
) -> dict:
    """Resolve ``sampling_strategy`` against class counts.

    Parameters
    ----------
    sampling_strategy : float, str, dict, list or callable
        As in imbalanced-learn. A callable receives ``y`` when it is available in memory,
        and otherwise a :class:`collections.Counter` of the class counts (so the usual
        ``Counter(y)`` idiom inside the callable keeps working).
    counts : mapping
        ``{class: number of rows}`` of the input.
    sampling_type : {"over-sampling", "clean-sampling"}
        The sampler family.
    y : array-like, optional
        The in-memory target, passed to a callable strategy when available.

    Returns
    -------
    dict
        For over-sampling, ``{class: number of rows to generate}``; for cleaning,
        ``{class: n_min}`` for each targeted class. Keys are in sorted class order.
    """
    counts = {k: int(v) for k, v in counts.items()}
    if len(counts) <= 1:
        raise ValueError(
            f"The target 'y' needs to have more than 1 class. Got {len(counts)} class instead"
        )
    if isinstance(sampling_strategy, str):
        if sampling_strategy not in SAMPLING_TARGET_KIND:
            kinds = "{" + ", ".join(repr(k) for k in SAMPLING_TARGET_KIND) + "}"
            raise ValueError(
                f"When 'sampling_strategy' is a string, it needs to be one of {kinds}. "
                f"Got '{sampling_strategy}' instead."
            )
        out = _from_string(sampling_strategy, counts, sampling_type)
    elif isinstance(sampling_strategy, Mapping):
        out = _from_dict(sampling_strategy, counts, sampling_type)
    elif isinstance(sampling_strategy, (list, tuple)):
        out = _from_list(list(sampling_strategy), counts, sampling_type)
    elif isinstance(sampling_strategy, Real) and not isinstance(sampling_strategy, bool):
        if sampling_strategy <= 0 or sampling_strategy > 1:
            raise ValueError(
                "When 'sampling_strategy' is a float, it should be in the range (0, 1]. "
                f"Got {sampling_strategy} instead."
            )
        out = _from_float(float(sampling_strategy), counts, sampling_type)
    elif callable(sampling_strategy):
        target = sampling_strategy(y if y is not None else Counter(counts))
        if not isinstance(target, Mapping):
            raise ValueError(
                "A callable 'sampling_strategy' must return a dict {class: n_samples}. "
                f"Got {type(target).__name__} instead."
            )
        out = _from_dict(target, counts, sampling_type)
    else:
        raise ValueError(
            "'sampling_strategy' must be a float, a str, a dict, a list or a callable. "
            f"Got {type(sampling_strategy).__name__} instead."
        )
    return {c: out[c] for c in sorted_classes(out)}


def normalise_label(value: Any) -> Any:
    """Turn numpy scalars into plain Python values so class keys compare and print cleanly."""
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["resolve_sampling_strategy", "sorted_classes", "normalise_label"]
