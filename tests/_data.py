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


def on_some_segment(
    seeds: np.ndarray,
    synthetic: np.ndarray,
    k: int,
    pool: np.ndarray | None = None,
    pool_same: np.ndarray | None = None,
    other_max_u: float = 1.0,
) -> bool:
    """Every synthetic row is x + u·(n − x) with x a seed row, n among x's k nearest
    *other* rows of ``pool`` (default: the seeds), and u ∈ [0, 1] — or u ∈ [0,
    ``other_max_u``] when n is a pool row whose ``pool_same`` is False."""
    pool = seeds if pool is None else pool
    same = np.ones(len(pool), bool) if pool_same is None else pool_same
    d2 = ((seeds[:, None, :] - pool[None, :, :]) ** 2).sum(-1)
    self_match = (d2 == 0) & (np.arange(len(pool))[None, :] == np.arange(len(seeds))[:, None]) if pool is seeds else None
    if self_match is not None:
        d2[self_match] = np.inf
    else:  # a seed row is in the pool: drop one zero-distance copy of itself
        for i in range(len(seeds)):
            zero = np.flatnonzero((d2[i] == 0) & same)
            if len(zero):
                d2[i, zero[0]] = np.inf
    kth = np.sort(d2, axis=1)[:, k - 1]
    # Equal distances (rounded data) may differ by an ulp depending on summation order.
    pairs = [(i, j) for i in range(len(seeds)) for j in range(len(pool)) if np.isfinite(d2[i, j]) and d2[i, j] <= kth[i] * (1 + 1e-12)]
    a = seeds[[i for i, _ in pairs]]
    v = pool[[j for _, j in pairs]] - a
    top = np.where(same[[j for _, j in pairs]], 1.0, other_max_u)
    for s in synthetic:
        w = s - a
        vv = (v * v).sum(1)
        u = np.where(vv > 0, (w * v).sum(1) / np.where(vv > 0, vv, 1), 0.0)
        resid = np.abs(w - u[:, None] * v).max(1)
        scale = 1e-9 * (1 + np.abs(a).max(1) + np.abs(v).max(1))
        if not np.any((resid <= scale) & (u >= -1e-12) & (u <= top + 1e-12)):
            return False
    return True


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Assert two frames hold the same multiset of rows (exactly, values and dtypes)."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    pd.testing.assert_frame_equal(canonical(a), canonical(b), check_dtype=False, check_exact=True)
