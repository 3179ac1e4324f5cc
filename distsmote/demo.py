"""Generated demo datasets: a fraud-like numeric table with a 2 % minority class, and
a churn-like table with categorical features, an id and a date partition column."""

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


#: The churn demo's job: SMOTENC, categorical features found by type.
CHURN_ROLES = {
    "sampler.name": "smotenc",
    "id_column": "CustomerId",
    "partition_columns": ["SignupDate"],
}


def make_churn_frame(rows: int = 200_000, minority_share: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """The churn-like table of :func:`distsmote.datasets.make_churn`, with lake columns.

    ``Exited`` (1 = churned) is the label.  Added to ``make_churn``'s columns:
    ``HasCrCard`` (bool) and ``Branch`` (100 categories), categorical features like
    ``Geography`` and ``Gender``; ``CustomerId`` (int64) and ``SignupDate`` (date),
    passthrough columns.
    """
    from distsmote.datasets import make_churn

    frame = make_churn(rows, churn_rate=minority_share, seed=seed)
    rng = np.random.default_rng((seed, 1))
    label = frame.pop("Exited")
    frame["HasCrCard"] = rng.random(rows) < 0.7
    frame["Branch"] = rng.choice([f"BR{i:03d}" for i in range(100)], rows).astype(object)
    frame["CustomerId"] = np.arange(15_000_000, 15_000_000 + rows, dtype=np.int64)
    frame["SignupDate"] = np.datetime64("2024-01-01") + rng.integers(0, 8, rows).astype("timedelta64[D]")
    frame["Exited"] = label
    return frame


def write_demo(workdir: str, rows: int = 200_000, table: str = "fraud") -> tuple[str, str, str]:
    """Write the demo input as a 4-file Parquet dataset; return (input, output, label).

    ``table``: ``"fraud"`` (numeric features) or ``"churn"`` (categorical features, an
    id and a date partition column, stored as a Parquet date).
    """
    input_dir = os.path.join(workdir, "input")
    os.makedirs(input_dir, exist_ok=True)
    for old in os.listdir(input_dir):
        if old.endswith(".parquet"):
            os.remove(os.path.join(input_dir, old))
    if table == "churn":
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = make_churn_frame(rows)
        for i, part in enumerate(np.array_split(np.arange(len(frame)), 4)):
            t = pa.Table.from_pandas(frame.iloc[part], preserve_index=False)
            t = t.set_column(t.schema.get_field_index("SignupDate"), "SignupDate",
                             t.column("SignupDate").cast(pa.date32()))
            pq.write_table(t, os.path.join(input_dir, f"part-{i:05d}.parquet"))
        return input_dir, os.path.join(workdir, "output"), "Exited"
    frame = make_demo_frame(rows)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 4)):
        frame.iloc[part].to_parquet(os.path.join(input_dir, f"part-{i:05d}.parquet"), index=False)
    return input_dir, os.path.join(workdir, "output"), "label"
