"""The job scripts on real clusters: spark-submit to a standalone master, and a Dask
scheduler + worker pair; both must write what the in-process run produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from distsmote import SMOTE

from _data import assert_same_rows, make_frame

ROOT = Path(__file__).resolve().parents[1]


def _input(tmp_path: Path) -> tuple[pd.DataFrame, str]:
    frame = make_frame({0: 900, 1: 70, 2: 45}, n_features=4, seed=6, dtype=np.float32)
    src = tmp_path / "input"
    src.mkdir()
    for i, chunk in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[chunk].to_parquet(src / f"part-{i}.parquet", index=False)
    return frame, str(src)


def _expected(frame: pd.DataFrame) -> pd.DataFrame:
    return SMOTE(random_state=99, knn="auto").resample(frame, label="y", indicator="is_synthetic")


def test_spark_submit_job(spark_cluster, tmp_path):
    frame, src = _input(tmp_path)
    dst = tmp_path / "output"
    cmd = spark_cluster.submit_args() + [
        str(ROOT / "jobs" / "spark_resample.py"),
        "--input", src, "--output", str(dst), "--label", "y", "--seed", "99",
        "--indicator", "is_synthetic", "--quiet",
    ]
    proc = subprocess.run(cmd, env=spark_cluster.env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (dst / "_SUCCESS").exists()
    result = pd.read_parquet(dst)
    result["y"] = result["y"].astype(np.int64)
    assert_same_rows(result, _expected(frame))
    assert "SMOTE on spark" in proc.stdout


def test_dask_cluster_job(dask_cluster, tmp_path):
    frame, src = _input(tmp_path)
    dst = tmp_path / "output"
    cmd = [
        sys.executable, str(ROOT / "jobs" / "dask_resample.py"), "--scheduler", dask_cluster.address,
        "--input", src, "--output", str(dst), "--label", "y", "--seed", "99",
        "--indicator", "is_synthetic", "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (dst / "_SUCCESS").exists()
    assert_same_rows(pd.read_parquet(dst), _expected(frame))
    assert "SMOTE on dask" in proc.stdout


def test_demo_command_with_embedded_cluster(tmp_path):
    """The README's first command: demo data, embedded local Dask cluster, no server."""
    exe = Path(sys.executable).with_name("distsmote")
    proc = subprocess.run(
        [str(exe), "demo", "--workdir", str(tmp_path / "demo"), "--rows", "20000", "--n-workers", "1"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = pd.read_parquet(tmp_path / "demo" / "output")
    assert out["label"].value_counts().to_dict() == {0: 19600, 1: 19600}
    assert "wrote 39,200 rows" in proc.stdout
