"""The sampler template: one life cycle for every sampler, on every engine.

``resample(frame, label)`` (pandas, Dask or Spark) and ``fit_resample(X, y)`` (arrays,
like imbalanced-learn) both run the same steps, in this order:

1. validate the declared ``_parameter_constraints`` and the sampler's own cross-checks
   (:meth:`BaseSampler._check_params`), before any pass over the data;
2. describe the frame once (:func:`~distsmote.samplers.frame_info.describe`): features, label, dtypes, class counts
   and ``y`` when it is in memory, with every input check;
3. resolve ``sampling_strategy`` by the sampler's ``_sampling_type``;
4. set the fitted attributes, in one place;
5. call ``_fit_resample(engine, frame, info, targets)``, the only method a sampler
   writes.

Combined samplers call :meth:`BaseSampler.run` (steps 3-5) on their components.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin
from sklearn.utils import InputTags, Tags, TargetTags
from sklearn.utils._param_validation import Interval, StrOptions

from distsmote._strategy import resolve_sampling_strategy
from distsmote._validation import DistSmoteInputError
from distsmote.engines import engine_for
from distsmote.engines.base import Engine
from distsmote.neighbors.config import KnnConfig
from distsmote.samplers.arrays import LABEL, from_frame, names_of, to_frame
from distsmote.samplers.frame_info import FrameInfo, describe

logger = logging.getLogger("distsmote")


# ------------------------------------------------------------ parameter constraints

#: Constraint of ``sampling_strategy`` for over-samplers (imbalanced-learn's).
OVER_SAMPLING_STRATEGY = [
    Interval(numbers.Real, 0, 1, closed="right"),
    StrOptions({"auto", "minority", "not minority", "not majority", "all"}),
    Mapping,
    callable,
]
#: Constraint of ``sampling_strategy`` for cleaning samplers (imbalanced-learn's).
CLEAN_SAMPLING_STRATEGY = [
    Interval(numbers.Real, 0, 1, closed="right"),  # refused later, with imblearn's wording
    StrOptions({"auto", "majority", "not minority", "not majority", "all"}),
    list,
    callable,
]
#: Constraint of ``knn``: a method name, a dict of :class:`KnnConfig` fields or one.
KNN = [StrOptions({"auto", "exact", "ivf", "hnsw"}), dict, KnnConfig]
#: Constraint of ``knn`` for samplers that search all classes with the kNN join.
JOIN_KNN = [StrOptions({"auto", "exact", "ivf"}), dict, KnnConfig]
#: A seed: any non-negative integer (63-bit seeds included), a numpy RNG or None.
RANDOM_STATE = [
    Interval(numbers.Integral, 0, None, closed="left"),
    np.random.RandomState,
    np.random.Generator,
    None,
]
#: A neighbour count.
POSITIVE_INT = [Interval(numbers.Integral, 1, None, closed="left")]
#: A memory budget: bytes, a size string ("2GiB") or None (no limit).
DRIVER_BUDGET = [Interval(numbers.Integral, 1, None, closed="left"), str, None]


def parse_budget(value: Any) -> int | None:
    """A ``driver_budget`` in bytes (``None``: no limit).

    Raises
    ------
    DistSmoteInputError
        If a string is not a size such as ``"512MiB"`` or ``"2GB"``.
    """
    if value is None or isinstance(value, numbers.Integral):
        return None if value is None else int(value)
    from dask.utils import parse_bytes

    try:
        size = int(parse_bytes(value))
    except (ValueError, TypeError):
        size = 0
    if size <= 0:
        raise DistSmoteInputError(
            f"driver_budget must be a positive number of bytes or a size such as '512MiB' "
            f"or '2GiB'. Got {value!r}."
        )
    return size


def join_knn(knn: Any) -> KnnConfig:
    """``knn`` as a :class:`KnnConfig` usable by the kNN join (no HNSW)."""
    config = KnnConfig.coerce(knn)
    if config.method == "hnsw":
        raise DistSmoteInputError(
            "The kNN join over all classes supports knn='auto', 'exact' and 'ivf' "
            "(approximate: k-means cells). Got method 'hnsw'; use 'ivf' instead."
        )
    return config


# ------------------------------------------------------------------------ the base


@dataclass(slots=True)
class SamplerTags:
    """imbalanced-learn's sampler tags."""

    sample_indices: bool = False


@dataclass(slots=True)
class _InputTags(InputTags):
    dataframe: bool = True


@dataclass(slots=True)
class _Tags(Tags):
    sampler_tags: SamplerTags | None = None


class BaseSampler(OneToOneFeatureMixin, BaseEstimator):
    """Base class: ``fit_resample`` for arrays, ``resample`` for frames.

    Subclasses declare ``_parameter_constraints`` and ``_sampling_type`` and write
    ``_fit_resample(engine, frame, info, targets)`` against the engine primitives.
    """

    #: ``"over-sampling"`` or ``"clean-sampling"``: how ``sampling_strategy`` resolves.
    _sampling_type = "over-sampling"
    _parameter_constraints: dict = {}
    #: Whether ``fit_resample`` sets ``sample_indices_`` (cleaning samplers).
    _sample_indices = False
    #: Features the sampler takes: ``"numeric"``, ``"mixed"`` (SMOTENC) or
    #: ``"categorical"`` (SMOTEN).
    _accepts = "numeric"

    def _declared_categorical(self, columns: list[str]) -> list[str] | None:
        """Categorical features the sampler's own parameters declare (default: none)."""
        return None

    def _describe(self, engine: Engine, frame: Any, label: str, indicator: str | None = None,
                  roles: dict | None = None) -> FrameInfo:
        roles = dict(roles or {})
        if roles.get("categorical") is None:
            roles["categorical"] = self._declared_categorical(
                [c for c in engine.columns(frame) if c != label]
            )
        return describe(engine, frame, label, indicator, roles=roles, accepts=self._accepts,
                        sampler=type(self).__name__, prefetch_budget=self._prefetch_budget())

    def _prefetch_budget(self) -> int | None:
        """Bytes of rows the class-statistics pass may bring back for a later collect
        (``None``: the sampler collects no rows)."""
        return None

    # -- the sklearn / imbalanced-learn contract ---------------------------------------

    def __sklearn_tags__(self) -> _Tags:
        base = super().__sklearn_tags__()
        return _Tags(
            estimator_type="sampler",
            target_tags=TargetTags(required=True),
            input_tags=_InputTags(two_d_array=True, sparse=False),
            sampler_tags=SamplerTags(sample_indices=self._sample_indices),
            non_deterministic=base.non_deterministic,
        )

    def fit(self, X: Any, y: Any) -> "BaseSampler":
        """Check the inputs and parameters and resolve ``sampling_strategy``.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        self._validate()
        frame, _ = self._to_frame(X, y)
        info = self._describe(engine_for(frame), frame, LABEL)
        self._set_fitted(info, self._resolve(info), names_of(X))
        return self

    def _to_frame(self, X: Any, y: Any) -> tuple[Any, str]:
        return to_frame(X, y)

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        """Resample in-memory ``X, y`` like imbalanced-learn.

        Parameters
        ----------
        X : array-like, list or pandas.DataFrame of shape (n_samples, n_features)
            Numeric features.  Sparse matrices are refused.
        y : array-like of shape (n_samples,), a column vector or a one-vs-all indicator
            Class labels (int, str or bool).

        Returns
        -------
        X_resampled, y_resampled
            Same types as the inputs: the original rows first, then the new rows.
        """
        self._validate()
        frame, y_form = self._to_frame(X, y)
        engine = engine_for(frame)
        info = self._describe(engine, frame, LABEL)
        out = self.run(engine, frame, info, names_of(X))
        if self._sample_indices:
            self.sample_indices_ = out.index.to_numpy()
        return from_frame(out, X, y, y_form)

    def resample(
        self,
        frame: Any,
        label: str,
        indicator: str | None = None,
        *,
        categorical: list[str] | None = None,
        passthrough: list[str] | None = None,
        partition_columns: list[str] | None = None,
        id_column: str | None = None,
        new_rows_only: bool = False,
    ) -> Any:
        """Resample a pandas, Dask or Spark DataFrame.

        Parameters
        ----------
        frame : pandas.DataFrame, dask.dataframe.DataFrame or pyspark.sql.DataFrame
            Every column except ``label`` and the passthrough columns is a feature.  The
            engine is chosen from the frame's type.
        label : str
            The class column.
        indicator : str, optional
            If given, add a boolean column of this name, ``True`` on synthetic rows.
        categorical : list of str, optional
            Categorical features (SMOTENC, SMOTEN).  Default: the sampler's own
            ``categorical_features``, else every string, category, dictionary and
            boolean column.
        passthrough : list of str, optional
            Columns carried along unchanged and never used in a distance; null on
            synthetic rows.
        partition_columns : list of str, optional
            Passthrough columns whose value synthetic rows copy from their seed row, so
            a partitioned write stays partitioned.
        id_column : str, optional
            A passthrough int64 or string column that gets fresh, unique, deterministic
            ids on synthetic rows (the same on every engine).
        new_rows_only : bool, default False
            Return only the rows the sampler adds when its output is ``frame``
            unchanged plus new rows (the SMOTE family without ``indicator`` or
            passthrough columns made nullable); ``new_rows_only_`` then says ``True``.
            A job uses this to copy the input's files instead of rewriting their rows.

        Returns
        -------
        Same type as ``frame``
            Dask and Spark results are lazy; only the small planning steps have run.
        """
        self._validate()
        engine = engine_for(frame)
        logger.info("%s on the %s engine", type(self).__name__, engine.name)
        roles = dict(categorical=categorical, passthrough=passthrough,
                     partition_columns=partition_columns, id_column=id_column)
        info = self._describe(engine, frame, label, indicator, roles)
        return self.run(engine, frame, info, new_rows_only=new_rows_only)

    # -- the template ------------------------------------------------------------------

    def run(self, engine: Engine, frame: Any, info: FrameInfo, names: Any = "frame",
            new_rows_only: bool = False) -> Any:
        """Resolve the strategy, set the fitted attributes and resample (steps 3-5).

        ``names`` are the caller's feature names for ``feature_names_in_``: the frame's
        feature columns by default, ``None`` for arrays without names.  ``new_rows_only``:
        see :meth:`resample`.
        """
        targets = self._resolve(info)
        self._set_fitted(info, targets, list(info.all_features) if names == "frame" else names)
        self._new_rows_wanted = new_rows_only
        self.new_rows_only_ = False
        out = self._fit_resample(engine, frame, info, targets)
        if self._sampling_type == "clean-sampling" and info.indicator and not info.indicator_present:
            out = engine.with_constant(out, info.indicator, False)
        return out

    def _validate(self) -> None:
        self._validate_params()
        self._check_params()

    def _check_params(self) -> None:
        """Cross-parameter checks that constraints cannot express (default: none)."""

    def _resolve(self, info: FrameInfo) -> dict:
        return resolve_sampling_strategy(
            self.sampling_strategy, info.counts, self._sampling_type, info.y
        )

    def _set_fitted(self, info: FrameInfo, targets: dict, names: Any) -> None:
        self.sampling_strategy_ = dict(targets)
        self.class_counts_ = dict(info.counts)
        self.n_features_in_ = len(info.all_features)
        if names is not None and all(isinstance(n, str) for n in names):
            self.feature_names_in_ = np.asarray(list(names), dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)
        self.__dict__.pop("sample_indices_", None)

    def _fit_resample(self, engine: Engine, frame: Any, info: FrameInfo, targets: dict) -> Any:
        raise NotImplementedError


__all__ = [
    "BaseSampler",
    "FrameInfo",
    "describe",
    "join_knn",
    "OVER_SAMPLING_STRATEGY",
    "CLEAN_SAMPLING_STRATEGY",
    "KNN",
    "RANDOM_STATE",
    "JOIN_KNN",
    "POSITIVE_INT",
    "DRIVER_BUDGET",
    "parse_budget",
]
