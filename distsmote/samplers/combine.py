"""Over-sampling followed by cleaning: SMOTETomek and SMOTEENN, on any engine.

The SMOTE output stays on the engine (lazy on Dask and Spark) and is cleaned by the
distributed kNN join; its class counts are known from the SMOTE plan, so no extra pass
is needed to count them.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods

from distsmote._validation import DistSmoteInputError
from distsmote.engines.base import Engine
from distsmote.samplers.base import OVER_SAMPLING_STRATEGY, RANDOM_STATE, BaseSampler
from distsmote.samplers.frame_info import FrameInfo
from distsmote.samplers.cleaning import EditedNearestNeighbours, TomekLinks, _CleaningSampler
from distsmote.samplers.smote import SMOTE


class _Combined(BaseSampler):
    """Over-sampling, then cleaning: both steps run through the sampler template."""

    _sampling_type = "over-sampling"
    _cleaner_name = ""

    def _default_cleaner(self) -> _CleaningSampler:
        raise NotImplementedError

    def _components(self) -> tuple[SMOTE, _CleaningSampler]:
        smote = clone(self.smote) if self.smote is not None else SMOTE(
            sampling_strategy=self.sampling_strategy, random_state=self.random_state
        )
        given = getattr(self, self._cleaner_name)
        default = self._default_cleaner()
        cleaner = clone(given) if given is not None else default
        if not isinstance(smote, SMOTE):
            raise DistSmoteInputError(
                f"smote must be a distsmote SMOTE instance. Got {type(smote).__name__}."
            )
        if not isinstance(cleaner, type(default)):
            raise DistSmoteInputError(
                f"{self._cleaner_name} must be a distsmote {type(default).__name__} "
                f"instance. Got {type(cleaner).__name__}."
            )
        return smote, cleaner

    def _check_params(self) -> None:
        smote, cleaner = self._components()
        smote._validate()
        cleaner._validate()

    def _resolve(self, info: FrameInfo) -> dict:
        smote, _ = self._components()
        return smote._resolve(info)

    def _prefetch_budget(self) -> int | None:
        smote, _ = self._components()  # SMOTE collects the classes it oversamples
        return smote._prefetch_budget()

    def _fit_resample(self, engine: Engine, frame: Any, info: FrameInfo, targets: dict) -> Any:
        smote, cleaner = self._components()
        # Every pass of the cleaning join reads the SMOTE output: it is computed once.
        oversampled = engine.persist(smote.run(engine, frame, info))
        cleaned = cleaner.run(engine, oversampled, info.oversampled(engine, oversampled, targets))
        self.smote_ = smote
        setattr(self, self._cleaner_name + "_", cleaner)
        return cleaned


class SMOTETomek(_Combined):
    """SMOTE over-sampling, then removal of Tomek links.  On pandas, Dask or Spark.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        Passed to the default SMOTE (ignored when ``smote`` is given).
    random_state : int or None, default=None
        Seed of the default SMOTE (ignored when ``smote`` is given).
    smote : SMOTE, optional
        The over-sampler; default ``SMOTE(sampling_strategy=sampling_strategy,
        random_state=random_state)``.
    tomek : TomekLinks, optional
        The cleaner; default ``TomekLinks(sampling_strategy='all')``.

    Attributes
    ----------
    smote_, tomek_
        The fitted copies of the two samplers.
    sampling_strategy_ : dict
        Rows generated per class by ``smote_``.
    class_counts_, n_features_in_, feature_names_in_
        Class counts, number and names of the features of the input.

    Notes
    -----
    The output equals ``tomek.resample(smote.resample(frame))``: the same rows
    imbalanced-learn's cleaner removes from distsmote's SMOTE output in exact mode.
    Same determinism as SMOTE: equal rows, parameters and seed give an equal output
    multiset on every engine and partitioning.
    """

    _cleaner_name = "tomek"
    _parameter_constraints = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "random_state": RANDOM_STATE,
        "smote": [HasMethods(["fit_resample"]), None],
        "tomek": [HasMethods(["fit_resample"]), None],
    }

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        random_state: int | None = None,
        smote: SMOTE | None = None,
        tomek: TomekLinks | None = None,
    ) -> None:
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.smote = smote
        self.tomek = tomek

    def _default_cleaner(self) -> TomekLinks:
        return TomekLinks(sampling_strategy="all")


class SMOTEENN(_Combined):
    """SMOTE over-sampling, then edited-nearest-neighbours cleaning.  On pandas, Dask
    or Spark.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        Passed to the default SMOTE (ignored when ``smote`` is given).
    random_state : int or None, default=None
        Seed of the default SMOTE (ignored when ``smote`` is given).
    smote : SMOTE, optional
        The over-sampler; default ``SMOTE(sampling_strategy=sampling_strategy,
        random_state=random_state)``.
    enn : EditedNearestNeighbours, optional
        The cleaner; default ``EditedNearestNeighbours(sampling_strategy='all')``
        (``n_neighbors=3``, ``kind_sel='all'``).

    Attributes
    ----------
    smote_, enn_
        The fitted copies of the two samplers.
    sampling_strategy_, class_counts_, n_features_in_, feature_names_in_
        As for :class:`SMOTETomek`.

    Notes
    -----
    The output equals ``enn.resample(smote.resample(frame))``; see :class:`SMOTETomek`.
    """

    _cleaner_name = "enn"
    _parameter_constraints = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "random_state": RANDOM_STATE,
        "smote": [HasMethods(["fit_resample"]), None],
        "enn": [HasMethods(["fit_resample"]), None],
    }

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        random_state: int | None = None,
        smote: SMOTE | None = None,
        enn: EditedNearestNeighbours | None = None,
    ) -> None:
        self.sampling_strategy = sampling_strategy
        self.random_state = random_state
        self.smote = smote
        self.enn = enn

    def _default_cleaner(self) -> EditedNearestNeighbours:
        return EditedNearestNeighbours(sampling_strategy="all")
