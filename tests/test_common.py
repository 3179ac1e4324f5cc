"""One conformance suite for every sampler.

* imbalanced-learn's own sampler checks (``parametrize_with_checks``), dense input;
* every sampler × every engine (pandas; Dask on the real test cluster with 1 and 4
  partitions; Spark on the real standalone cluster) × several strategies, multi-class:
  exact counts, the same output multiset on every engine, columns and dtypes kept, the
  indicator column, lazy results, bad parameters refused before anything runs, clone;
* every ``sampling_strategy`` form imbalanced-learn accepts works, and every form it
  refuses is refused with its wording;
* column roles on a lake-like table (strings, category, bool, nullable ints, timestamps,
  dates): SMOTE, ADASYN, Borderline-SMOTE-2, Tomek, ENN, SMOTEENN, SMOTENC and SMOTEN with
  passthrough, partition and id columns, on pandas, Dask (1 and 3 partitions) and Spark:
  the same rows (fresh ids included) and every column's type kept on each engine.
"""

from __future__ import annotations

import re

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from imblearn.utils.estimator_checks import parametrize_with_checks
from sklearn.base import clone

import distsmote
from distsmote import (
    ADASYN,
    SMOTE,
    SMOTEN,
    SMOTENC,
    SMOTEENN,
    BorderlineSMOTE,
    EditedNearestNeighbours,
    SMOTETomek,
    TomekLinks,
)

from _data import assert_same_rows, make_frame

#: Approximate search forced on small data, so determinism is checked for it too.
IVF = {"method": "ivf", "exact_max_rows": 0, "nlist": 6, "nprobe": 2, "join_nprobe": 2}


SAMPLERS = {
    "smote": lambda knn, s: SMOTE(sampling_strategy=s, random_state=3, knn=knn),
    "adasyn": lambda knn, s: ADASYN(sampling_strategy=s, random_state=3, knn=knn),
    "borderline-1": lambda knn, s: BorderlineSMOTE(sampling_strategy=s, random_state=3, knn=knn),
    "borderline-2": lambda knn, s: BorderlineSMOTE(
        sampling_strategy=s, kind="borderline-2", random_state=3, knn=knn
    ),
    "tomek": lambda knn, s: TomekLinks(sampling_strategy=s, knn=knn),
    "enn": lambda knn, s: EditedNearestNeighbours(sampling_strategy=s, kind_sel="mode", knn=knn),
    "smote-tomek": lambda knn, s: SMOTETomek(
        smote=SMOTE(sampling_strategy=s, random_state=3, knn=knn), tomek=TomekLinks(knn=knn)
    ),
    "smote-enn": lambda knn, s: SMOTEENN(
        smote=SMOTE(sampling_strategy=s, random_state=3, knn=knn),
        enn=EditedNearestNeighbours(sampling_strategy="all", knn=knn),
    ),
}
CLEANERS = {"tomek", "enn"}
#: Two (strategy, knn) cases per sampler: exact search and approximate search.
CASES = {
    "over": [("auto", "exact"), ({2: 700}, IVF)],
    "clean": [("auto", "exact"), ([1, 2], IVF)],
}


def _cases():
    for name in SAMPLERS:
        for strategy, knn in (CASES["clean" if name in CLEANERS else "over"]):
            yield pytest.param(name, strategy, knn, id=f"{name}-{'exact' if knn == 'exact' else 'ivf'}")


# -------------------------------------------------------- imbalanced-learn's checks


def _expected_failures(estimator) -> dict:
    return {
        "check_samplers_pandas_sparse": (
            "sparse input is refused by design: distsmote interpolates dense feature vectors"
        ),
    }


ALL = [
    SMOTE(random_state=0),
    ADASYN(random_state=0),
    BorderlineSMOTE(random_state=0),
    BorderlineSMOTE(kind="borderline-2", random_state=0),
    TomekLinks(),
    EditedNearestNeighbours(),
    SMOTETomek(random_state=0),
    SMOTEENN(random_state=0),
    SMOTENC(categorical_features=[0], random_state=0),
    SMOTEN(random_state=0),
]


@parametrize_with_checks(ALL, expected_failed_checks=_expected_failures)
def test_imblearn_sampler_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("sampler", ALL, ids=lambda s: repr(s))
def test_imblearn_fit_resample_contract(sampler):
    # imbalanced-learn's check_samplers_fit_resample asserts only for its own base
    # classes; the same assertions for ours.
    from imblearn.utils.estimator_checks import sample_dataset_generator

    X, y = sample_dataset_generator()
    before = Counter(y)
    _, y_res = clone(sampler).fit_resample(X, y)
    after = Counter(y_res)
    if isinstance(sampler, (TomekLinks, EditedNearestNeighbours)):
        minority = min(before, key=before.get)
        assert all(after[c] < before[c] for c in before if c != minority)
        assert after[minority] == before[minority]
    elif not isinstance(sampler, (SMOTETomek, SMOTEENN, BorderlineSMOTE)):
        assert all(n == max(before.values()) for n in after.values())


def test_sparse_input_is_refused_with_a_hint():
    from scipy import sparse

    X, y = make_frame({0: 50, 1: 20}).drop(columns="y").to_numpy(), np.r_[[0] * 50, [1] * 20]
    with pytest.raises(TypeError, match=r"sparse input.*toarray\(\)"):
        SMOTE().fit_resample(sparse.csr_matrix(X), y)


# ------------------------------------------------------ sampler × engine × strategy


@pytest.fixture(scope="module")
def frame():
    f = make_frame({0: 300, 1: 700, 2: 120}, n_features=4, seed=12, dtype=np.float32)
    f = pd.concat([f, f.iloc[:15]], ignore_index=True)  # duplicated rows
    f["count"] = (np.arange(len(f)) % 13).astype(np.int64)
    return f


@pytest.fixture(scope="module")
def reference(frame):
    out = {}
    for name in SAMPLERS:
        for strategy, knn in CASES["clean" if name in CLEANERS else "over"]:
            sampler = SAMPLERS[name](knn, strategy)
            result = sampler.resample(frame, label="y", indicator="synthetic")
            out[name, repr(strategy)] = (result, sampler)
    return out


def _check_counts(name, frame, result, sampler):
    before = frame["y"].value_counts().to_dict()
    after = result["y"].value_counts().to_dict()
    n_synthetic = result["synthetic"].value_counts().to_dict().get(True, 0)
    if name in CLEANERS:
        targeted = set(sampler.sampling_strategy_)
        assert all(after[c] <= before[c] for c in before)
        assert all(after[c] == before[c] for c in before if c not in targeted)
        assert n_synthetic == 0
    elif name.startswith("smote-"):
        assert n_synthetic <= sum(sampler.sampling_strategy_.values())
    elif name.startswith("borderline"):
        # Exactly the target for every class with a row in danger.
        expected = sum(n for c, n in sampler.sampling_strategy_.items() if sampler.danger_counts_[c])
        assert n_synthetic == expected
    else:
        assert after == {c: before[c] + sampler.sampling_strategy_.get(c, 0) for c in before}
        assert n_synthetic == sum(sampler.sampling_strategy_.values())


@pytest.mark.parametrize("name, strategy, knn", list(_cases()))
def test_pandas_counts_schema_and_clone(frame, reference, name, strategy, knn):
    result, sampler = reference[name, repr(strategy)]
    _check_counts(name, frame, result, sampler)
    assert list(result.columns) == [*frame.columns, "synthetic"]
    assert result.dtypes.drop("synthetic").to_dict() == frame.dtypes.to_dict()
    assert result["synthetic"].dtype == bool
    originals = result.loc[~result["synthetic"]].drop(columns="synthetic")
    if name not in CLEANERS and not name.startswith("smote-"):
        assert_same_rows(originals, frame)  # every input row kept, bit for bit
    again = clone(sampler).resample(frame, label="y", indicator="synthetic")
    assert_same_rows(again, result)  # clone round-trips, and the seed fixes the output
    assert repr(clone(sampler).get_params()) == repr(sampler.get_params())


@pytest.mark.parametrize("name, strategy, knn", list(_cases()))
def test_dask_same_output(dask_client, frame, reference, name, strategy, knn):
    import dask.dataframe as dd

    expected, _ = reference[name, repr(strategy)]
    for partitions in (1, 4):
        ddf = dd.from_pandas(frame.sample(frac=1.0, random_state=partitions), npartitions=partitions)
        out = SAMPLERS[name](knn, strategy).resample(ddf, label="y", indicator="synthetic")
        assert isinstance(out, dd.DataFrame)  # lazy
        result = out.compute()
        assert result.dtypes.to_dict() == expected.dtypes.to_dict()
        assert_same_rows(result, expected)


@pytest.mark.parametrize("name, strategy, knn", list(_cases()))
def test_spark_same_output(spark, frame, reference, name, strategy, knn):
    from pyspark.sql import DataFrame

    expected, _ = reference[name, repr(strategy)]
    sdf = spark.createDataFrame(frame.sample(frac=1.0, random_state=7)).repartition(3)
    out = SAMPLERS[name](knn, strategy).resample(sdf, label="y", indicator="synthetic")
    assert isinstance(out, DataFrame)  # lazy
    types = {f.name: f.dataType.simpleString() for f in out.schema.fields}
    assert types == {**{f"f{i}": "float" for i in range(4)}, "y": "bigint", "count": "bigint", "synthetic": "boolean"}
    assert_same_rows(out.toPandas(), expected)


def _poisoned_dask_frame(frame):
    """A Dask frame whose data cannot be computed: any pass over it fails loudly."""
    import dask
    import dask.dataframe as dd

    def boom():
        raise AssertionError("the data was read, but bad parameters must fail first")

    return dd.from_delayed([dask.delayed(boom)()], meta=frame.iloc[:0], verify_meta=False)


BAD_PARAMS = {
    "smote": {"k_neighbors": 0},
    "adasyn": {"knn": "hnsw"},
    "borderline-1": {"kind": "borderline-3"},
    "borderline-2": {"m_neighbors": -1},
    "tomek": {"knn": "hnsw"},
    "enn": {"kind_sel": "any"},
    "smote-tomek": {"tomek": SMOTE()},
    "smote-enn": {"sampling_strategy": "majority"},
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_bad_parameters_fail_before_any_pass(dask_client, frame, name):
    strategy = "auto"
    sampler = SAMPLERS[name]("exact", strategy).set_params(**BAD_PARAMS[name])
    with pytest.raises(ValueError) as err:
        sampler.resample(_poisoned_dask_frame(frame), label="y")
    assert "the data was read" not in str(err.value)
    with pytest.raises(ValueError):
        sampler.fit_resample(frame.drop(columns="y"), frame["y"])


def test_cli_and_config_know_every_sampler():
    from distsmote.config import SAMPLER_NAMES

    public = {n for n in distsmote.__all__ if n[0].isupper() and n != "KnnConfig"}
    assert set(SAMPLER_NAMES.values()) == public


# ---------------------------------------------- every sampling_strategy form, vs imblearn


def _imblearn_twin(sampler):
    import imblearn.combine as ic
    import imblearn.over_sampling as io
    import imblearn.under_sampling as iu

    for module in (io, iu, ic):
        if hasattr(module, type(sampler).__name__):
            cls = getattr(module, type(sampler).__name__)
            params = {k: v for k, v in sampler.get_params(deep=False).items() if k not in ("knn", "driver_budget")}
            return cls(**params)
    raise AssertionError(type(sampler).__name__)


STRATEGIES = [
    "auto", "minority", "majority", "not minority", "not majority", "all", "everything",
    0.5, 0.0, 1.5, {0: 700, 2: 700}, {0: 100}, {9: 800}, [1, 2], [9],
    lambda y: {0: 700}, lambda y: [0],
]


def _sorted_sets(message: str) -> str:
    """The message with each ``{'a', 'b'}`` listing in sorted order."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
@pytest.mark.parametrize(
    "sampler",
    [SMOTE(random_state=0, knn="exact"), ADASYN(random_state=0, knn="exact"),
     BorderlineSMOTE(random_state=0, knn="exact"), TomekLinks(knn="exact"),
     EditedNearestNeighbours(knn="exact")],
    ids=lambda s: type(s).__name__,
)
@pytest.mark.parametrize("counts", [{0: 300, 1: 700, 2: 120}, {0: 300, 1: 700}], ids=["3-class", "binary"])
def test_every_strategy_form_like_imblearn(sampler, strategy, counts):
    frame = make_frame(counts, n_features=3, seed=2)
    X, y = frame.drop(columns="y").to_numpy(), frame["y"].to_numpy()
    ours, theirs = clone(sampler).set_params(sampling_strategy=strategy), _imblearn_twin(sampler)
    theirs.set_params(sampling_strategy=strategy)
    try:
        _, y_theirs = theirs.fit_resample(X, y)
    except (ValueError, RuntimeError) as expected:  # refused: ours too, in the same words
        with pytest.raises(type(expected)) as err:
            ours.fit_resample(X, y)
        # ours may add a hint; scikit-learn lists allowed strings in set order (hash-seeded)
        assert _sorted_sets(str(err.value)).startswith(_sorted_sets(str(expected)).rstrip("."))
        return
    except AttributeError:  # imblearn crashes on a callable returning a list; we explain
        with pytest.raises(ValueError, match="must return a dict"):
            ours.fit_resample(X, y)
        return
    _, y_ours = ours.fit_resample(X, y)
    assert ours.sampling_strategy_ == theirs.sampling_strategy_
    if isinstance(sampler, ADASYN):  # exact totals; imblearn's rint can miss the target
        before = Counter(y)
        assert Counter(y_ours) == {c: before[c] + ours.sampling_strategy_.get(c, 0) for c in before}
    else:
        assert Counter(y_ours) == Counter(y_theirs)


# ------------------------------------------- column roles × sampler × engine (lake tables)
#: Samplers run on a table with passthrough, partition and id columns.
ROLE_SAMPLERS = {
    "smote": lambda: SMOTE(random_state=3, knn="exact"),
    "adasyn": lambda: ADASYN(random_state=3, knn="exact"),
    "borderline-2": lambda: BorderlineSMOTE(kind="borderline-2", random_state=3, knn="exact"),
    "tomek": lambda: TomekLinks(knn="exact"),
    "enn": lambda: EditedNearestNeighbours(kind_sel="mode", knn="exact"),
    "smote-enn": lambda: SMOTEENN(random_state=3),
    "smotenc": lambda: SMOTENC(random_state=3, knn="exact"),
    "smoten": lambda: SMOTEN(random_state=3),
}
ROLE_CLEANERS = {"tomek", "enn"}
PASSTHROUGH = ["note", "ts", "amount"]
PARTITION = ["day"]
ID = "rid"


def lake_table(kind: str) -> pd.DataFrame:
    """A lake-like table: ``kind`` picks the features ("numeric", "mixed", "nominal")."""
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1, 2], [160, 50, 40])
    n = len(y)
    x = (rng.normal(size=(n, 3)) + 0.9 * y[:, None]).astype(np.float32)
    base = pd.DataFrame(x, columns=["f0", "f1", "f2"]).assign(y=y).sample(frac=1.0, random_state=1)
    base = base.reset_index(drop=True)
    out = base.drop(columns="y") if kind != "nominal" else pd.DataFrame(index=base.index)
    if kind == "nominal":
        y = base["y"].to_numpy()
        out["colour"] = np.where(rng.random(n) < 0.6, np.array(["red", "green", "blue"])[y], rng.choice(["red", "green", "blue"], n)).astype(object)
        out["size"] = pd.Categorical(rng.choice(["S", "M", "L"], n))
    if kind == "mixed":
        out["geo"] = rng.choice(["France", "Germany", "Spain"], n).astype(object)
        out["tier"] = pd.Categorical(rng.choice(["gold", "silver"], n))
        out["flag"] = rng.random(n) < 0.3
        out["branch"] = rng.choice([f"b{i:02d}" for i in range(30)], n).astype(object)
    out["y"] = base["y"]
    out["note"] = pd.Series([f"n{i}" if i % 3 else None for i in range(n)], dtype=object)
    out["ts"] = pd.Timestamp("2024-03-01 10:00") + pd.to_timedelta(np.arange(n), unit="min")
    out["amount"] = pd.array(np.where(np.arange(n) % 4, np.arange(n), 0), dtype="Int64")
    out["day"] = pd.Timestamp("2024-03-01") + pd.to_timedelta(np.arange(n) % 3, unit="D")
    out["rid"] = np.arange(n, dtype=np.int64) + 1_000_000
    return out


def _kind(name: str) -> str:
    return {"smotenc": "mixed", "smoten": "nominal"}.get(name, "numeric")


def _roles():
    return dict(passthrough=PASSTHROUGH, partition_columns=PARTITION, id_column=ID)


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every value as text, null as "null", rows sorted: compares outputs across engines
    whose pandas conversions differ (dates as objects or timestamps, category or str)."""
    out = pd.DataFrame(index=range(len(frame)))
    for c in frame.columns:
        col = frame[c].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(col):
            text = col.dt.strftime("%Y-%m-%d %H:%M:%S")
        else:
            text = col.astype(object).map(
                lambda v: v.strftime("%Y-%m-%d %H:%M:%S") if hasattr(v, "strftime") else repr(v)
            )
        out[c] = text.where(col.notna().to_numpy(), "null")
    return out.sort_values(list(out.columns), kind="mergesort").reset_index(drop=True)


@pytest.fixture(scope="module")
def role_reference():
    out = {}
    for name, make in ROLE_SAMPLERS.items():
        frame = lake_table(_kind(name))
        sampler = make()
        out[name] = (frame, sampler.resample(frame, label="y", indicator="synthetic", **_roles()), sampler)
    return out


@pytest.mark.parametrize("name", sorted(ROLE_SAMPLERS))
def test_roles_pandas(role_reference, name):
    frame, result, sampler = role_reference[name]
    assert list(result.columns) == [*frame.columns, "synthetic"]
    expected_dtypes = frame.dtypes.to_dict()
    assert result.dtypes.drop("synthetic").to_dict() == expected_dtypes  # every type kept
    original = result[~result["synthetic"]].drop(columns="synthetic")
    new = result[result["synthetic"]]
    if name not in ROLE_CLEANERS and name != "smote-enn":
        assert_same_rows(original, frame)  # original rows bit for bit, passthrough included
        assert len(new) == sum(sampler.sampling_strategy_.values())
    if name in ROLE_CLEANERS:
        assert new.empty
        assert set(original[ID]) <= set(frame[ID])
        return
    assert new[PASSTHROUGH].isna().all().all()  # passthrough: null on synthetic rows
    for cls, part in new.groupby("y"):
        assert set(part["day"]) <= set(frame.loc[frame["y"] == cls, "day"])  # the seed's partition
    ids = new[ID].to_numpy()
    assert len(set(ids)) == len(ids) and not set(ids) & set(frame[ID])  # fresh and unique
    if name in ("smotenc", "smoten"):
        cats = ["geo", "tier", "flag", "branch"] if name == "smotenc" else ["colour", "size"]
        for c in cats:
            for cls, part in new.groupby("y"):
                assert set(part[c].astype(object)) <= set(frame.loc[frame["y"] == cls, c].astype(object))


@pytest.mark.parametrize("name", sorted(ROLE_SAMPLERS))
def test_roles_dask_same_output_and_types(dask_client, role_reference, name):
    import dask.dataframe as dd

    frame, expected, _ = role_reference[name]
    for partitions in (1, 3):
        ddf = dd.from_pandas(frame.sample(frac=1.0, random_state=partitions), npartitions=partitions)
        out = ROLE_SAMPLERS[name]().resample(ddf, label="y", indicator="synthetic", **_roles())
        assert isinstance(out, dd.DataFrame)
        result = out.compute()
        # Dask may read object strings as Arrow strings; the output keeps its input's types.
        assert result.dtypes.to_dict() == {**ddf.dtypes.to_dict(), "synthetic": np.dtype(bool)}
        pd.testing.assert_frame_equal(_text(result), _text(expected))


def _spark_lake(spark, frame):
    from pyspark.sql import functions as F

    pdf = frame.copy()
    for c in pdf.columns:
        if isinstance(pdf[c].dtype, pd.CategoricalDtype):
            pdf[c] = pdf[c].astype(object)
    sdf = spark.createDataFrame(pdf.sample(frac=1.0, random_state=4)).repartition(3)
    return sdf.withColumn("day", F.to_date("day"))


@pytest.mark.parametrize("name", sorted(ROLE_SAMPLERS))
def test_roles_spark_same_output_and_types(spark, role_reference, name):
    frame, expected, _ = role_reference[name]
    sdf = _spark_lake(spark, frame)
    out = ROLE_SAMPLERS[name]().resample(sdf, label="y", indicator="synthetic", **_roles())
    types = {f.name: f.dataType.simpleString() for f in out.schema.fields}
    assert types == {**{f.name: f.dataType.simpleString() for f in sdf.schema.fields}, "synthetic": "boolean"}
    assert types["day"] == "date" and types["ts"] == "timestamp"
    result = out.toPandas()
    want = expected.copy()
    want["day"] = want["day"].dt.strftime("%Y-%m-%d 00:00:00")
    got = result.copy()
    got["day"] = got["day"].map(lambda d: None if d is None else d.strftime("%Y-%m-%d 00:00:00"))
    got["amount"] = got["amount"].astype("Int64")  # toPandas gives a nullable bigint as float
    pd.testing.assert_frame_equal(_text(got), _text(want))
