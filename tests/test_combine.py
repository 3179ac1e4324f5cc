"""SMOTETomek and SMOTEENN: imbalanced-learn's cleaner applied to distsmote's SMOTE output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from imblearn.under_sampling import EditedNearestNeighbours as ImbENN
from imblearn.under_sampling import TomekLinks as ImbTomek
from sklearn.base import clone
from sklearn.datasets import make_classification

from distsmote import SMOTE, SMOTEENN, EditedNearestNeighbours, SMOTETomek, TomekLinks
from distsmote._validation import DistSmoteInputError

from _data import make_frame


def _rows(X, y) -> list[tuple]:
    return sorted(map(tuple, np.column_stack([X, np.asarray(y)]).tolist()))


MIXES = [[0.9], [0.7, 0.2]]


def _xy(weights, seed):
    return make_classification(
        n_samples=600, n_features=4, n_informative=3, n_redundant=0, n_classes=len(weights) + 1,
        weights=weights, class_sep=0.7, random_state=seed,
    )


@pytest.mark.parametrize("weights", MIXES)
def test_smote_tomek_is_imblearn_tomek_on_our_smote(weights):
    X, y = _xy(weights, 3)
    Xs, ys = SMOTE(random_state=7).fit_resample(X, y)
    ref = ImbTomek(sampling_strategy="all").fit_resample(Xs, ys)
    sampler = SMOTETomek(random_state=7)
    ours = sampler.fit_resample(X, y)
    assert len(ref[1]) < len(ys)
    assert _rows(*ours) == _rows(*ref)
    assert sampler.tomek_.sampling_strategy == "all"
    assert sampler.smote_.class_counts_ == dict(pd.Series(y).value_counts())


@pytest.mark.parametrize("weights", MIXES)
def test_smote_enn_is_imblearn_enn_on_our_smote(weights):
    X, y = _xy(weights, 4)
    Xs, ys = SMOTE(random_state=3).fit_resample(X, y)
    ref = ImbENN(sampling_strategy="all").fit_resample(Xs, ys)
    ours = SMOTEENN(random_state=3).fit_resample(X, y)
    assert len(ref[1]) < len(ys)
    assert _rows(*ours) == _rows(*ref)


def test_given_samplers_are_used_and_not_modified():
    X, y = _xy([0.7, 0.2], 5)
    smote = SMOTE(sampling_strategy="minority", k_neighbors=3, random_state=1)
    enn = EditedNearestNeighbours(sampling_strategy=[0], n_neighbors=5, kind_sel="mode")
    sampler = SMOTEENN(smote=smote, enn=enn)
    ours = sampler.fit_resample(X, y)
    Xs, ys = clone(smote).fit_resample(X, y)
    imb_enn = ImbENN(sampling_strategy=[0], n_neighbors=5, kind_sel="mode")
    ref = imb_enn.fit_resample(Xs, ys)
    assert _rows(*ours) == _rows(*ref)
    assert not hasattr(enn, "sampling_strategy_")  # the given instance was cloned
    assert sampler.enn_.sampling_strategy_ == dict(imb_enn.sampling_strategy_)
    tomek = SMOTETomek(smote=smote, tomek=TomekLinks(sampling_strategy="majority"))
    Xt, yt = tomek.fit_resample(X, y)
    ref = ImbTomek(sampling_strategy="majority").fit_resample(Xs, ys)
    assert _rows(Xt, yt) == _rows(*ref)


def test_indicator_survives_cleaning():
    frame = make_frame({0: 300, 1: 50}, n_features=3, seed=6, dtype=np.float32)
    out = SMOTEENN(random_state=2).resample(frame, label="y", indicator="synthetic")
    plain = SMOTE(random_state=2).resample(frame, label="y", indicator="synthetic")
    assert list(out.columns) == [*frame.columns, "synthetic"]
    assert out["synthetic"].any() and not out["synthetic"].all()
    # Every kept row is a row of the SMOTE output, with its indicator.
    assert len(out.merge(plain, how="left", indicator=True).query("_merge != 'both'")) == 0


def test_wrong_component_types_are_named():
    frame = make_frame({0: 100, 1: 20}, seed=1)
    with pytest.raises(DistSmoteInputError, match="tomek must be a distsmote TomekLinks"):
        SMOTETomek(tomek=EditedNearestNeighbours()).resample(frame, label="y")
    with pytest.raises(DistSmoteInputError, match="smote must be a distsmote SMOTE"):
        SMOTEENN(smote=TomekLinks()).resample(frame, label="y")
    with pytest.raises(ValueError, match="kind_sel"):
        SMOTEENN(enn=EditedNearestNeighbours(kind_sel="x")).resample(frame, label="y")


# -- other engines --------------------------------------------------------------------------
