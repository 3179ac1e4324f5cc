"""distsmote: imbalanced-learn's SMOTE family on pandas, Dask and Spark.

Public names only; the code lives in private modules and subpackages.  Names are
loaded on first use, so that worker processes, which only import the task kernels,
never pay for scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily
    from distsmote.neighbors.config import KnnConfig
    from distsmote.samplers.adasyn import ADASYN
    from distsmote.samplers.borderline import BorderlineSMOTE
    from distsmote.samplers.cleaning import EditedNearestNeighbours, TomekLinks
    from distsmote.samplers.combine import SMOTEENN, SMOTETomek
    from distsmote.samplers.smote import SMOTE
    from distsmote.samplers.smoten import SMOTEN
    from distsmote.samplers.smotenc import SMOTENC

__version__ = "0.1.0"

_PUBLIC = {
    "SMOTE": "distsmote.samplers.smote",
    "SMOTENC": "distsmote.samplers.smotenc",
    "SMOTEN": "distsmote.samplers.smoten",
    "ADASYN": "distsmote.samplers.adasyn",
    "BorderlineSMOTE": "distsmote.samplers.borderline",
    "TomekLinks": "distsmote.samplers.cleaning",
    "EditedNearestNeighbours": "distsmote.samplers.cleaning",
    "SMOTETomek": "distsmote.samplers.combine",
    "SMOTEENN": "distsmote.samplers.combine",
    "KnnConfig": "distsmote.neighbors.config",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'distsmote' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
