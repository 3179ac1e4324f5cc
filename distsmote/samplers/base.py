"""Shared sampler machinery: the two entry points and the sklearn estimator contract."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from distsmote.engines import engine_for
from distsmote.engines.base import Engine

logger = logging.getLogger("distsmote")

_LABEL = "__distsmote_label__"


class BaseSampler(BaseEstimator):
    """Base class: ``fit_resample`` for arrays, ``resample`` for frames.

    Subclasses implement ``_resample(engine, frame, label, indicator)``, written once
    against the :class:`~distsmote.engines.base.Engine` primitives.
    """

    _sampling_type = "over-sampling"

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        """Resample in-memory ``X, y`` like imbalanced-learn.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Numeric features.
        y : array-like or pandas.Series of shape (n_samples,)
            Class labels (int, str or bool).

        Returns
        -------
        X_resampled, y_resampled
            Same types as the inputs: the original rows first, then the new rows.
        """
        is_frame = isinstance(X, pd.DataFrame)
        if is_frame:
            frame = X.reset_index(drop=True).copy()
            frame.columns = [str(c) for c in frame.columns]
        else:
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise ValueError(f"X must be 2-dimensional. Got shape {arr.shape}.")
            frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or len(y_arr) != len(frame):
            raise ValueError(
                f"y must be 1-dimensional with one label per row of X. Got shape "
                f"{y_arr.shape} for X with {len(frame)} rows."
            )
        frame[_LABEL] = y_arr
        out = self.resample(frame, label=_LABEL)
        y_res = out.pop(_LABEL).to_numpy()
        if is_frame:
            out.columns = X.columns
            X_res = out
        else:
            X_res = out.to_numpy(dtype=np.asarray(X).dtype)
        if isinstance(y, pd.Series):
            y_res = pd.Series(y_res, name=y.name, dtype=y.dtype)
        return X_res, y_res

    def resample(self, frame: Any, label: str, indicator: str | None = None) -> Any:
        """Resample a pandas, Dask or Spark DataFrame.

        Parameters
        ----------
        frame : pandas.DataFrame, dask.dataframe.DataFrame or pyspark.sql.DataFrame
            Every column except ``label`` is a feature.  The engine is chosen from the
            frame's type.
        label : str
            The class column.
        indicator : str, optional
            If given, add a boolean column of this name, ``True`` on synthetic rows.

        Returns
        -------
        Same type as ``frame``
            The input rows plus the synthetic rows, same columns and dtypes.  Dask and
            Spark results are lazy; only the small planning steps have run.
        """
        engine = engine_for(frame)
        logger.info("%s on the %s engine", type(self).__name__, engine.name)
        return self._resample(engine, frame, label, indicator)

    def _resample(self, engine: Engine, frame: Any, label: str, indicator: str | None) -> Any:
        raise NotImplementedError
