"""A generated demo dataset: a fraud-like table with a 2 % minority class."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd


def make_demo_frame(rows: int = 200_000, features: int = 16, minority_share: float = 0.02, seed: int = 0) -> pd.DataFrame:
    """Clustered float32 features with a binary ``label`` (1 = minority).

    Parameters
    ----------
    rows, features : int
        Shape of the table.
    minority_share : float
        Fraction of rows in class 1.
    seed : int
        Generator seed.
    """
    rng = np.random.default_rng(seed)
    n_min = max(16, int(rows * minority_share))
    centers = rng.normal(0, 4, size=(24, features))
    which = rng.integers(0, len(centers), size=rows)
    x = centers[which] + rng.normal(0, 1, size=(rows, features))
    y = np.zeros(rows, dtype=np.int64)
    minority = rng.choice(rows, size=n_min, replace=False)
    y[minority] = 1
    x[minority] += 1.5
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"f{i:02d}" for i in range(features)])
    frame["label"] = y
    return frame


def write_demo(workdir: str, rows: int = 200_000) -> tuple[str, str, str]:
    """Write the demo input as a 4-file Parquet dataset; return (input, output, label)."""
    input_dir = os.path.join(workdir, "input")
    os.makedirs(input_dir, exist_ok=True)
    frame = make_demo_frame(rows)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 4)):
        frame.iloc[part].to_parquet(os.path.join(input_dir, f"part-{i:05d}.parquet"), index=False)
    return input_dir, os.path.join(workdir, "output"), "label"
