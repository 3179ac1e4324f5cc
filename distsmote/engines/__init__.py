"""Engines: local (pandas), Dask and Spark, chosen from the frame's type.

The Dask and Spark engines are imported only when a frame of theirs arrives, so the
package works without either installed.
"""

from __future__ import annotations

from typing import Any

from distsmote.engines.base import Engine


def engine_for(frame: Any) -> Engine:
    """Pick the engine for ``frame`` from its type."""
    module = type(frame).__module__
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        from distsmote.engines.local import LocalEngine

        return LocalEngine()
    if module.startswith("dask"):
        from distsmote.engines.dask import DaskEngine

        return DaskEngine()
    if module.startswith("pyspark"):
        from distsmote.engines.spark import SparkEngine

        return SparkEngine(frame.sparkSession)
    raise TypeError(
        "distsmote resamples a pandas, Dask or Spark DataFrame. Got "
        f"{type(frame).__module__}.{type(frame).__name__}. Use fit_resample(X, y) for "
        "numpy arrays."
    )


#: Engine names (``--engine``) → ``(module, class)``, imported on first use.
ENGINES = {
    "local": ("distsmote.engines.local", "LocalEngine"),
    "dask": ("distsmote.engines.dask", "DaskEngine"),
    "spark": ("distsmote.engines.spark", "SparkEngine"),
}


def engine_class(name: str) -> type[Engine]:
    """The engine class called ``name`` (``"local"``, ``"dask"``, ``"spark"``)."""
    import importlib

    try:
        module, cls = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of {sorted(ENGINES)}") from None
    return getattr(importlib.import_module(module), cls)


__all__ = ["ENGINES", "Engine", "engine_class", "engine_for"]
