"""Small deterministic datasets and comparison helpers shared by the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_frame(
    counts: dict, n_features: int = 4, seed: int = 0, dtype=np.float64, label: str = "y"
) -> pd.DataFrame:
    """Clustered features with the given class counts (rows in random order)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, (cls, n) in enumerate(counts.items()):
        centre = rng.normal(0, 3, size=n_features)
        x = centre + rng.normal(0, 1, size=(n, n_features))
        part = pd.DataFrame(x.astype(dtype), columns=[f"f{j}" for j in range(n_features)])
        part[label] = pd.Series([cls] * n, dtype=object if isinstance(cls, str) else None)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by every column, index reset: compare outputs as multisets."""
    frame = frame.copy()
    for c in frame.columns:
        if frame[c].dtype == object or str(frame[c].dtype).startswith(("str", "string")):
            frame[c] = frame[c].astype(str)
    return frame.sort_values(list(frame.columns), kind="mergesort").reset_index(drop=True)


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Assert two frames hold the same multiset of rows (exactly, values and dtypes)."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    pd.testing.assert_frame_equal(canonical(a), canonical(b), check_dtype=False, check_exact=True)
