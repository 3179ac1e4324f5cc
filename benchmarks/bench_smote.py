"""SMOTE benchmark: Parquet → Parquet on N rows × 16 float32 features, 2 % minority → 1:1.

Runs, in the same session and on the same data:

* the I/O floor: pyarrow (all cores) reads the input and writes an output of the size
  distsmote writes, with the same Parquet options;
* imbalanced-learn in one process: pandas read → SMOTE → write (skipped above
  ``--imblearn-max-rows``, where it does not fit in memory);
* distsmote's CLI with the embedded local Dask cluster (and Spark with ``--spark``).

Reports wall time, CPU time and peak memory of each run's whole process tree, and the
wall-time and memory ratios (CPU seconds help read a run on a busy machine).

    python benchmarks/bench_smote.py --rows 5000000 20000000
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
from _measure import Measurement, measure  # noqa: E402

FEATURES = 16
ROWS_PER_FILE = 1_000_000


def write_data(path: Path, rows: int, minority: float, seed: int = 0) -> None:
    """Clustered float32 features, ``label`` 1 on a ``minority`` share; 1 M rows per file."""
    if (path / "_DONE").exists():
        return
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(32, FEATURES)).astype(np.float32)
    for i, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        n = min(ROWS_PER_FILE, rows - start)
        x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, FEATURES), dtype=np.float32)
        y = (rng.random(n) < minority).astype(np.int64)
        x[y == 1] += 1.0
        cols = {f"f{j:02d}": x[:, j] for j in range(FEATURES)}
        cols["label"] = y
        pq.write_table(pa.table(cols), path / f"part-{i:05d}.parquet")
    (path / "_DONE").touch()


IO_FLOOR = textwrap.dedent(
    """
    import sys, pyarrow as pa, pyarrow.dataset as ds, pyarrow.parquet as pq
    src, dst, out_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    table = ds.dataset(src, format="parquet").to_table(use_threads=True)
    reps = -(-out_rows // table.num_rows)
    out = pa.concat_tables([table] * reps).slice(0, out_rows)
    # Same Parquet options as distsmote's writer (no dictionary for float columns).
    options = ds.ParquetFileFormat().make_write_options(
        use_dictionary=[f.name for f in out.schema if not pa.types.is_floating(f.type)])
    ds.write_dataset(out, dst, format="parquet", file_options=options, max_rows_per_file=1_000_000,
                     max_rows_per_group=1_000_000, existing_data_behavior="overwrite_or_ignore", use_threads=True)
    """
)

IMBLEARN = textwrap.dedent(
    """
    import sys, time, pandas as pd
    from imblearn.over_sampling import SMOTE
    src, dst = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    df = pd.read_parquet(src)
    X, y = df.drop(columns="label"), df["label"]
    t1 = time.perf_counter()
    Xr, yr = SMOTE(random_state=0).fit_resample(X, y)
    t2 = time.perf_counter()
    Xr["label"] = yr
    Xr.to_parquet(dst, index=False)
    print(f"read {t1 - t0:.1f}s smote {t2 - t1:.1f}s write {time.perf_counter() - t2:.1f}s")
    """
)


def _check(m: Measurement, what: str) -> Measurement:
    if m.returncode != 0:
        raise SystemExit(f"{what} failed:\n{m.stderr[-4000:]}")
    return m


def run(rows: int, workdir: Path, imblearn_max: int, spark: bool) -> dict:
    data = workdir / f"smote-{rows}"
    write_data(data, rows, 0.02)
    n_major = sum(
        pq.read_table(f, columns=["label"]).column(0).to_numpy().size
        - int(pq.read_table(f, columns=["label"]).column(0).to_numpy().sum())
        for f in sorted(data.glob("*.parquet"))
    )
    out_rows = 2 * n_major
    result: dict = {"rows": rows, "output_rows": out_rows}
    out = workdir / "out"

    shutil.rmtree(out, ignore_errors=True)
    floor = _check(measure([sys.executable, "-c", IO_FLOOR, str(data), str(out), str(out_rows)]), "I/O floor")
    result["io_floor"] = floor

    if rows <= imblearn_max:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        imb = _check(measure([sys.executable, "-c", IMBLEARN, str(data), str(out / "part.parquet")]), "imbalanced-learn")
        result["imblearn"] = imb

    exe = str(Path(sys.executable).with_name("distsmote"))
    shutil.rmtree(out, ignore_errors=True)
    ours = _check(measure([exe, "resample", "--input", str(data), "--output", str(out), "--label", "label", "--seed", "0", "--quiet"]), "distsmote (dask)")
    result["distsmote_dask"] = ours

    if spark:
        shutil.rmtree(out, ignore_errors=True)
        sp = _check(measure([exe, "resample", "--engine", "spark", "--input", str(data), "--output", str(out), "--label", "label", "--seed", "0", "--quiet"]), "distsmote (spark)")
        result["distsmote_spark"] = sp
    shutil.rmtree(out, ignore_errors=True)
    return result


def report(res: dict) -> str:
    gb = 1024**3
    lines = [f"## {res['rows']:,} rows x {FEATURES} float32, 2 % minority -> {res['output_rows']:,} rows"]
    lines.append(f"{'run':<18}{'wall s':>9}{'cpu s':>8}{'peak GiB':>10}{'vs imblearn':>13}{'vs I/O floor':>14}{'mem vs imblearn':>17}")
    imb = res.get("imblearn")
    floor = res["io_floor"]
    for key in ("io_floor", "imblearn", "distsmote_dask", "distsmote_spark"):
        m = res.get(key)
        if m is None:
            continue
        r_imb = f"{m.seconds / imb.seconds:.2f}x" if imb else "n/a"
        r_mem = f"{m.peak_rss / imb.peak_rss:.2f}x" if imb else "n/a"
        lines.append(f"{key:<18}{m.seconds:>9.1f}{m.cpu_seconds:>8.1f}{m.peak_rss / gb:>10.2f}{r_imb:>13}{m.seconds / floor.seconds:>13.2f}x{r_mem:>17}")
    if imb:
        lines.append(f"imbalanced-learn phases: {imb.stdout.strip()}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[5_000_000, 20_000_000])
    p.add_argument("--workdir", default=str(Path(__file__).resolve().parent / "data"))
    p.add_argument("--imblearn-max-rows", type=int, default=20_000_000,
                   help="skip imbalanced-learn above this size (60 M rows need ~30 GB)")
    p.add_argument("--spark", action="store_true", help="also run the Spark engine (local[*])")
    p.add_argument("--json", help="also write raw figures to this file")
    args = p.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}")
    raw = []
    for rows in args.rows:
        res = run(rows, workdir, args.imblearn_max_rows, args.spark)
        print(report(res), flush=True)
        raw.append({k: (v.__dict__ | {"stdout": "", "stderr": ""}) if isinstance(v, Measurement) else v for k, v in res.items()})
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
