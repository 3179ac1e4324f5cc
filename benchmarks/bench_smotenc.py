"""SMOTENC benchmark: Parquet → Parquet on a lake-like table, 2 % minority → 1:1.

The table has 10 float32 numeric features, 5 string categorical features (3, 2, 5, 12
and 1,000 categories), an int64 id column and a date partition column, written as
1 M-row Parquet files.  For each size, in one session and on the same data:

* imbalanced-learn's SMOTENC in one process: pandas read → fit_resample → write, under
  a memory cap (``--imblearn-cap-gib``, default 12 GiB of address space) so that its
  dense ``n_new × k × n_categories`` tensor fails with ``MemoryError`` instead of
  taking the machine down (skipped above ``--imblearn-max-rows``).  imbalanced-learn
  has no passthrough columns: it gets the features and the label only;
* distsmote's CLI, embedded local Dask cluster, with ``--id-column rid
  --partition-columns day`` (``--local``: the in-process pandas engine too;
  ``--spark``: the Spark engine too).

Reports wall time, CPU time and peak memory of each run's whole process tree, and the
ratios to imbalanced-learn.

    python benchmarks/bench_smotenc.py --rows 1000000 2000000 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import dataset_ready, measure  # noqa: E402

NUMERIC = 10
CARDINALITIES = (3, 2, 5, 12, 1000)
ROWS_PER_FILE = 1_000_000
CATEGORICAL = [f"c{j}" for j in range(len(CARDINALITIES))]


def write_data(path: Path, rows: int, minority: float, seed: int = 0) -> None:
    """The lake-like table described above; 1 M rows per file."""
    if dataset_ready(path):
        return
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(16, NUMERIC)).astype(np.float32)
    dictionaries = [pa.array([f"v{j}_{i:04d}" for i in range(c)]) for j, c in enumerate(CARDINALITIES)]
    for f, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        n = min(ROWS_PER_FILE, rows - start)
        y = (rng.random(n) < minority).astype(np.int64)
        x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, NUMERIC), dtype=np.float32)
        x[y == 1] += 0.8
        cols = {f"x{j}": x[:, j] for j in range(NUMERIC)}
        for j, c in enumerate(CARDINALITIES):
            # Categories depend a little on the class, as real ones do.
            codes = np.where(rng.random(n) < 0.3 * y, 0, rng.integers(0, c, n)).astype(np.int32)
            cols[CATEGORICAL[j]] = pa.DictionaryArray.from_arrays(codes, dictionaries[j]).cast(pa.string())
        cols["rid"] = np.arange(start, start + n, dtype=np.int64)
        cols["day"] = pa.array(np.datetime64("2025-01-01") + rng.integers(0, 30, n).astype("timedelta64[D]")).cast(pa.date32())
        cols["label"] = y
        pq.write_table(pa.table(cols), path / f"part-{f:05d}.parquet")
    (path / "_DONE").touch()


IMBLEARN = textwrap.dedent(
    """
    import resource, sys, time
    cap = int(float(sys.argv[3]) * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import pandas as pd
    from imblearn.over_sampling import SMOTENC
    src, dst = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    df = pd.read_parquet(src)
    X, y = df.drop(columns=["label", "rid", "day"]), df["label"]
    cats = [c for c in X.columns if c.startswith("c")]
    t1 = time.perf_counter()
    try:
        Xr, yr = SMOTENC(categorical_features=cats, random_state=0).fit_resample(X, y)
    except MemoryError as exc:
        print(f"MemoryError after {time.perf_counter() - t1:.1f}s: {exc}")
        sys.exit(3)
    t2 = time.perf_counter()
    Xr["label"] = yr
    Xr.to_parquet(dst, index=False)
    print(f"read {t1 - t0:.1f}s smotenc {t2 - t1:.1f}s write {time.perf_counter() - t2:.1f}s")
    """
)


def run(rows: int, workdir: Path, imblearn_max: int, cap_gib: float, spark: bool, local: bool, repeat: int) -> dict:
    data = workdir / f"smotenc-{rows}"
    write_data(data, rows, 0.02)
    labels = np.concatenate([pq.read_table(f, columns=["label"]).column(0).to_numpy() for f in sorted(data.glob("*.parquet"))])
    out_rows = 2 * int((labels == 0).sum())
    result: dict = {"rows": rows, "output_rows": out_rows, "runs": {}}
    out = workdir / "out"
    exe = str(Path(sys.executable).with_name("distsmote"))
    runs = []
    if rows <= imblearn_max:
        runs.append(("imblearn", lambda: [sys.executable, "-c", IMBLEARN, str(data), str(out / "part.parquet"), str(cap_gib)]))
    flags = ["--sampler", "smotenc", "--id-column", "rid", "--partition-columns", "day",
             "--input", str(data), "--output", str(out), "--label", "label", "--seed", "0", "--quiet"]
    runs.append(("distsmote_dask", lambda: [exe, "resample", *flags]))
    if local:
        runs.append(("distsmote_local", lambda: [exe, "resample", "--engine", "local", *flags]))
    if spark:
        runs.append(("distsmote_spark", lambda: [exe, "resample", "--engine", "spark", *flags]))
    for _ in range(repeat):
        for name, cmd in runs:
            shutil.rmtree(out, ignore_errors=True)
            if name == "imblearn":
                out.mkdir()
            m = measure(cmd())
            if m.returncode not in (0, 3):
                raise SystemExit(f"{name} failed:\n{m.stderr[-4000:]}")
            result["runs"].setdefault(name, []).append(m)
    shutil.rmtree(out, ignore_errors=True)
    return result


def report(res: dict) -> str:
    gb = 1024**3
    lines = [f"## {res['rows']:,} rows: {NUMERIC} numeric + 5 categorical {CARDINALITIES} + id + date, "
             f"2 % minority -> {res['output_rows']:,} rows"]
    lines.append(f"{'run':<17}{'wall s':>9}{'cpu s':>8}{'peak GiB':>10}{'wall vs imblearn':>18}{'mem vs imblearn':>17}  note")
    imb = [m for m in res["runs"].get("imblearn", []) if m.returncode == 0]
    for name, ms in res["runs"].items():
        for m in ms:
            ok = m.returncode == 0
            r_t = f"{m.seconds / imb[0].seconds:.2f}x" if imb and ok else "n/a"
            r_m = f"{m.peak_rss / imb[0].peak_rss:.2f}x" if imb and ok else "n/a"
            note = m.stdout.strip().splitlines()[-1] if m.stdout.strip() else ""
            lines.append(f"{name:<17}{m.seconds:>9.1f}{m.cpu_seconds:>8.1f}{m.peak_rss / gb:>10.2f}{r_t:>18}{r_m:>17}  {note}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 2_000_000])
    p.add_argument("--workdir", default=str(Path(__file__).resolve().parent / "data"))
    p.add_argument("--imblearn-max-rows", type=int, default=2_000_000)
    p.add_argument("--imblearn-cap-gib", type=float, default=12.0,
                   help="address-space cap of the imbalanced-learn process (MemoryError beyond)")
    p.add_argument("--repeat", type=int, default=1, help="run each measurement this many times")
    p.add_argument("--spark", action="store_true", help="also run the Spark engine (local[*])")
    p.add_argument("--local", action="store_true", help="also run the in-process pandas engine")
    p.add_argument("--json", help="also write raw figures to this file")
    args = p.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()} (shared machine: other jobs may run at the same time)")
    raw = []
    for rows in args.rows:
        res = run(rows, workdir, args.imblearn_max_rows, args.imblearn_cap_gib, args.spark, args.local, args.repeat)
        print(report(res), flush=True)
        raw.append({"rows": res["rows"], "output_rows": res["output_rows"],
                    "runs": {k: [m.__dict__ | {"stderr": ""} for m in v] for k, v in res["runs"].items()}})
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
