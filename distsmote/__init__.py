"""distsmote: imbalanced-learn's SMOTE family on pandas, Dask and Spark.

Public names only; the code lives in private modules and subpackages.
"""

from distsmote.neighbors.config import KnnConfig
from distsmote.samplers.cleaning import EditedNearestNeighbours, TomekLinks
from distsmote.samplers.combine import SMOTEENN, SMOTETomek
from distsmote.samplers.smote import SMOTE

__version__ = "0.1.0"

__all__ = [
    "SMOTE",
    "SMOTEENN",
    "SMOTETomek",
    "EditedNearestNeighbours",
    "TomekLinks",
    "KnnConfig",
    "__version__",
]
