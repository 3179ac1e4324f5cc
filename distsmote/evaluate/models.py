"""The article's three models: logistic regression, a decision tree, a random forest.

In memory they are scikit-learn estimators; every random choice is seeded.  The
distributed equivalents (dask-ml, Spark MLlib) live in :mod:`distsmote.evaluate.distributed`.
"""

from __future__ import annotations

from typing import Any

#: Short model names and what they stand for.
MODEL_NAMES = {
    "lr": "logistic regression",
    "dt": "decision tree",
    "rf": "random forest",
}


def check_models(models: Any) -> list[str]:
    """Validate a list of model names (or a comma-separated string)."""
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    models = list(models)
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown or not models:
        raise ValueError(f"Unknown model {unknown[0] if unknown else ''!r}; choose among {sorted(MODEL_NAMES)}.")
    if len(set(models)) != len(models):
        raise ValueError(f"A model is named twice in {models}.")
    return models


def make_model(name: str, seed: int) -> Any:
    """An unfitted scikit-learn classifier for a model name.

    ``lr`` is ``StandardScaler`` followed by ``LogisticRegression(max_iter=1000)``;
    ``dt`` a ``DecisionTreeClassifier``; ``rf`` a ``RandomForestClassifier`` with 100
    trees.  Tree models get ``random_state=seed``.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if name == "lr":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if name == "dt":
        return DecisionTreeClassifier(random_state=seed)
    if name == "rf":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    raise ValueError(f"Unknown model {name!r}; choose among {sorted(MODEL_NAMES)}.")
