"""The evaluation's defaults, importable without scikit-learn (the CLI's help uses them)."""

#: The article's samplers (``none`` = no resampling, the baseline).
DEFAULT_SAMPLERS = ("none", "smote", "adasyn", "smote-tomek", "smote-enn")
#: Default row limit of the in-memory (scikit-learn) path.
IN_MEMORY_LIMIT = 1_000_000
