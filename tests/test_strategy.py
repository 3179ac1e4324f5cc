"""sampling_strategy resolution against imbalanced-learn's check_sampling_strategy."""

from collections import Counter

import numpy as np
import pytest
from imblearn.utils import check_sampling_strategy

from distsmote._strategy import resolve_sampling_strategy

MIXES = [
    {0: 900, 1: 100},
    {0: 50, 1: 500, 2: 120},
    {"a": 30, "b": 31, "c": 300, "d": 7},
    {True: 40, False: 60},
]


def _y(counts):
    return np.concatenate([np.full(n, c) for c, n in counts.items()])


@pytest.mark.parametrize("counts", MIXES)
@pytest.mark.parametrize("strategy", ["auto", "minority", "not minority", "not majority", "all"])
def test_string_strategies_match_imblearn(counts, strategy):
    y = _y(counts)
    expected = dict(check_sampling_strategy(strategy, y, "over-sampling"))
    assert resolve_sampling_strategy(strategy, counts, "over-sampling") == expected


@pytest.mark.parametrize("counts", MIXES)
@pytest.mark.parametrize("strategy", ["auto", "majority", "not minority", "not majority", "all"])
def test_cleaning_strategies_match_imblearn(counts, strategy):
    y = _y(counts)
    expected = dict(check_sampling_strategy(strategy, y, "clean-sampling"))
    assert resolve_sampling_strategy(strategy, counts, "clean-sampling") == expected


@pytest.mark.parametrize("ratio", [0.2, 0.5, 1.0])
def test_float_matches_imblearn(ratio):
    counts = {0: 900, 1: 100}
    expected = dict(check_sampling_strategy(ratio, _y(counts), "over-sampling"))
    assert resolve_sampling_strategy(ratio, counts, "over-sampling") == expected


def test_dict_and_callable_match_imblearn():
    counts = {0: 50, 1: 500, 2: 120}
    y = _y(counts)
    target = {0: 400, 2: 130}
    assert resolve_sampling_strategy(target, counts, "over-sampling") == dict(
        check_sampling_strategy(target, y, "over-sampling")
    )

    def half_of_max(labels):
        c = Counter(labels)
        return {k: max(c.values()) // 2 for k, v in c.items() if v < max(c.values()) // 2}

    assert resolve_sampling_strategy(half_of_max, counts, "over-sampling") == dict(
        check_sampling_strategy(half_of_max, y, "over-sampling")
    )


def test_list_for_cleaning():
    counts = {0: 50, 1: 500, 2: 120}
    assert resolve_sampling_strategy([1, 2], counts, "clean-sampling") == {1: 50, 2: 50}


@pytest.mark.parametrize(
    "strategy, counts, sampling_type, message",
    [
        ("bogus", {0: 10, 1: 5}, "over-sampling", "When 'sampling_strategy' is a string, it needs to be one of"),
        ("majority", {0: 10, 1: 5}, "over-sampling", "'sampling_strategy'='majority' cannot be used with over-sampler"),
        ("minority", {0: 10, 1: 5}, "clean-sampling", "cannot be used with under-sampler and clean-sampler"),
        (0.0, {0: 10, 1: 5}, "over-sampling", "it should be in the range (0, 1]"),
        (1.5, {0: 10, 1: 5}, "over-sampling", "it should be in the range (0, 1]"),
        (0.3, {0: 10, 1: 5}, "over-sampling", "Please increase the ratio"),
        (0.5, {0: 10, 1: 5, 2: 3}, "over-sampling", "can be a float only when the type of target is binary"),
        ({7: 100}, {0: 10, 1: 5}, "over-sampling", "The {7} target class is/are not present in the data"),
        ({1: 2}, {0: 10, 1: 5}, "over-sampling", "should be greater or equal to the original number of samples"),
        ({1: -2}, {0: 10, 1: 5}, "over-sampling", "cannot be negative"),
        ({1: 2}, {0: 10, 1: 5}, "clean-sampling", "as a dict for cleaning methods is not supported"),
        ([1], {0: 10, 1: 5}, "over-sampling", "cannot be a list for samplers which are not cleaning"),
        ("auto", {0: 10}, "over-sampling", "needs to have more than 1 class. Got 1 class instead"),
    ],
)
def test_errors_use_imblearn_wording(strategy, counts, sampling_type, message):
    with pytest.raises(ValueError) as err:
        resolve_sampling_strategy(strategy, counts, sampling_type)
    assert message in str(err.value)


def test_string_error_is_exactly_imblearns():
    y = _y({0: 10, 1: 5})
    with pytest.raises(ValueError) as ours:
        resolve_sampling_strategy("bogus", {0: 10, 1: 5}, "over-sampling")
    with pytest.raises(ValueError) as theirs:
        check_sampling_strategy("bogus", y, "over-sampling")
    # Same sentence; we print the choices as a set of names instead of a dict of functions.
    assert str(ours.value).startswith("When 'sampling_strategy' is a string, it needs to be one of {")
    assert str(ours.value).endswith("Got 'bogus' instead.")
    assert str(theirs.value).endswith("Got 'bogus' instead.")
