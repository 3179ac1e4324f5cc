"""SMOTETomek / SMOTEENN benchmark against imbalanced-learn, plus a large Dask run.

Data: ``make_classification`` with N rows × 16 float32 features (8 informative, 4
redundant, 2 clusters per class, 1 % label noise), 2 % minority, seed 0.  SMOTE brings
the minority to 1:1, so the cleaners run on about 2·0.98·N rows.

Steps (each can be chosen with ``--steps``):

``imblearn``
    imbalanced-learn's SMOTE on the data, then imbalanced-learn's cleaner
    (``TomekLinks``/``EditedNearestNeighbours``, ``sampling_strategy='all'``,
    ``n_jobs=2``) on *distsmote's* SMOTE output.  The time reported is the sum: the
    cost of imbalanced-learn's SMOTETomek/SMOTEENN on data of exactly this size, and
    the rows it keeps are the oracle for distsmote's exact mode.  Cached in ``--cache``.
``local``
    distsmote ``fit_resample`` (in-process engine), approximate and exact kNN join.
``spark``
    The same on a ``local[2]`` SparkSession (Parquet in, Parquet out).
``dask``
    distsmote on an embedded ``LocalCluster`` (2 workers × 1 thread), Parquet in,
    Parquet out; run with ``--rows 5000000 --modes ivf`` for the large run.  Peak
    memory is the RSS of the whole process tree (driver and workers), sampled.  Where
    the ``imblearn`` step's removals are cached for this size, the kept rows are
    compared with them.

    python benchmarks/bench_cleaning.py --rows 200000 --steps imblearn local spark
    python benchmarks/bench_cleaning.py --rows 5000000 --steps dask spark --modes ivf

The Dask and Spark runs print the driver's stages; Dask runs also the workers' seconds
per kernel (from the task stream), Spark runs Spark's longest stages (status API).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import STAGE_DONE  # noqa: E402
from _measure import TreeMonitor as PeakRss  # noqa: E402

FEATURES = 16


def make_data(rows: int, minority: float = 0.02, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=rows, n_features=FEATURES, n_informative=8, n_redundant=4,
        n_clusters_per_class=2, weights=[1 - minority], class_sep=1.0, flip_y=0.01,
        random_state=seed,
    )
    return X.astype(np.float32), y.astype(np.int64)


def row_keys(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sorted content keys of rows: compare outputs as multisets."""
    from distsmote.neighbors.keys import content_keys

    return np.sort(content_keys(np.asarray(X, np.float64), np.asarray(y)))


SAMPLERS = ("SMOTETomek", "SMOTEENN")


def _cleaners(knn: str):
    from distsmote import EditedNearestNeighbours, SMOTEENN, SMOTETomek, TomekLinks

    out = {
        "SMOTETomek": SMOTETomek(random_state=0, tomek=TomekLinks(sampling_strategy="all", knn=knn)),
        "SMOTEENN": SMOTEENN(random_state=0, enn=EditedNearestNeighbours(sampling_strategy="all", knn=knn)),
    }
    return {name: out[name] for name in SAMPLERS}


def run_imblearn(X, y, cache: Path) -> dict:
    """imbalanced-learn's SMOTE time + its cleaner's time on distsmote's SMOTE output."""
    from imblearn.over_sampling import SMOTE as ImbSMOTE
    from imblearn.under_sampling import EditedNearestNeighbours, TomekLinks

    from distsmote import SMOTE

    out = {}
    t0 = time.perf_counter()
    ImbSMOTE(random_state=0).fit_resample(X, y)
    smote_s = time.perf_counter() - t0
    Xs, ys = SMOTE(random_state=0).fit_resample(X, y)
    for name, cleaner in [
        ("SMOTETomek", TomekLinks(sampling_strategy="all", n_jobs=2)),
        ("SMOTEENN", EditedNearestNeighbours(sampling_strategy="all", n_jobs=2)),
    ]:
        t0 = time.perf_counter()
        Xc, yc = cleaner.fit_resample(Xs, ys)
        clean_s = time.perf_counter() - t0
        np.save(cache / f"imblearn_{name}_{len(X)}.npy", row_keys(Xc, yc))
        out[name] = {"seconds": smote_s + clean_s, "smote_seconds": smote_s,
                     "clean_seconds": clean_s, "rows_in": len(ys), "rows_out": len(yc)}
        print(f"imblearn {name}: {out[name]}", flush=True)
    (cache / f"imblearn_{len(X)}.json").write_text(json.dumps(out, indent=1))
    return out


def compare(name: str, keys: np.ndarray, cache: Path, n: int, rows_in: int) -> dict:
    ref_path = cache / f"imblearn_{name}_{n}.npy"
    if not ref_path.exists():
        return {}
    ref = np.load(ref_path)
    removed_ref = rows_in - len(ref)
    # Multiset difference of kept rows = symmetric difference of removals.
    a, b = pd.Series(keys).value_counts(), pd.Series(ref).value_counts()
    diff = int(a.sub(b, fill_value=0).abs().sum())
    return {"removed_imblearn": removed_ref, "removal_diff_vs_imblearn": diff,
            "removal_diff_pct": 100.0 * diff / max(removed_ref, 1)}


def compare_written(name: str, dst: Path, cache: Path, n: int, rows_in: int) -> dict:
    """:func:`compare` for the rows an engine wrote to ``dst``."""
    kept = pd.read_parquet(dst)
    Xr = kept[[f"f{j:02d}" for j in range(FEATURES)]].to_numpy()
    return compare(name, row_keys(Xr, kept["label"].to_numpy()), cache, n, rows_in)


def run_local(X, y, cache: Path, modes) -> dict:
    out = {}
    for knn in modes:
        for name, sampler in _cleaners(knn).items():
            t0 = time.perf_counter()
            Xr, yr = sampler.fit_resample(X, y)
            seconds = time.perf_counter() - t0
            cleaner = sampler.tomek_ if name == "SMOTETomek" else sampler.enn_
            info = cleaner.join_info_
            rows_in = sum(cleaner.class_counts_.values())
            res = {"seconds": seconds, "rows_in": rows_in, "rows_out": len(yr), "mode": info.mode,
                   "cells": info.n_cells, "probes_per_row": round(info.probes_per_query, 2)}
            res.update(compare(name, row_keys(Xr, yr), cache, len(X), rows_in))
            out[f"{name}/{knn}"] = res
            print(f"local {name} knn={knn}: {res}", flush=True)
    return out


def _write_parquet(X, y, path: Path, files: int = 8) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    for i, idx in enumerate(np.array_split(np.arange(len(y)), files)):
        cols = {f"f{j:02d}": X[idx, j] for j in range(FEATURES)}
        cols["label"] = y[idx]
        pq.write_table(pa.table(cols), path / f"part-{i:05d}.parquet")


def run_spark(X, y, cache: Path, modes, tmp: Path) -> dict:
    from pyspark.sql import SparkSession

    src = tmp / "spark_in"
    _write_parquet(X, y, src)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need this venv
    spark = (
        SparkSession.builder.master("local[2]").appName("bench-cleaning")
        .config("spark.driver.memory", "8g").config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "true").config("spark.ui.port", "0").config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    out = {}
    try:
        for knn in modes:
            for name, sampler in _cleaners(knn).items():
                dst = tmp / f"spark_out_{name}_{knn}"
                spark.catalog.clearCache()
                before = {s["stage"] for s in spark_stages(spark)}
                with PeakRss() as peak, StageLog() as log:
                    t0 = time.perf_counter()
                    frame = spark.read.parquet(str(src))
                    sampler.resample(frame, label="label").write.mode("overwrite").parquet(str(dst))
                    seconds = time.perf_counter() - t0
                stages = [s for s in spark_stages(spark) if s["stage"] not in before]
                cleaner = sampler.tomek_ if name == "SMOTETomek" else sampler.enn_
                rows_in = sum(cleaner.class_counts_.values())
                res = {"seconds": seconds, "peak_rss_gib": round(peak.peak / 2**30, 2),
                       "rows_out": len(pd.read_parquet(dst, columns=["label"])),
                       "mode": cleaner.join_info_.mode, "driver_stages_s": log.summary(),
                       "spark_stages": stages[:8]}
                res.update(compare_written(name, dst, cache, len(X), rows_in))
                out[f"{name}/{knn}"] = res
                print(f"spark {name} knn={knn}: {res}", flush=True)
    finally:
        spark.stop()
    return out


class StageLog(logging.Handler):
    """Collects distsmote's driver-side stages ("<stage>: done in 1.2s") while a run lasts."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.done: list[tuple[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = STAGE_DONE.match(record.getMessage())
        if m:
            self.done.append((m.group(1), float(m.group(2))))

    def __enter__(self) -> "StageLog":
        log = logging.getLogger("distsmote")
        self._level = log.level
        log.setLevel(logging.INFO)
        log.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        log = logging.getLogger("distsmote")
        log.removeHandler(self)
        log.setLevel(self._level)

    def summary(self) -> dict:
        return {name: round(sec, 1) for name, sec in self.done}


def task_seconds(records: list[dict]) -> dict:
    """Worker seconds per task kind from a Dask task stream: compute time by the task's
    name prefix (the kernel, e.g. ``search_buckets``), and the time spent receiving
    inputs from other workers (``transfer``) and reading spilled data (``disk-read``)."""
    from dask.utils import key_split

    out: dict[str, float] = {}
    for r in records:
        for ss in r.get("startstops", ()):
            action = ss["action"]
            name = key_split(r["key"]) if action == "compute" else action
            out[name] = out.get(name, 0.0) + ss["stop"] - ss["start"]
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def spark_stages(spark) -> list[dict]:
    """Spark's completed stages from the application's status API (on loopback): wall
    seconds, executor run seconds and name, longest first."""
    import urllib.request

    url = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{url}/api/v1/applications/{app}/stages?status=complete") as r:
        stages = json.load(r)
    out = []
    for st in stages:
        t0, t1 = st.get("submissionTime"), st.get("completionTime")
        wall = (pd.Timestamp(t1) - pd.Timestamp(t0)).total_seconds() if t0 and t1 else 0.0
        out.append({"stage": st["stageId"], "wall_s": round(wall, 1), "tasks": st["numTasks"],
                    "run_s": round(st.get("executorRunTime", 0) / 1000, 1),
                    "name": st.get("description") or st["name"]})
    return sorted(out, key=lambda s: -s["wall_s"])


def run_dask(rows: int, tmp: Path, modes, cache: Path, files: int = 16) -> dict:
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster, get_task_stream

    from distsmote.engines.dask_session import EMBEDDED_WORKER_CONFIG

    src = tmp / "dask_in"
    X, y = make_data(rows)
    _write_parquet(X, y, src, files=files)
    del X, y
    out = {}
    # The workers get the CLI's embedded-cluster settings (glibc's adaptive allocator).
    with dask.config.set(EMBEDDED_WORKER_CONFIG), \
            LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="8GiB",
                         dashboard_address=None) as cluster, Client(cluster) as client:
        for knn in modes:
            for name, sampler in _cleaners(knn).items():
                dst = tmp / f"dask_out_{name}_{knn}"
                shutil.rmtree(dst, ignore_errors=True)
                with PeakRss() as peak, StageLog() as log, get_task_stream(client) as ts:
                    t0 = time.perf_counter()
                    frame = dd.read_parquet(str(src))
                    sampler.resample(frame, label="label").to_parquet(str(dst), write_index=False)
                    seconds = time.perf_counter() - t0
                rows_out = len(dd.read_parquet(str(dst)))
                cleaner = sampler.tomek_ if name == "SMOTETomek" else sampler.enn_
                info = cleaner.join_info_
                res = {"seconds": seconds, "peak_rss_gib": round(peak.peak / 2**30, 2),
                       "rows_in": sum(cleaner.class_counts_.values()), "rows_out": rows_out,
                       "mode": info.mode, "cells": info.n_cells,
                       "probes_per_row": round(info.probes_per_query, 2),
                       "driver_stages_s": log.summary(), "worker_task_s": task_seconds(ts.data)}
                if (cache / f"imblearn_{name}_{rows}.npy").exists():  # small runs: the oracle's removals
                    res.update(compare_written(name, dst, cache, rows, res["rows_in"]))
                out[f"{name}/{knn}"] = res
                print(f"dask {name} knn={knn} rows={rows}: {res}", flush=True)
    return out


def main(argv=None) -> None:
    global SAMPLERS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--steps", nargs="+", default=["imblearn", "local"],
                    choices=["imblearn", "local", "spark", "dask"])
    ap.add_argument("--modes", nargs="+", default=["ivf", "exact"], help="knn modes for distsmote")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "distsmote-bench-cleaning")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--samplers", nargs="+", default=["SMOTETomek", "SMOTEENN"],
                    choices=["SMOTETomek", "SMOTEENN"])
    args = ap.parse_args(argv)
    SAMPLERS = tuple(args.samplers)
    args.cache.mkdir(parents=True, exist_ok=True)
    results: dict = {"rows": args.rows}
    X = y = None
    if {"imblearn", "local", "spark"} & set(args.steps):
        X, y = make_data(args.rows)
    if "imblearn" in args.steps:
        results["imblearn"] = run_imblearn(X, y, args.cache)
    elif (args.cache / f"imblearn_{args.rows}.json").exists():
        results["imblearn"] = json.loads((args.cache / f"imblearn_{args.rows}.json").read_text())
    with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
        if "local" in args.steps:
            results["local"] = run_local(X, y, args.cache, args.modes)
        if "spark" in args.steps:
            results["spark"] = run_spark(X, y, args.cache, args.modes, Path(tmp))
        if "dask" in args.steps:
            results["dask"] = run_dask(args.rows, Path(tmp), args.modes, args.cache)
    imb = results.get("imblearn", {})
    for engine in ("local", "spark", "dask"):
        for key, res in results.get(engine, {}).items():
            name = key.split("/")[0]
            if name in imb:
                res["speedup_vs_imblearn"] = round(imb[name]["seconds"] / res["seconds"], 1)
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
