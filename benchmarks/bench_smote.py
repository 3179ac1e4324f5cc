"""SMOTE benchmark: Parquet → Parquet on N rows × 16 float32 features, 2 % minority → 1:1.

Runs, in the same session and on the same data:

* the I/O floor: pyarrow (all cores) reads the input and writes an output of the size
  distsmote writes, with the same Parquet options;
* imbalanced-learn in one process: pandas read → SMOTE → write (skipped above
  ``--imblearn-max-rows``, where it does not fit in memory);
* distsmote's CLI with the embedded local Dask cluster (and Spark with ``--spark``; the
  Spark driver's class archive is written first, untimed, if this machine has none).

Reports wall time, CPU time and peak memory of each run's whole process tree, and the
wall-time and memory ratios (CPU seconds help read a run on a busy machine).

    python benchmarks/bench_smote.py --rows 5000000 20000000
    python benchmarks/bench_smote.py --rows 5000000 20000000 60000000 --spark --imblearn-max-rows 20000000 \\
        --plot docs/scaling.png

Each distsmote run also prints its per-stage breakdown (from its log), the floor its read
and write times and imbalanced-learn its read, SMOTE and write times, so a slow run says
where the time went.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import STAGE_DONE, Measurement, measure, write_clustered  # noqa: E402

FEATURES = 16
ROWS_PER_FILE = 1_000_000


def write_data(path: Path, rows: int, minority: float, seed: int = 0) -> None:
    """Clustered float32 features, ``label`` 1 on a ``minority`` share; 1 M rows per file."""
    write_clustered(path, rows, lambda rng, n: rng.random(n) < minority, 1.0, FEATURES, ROWS_PER_FILE, seed)


IO_FLOOR = textwrap.dedent(
    """
    import sys, time, pyarrow as pa, pyarrow.dataset as ds, pyarrow.parquet as pq
    src, dst, out_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0 = time.perf_counter()
    table = ds.dataset(src, format="parquet").to_table(use_threads=True)
    t1 = time.perf_counter()
    reps = -(-out_rows // table.num_rows)
    out = pa.concat_tables([table] * reps).slice(0, out_rows)
    # Same Parquet options as distsmote's writer (no dictionary for float columns).
    options = ds.ParquetFileFormat().make_write_options(
        use_dictionary=[f.name for f in out.schema if not pa.types.is_floating(f.type)])
    ds.write_dataset(out, dst, format="parquet", file_options=options, max_rows_per_file=1_000_000,
                     max_rows_per_group=1_000_000, existing_data_behavior="overwrite_or_ignore", use_threads=True)
    print(f"read {t1 - t0:.1f}s write {time.perf_counter() - t1:.1f}s")
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


def stages(m: Measurement) -> str:
    """distsmote's per-stage breakdown from its log: each stage's own time, and the
    start-up (session, cluster, imports) as the wall time the job's own total leaves."""
    done = re.findall("distsmote: " + STAGE_DONE.pattern, m.stderr)
    total = re.search(r"wrote [0-9,]+ rows in ([0-9.]+)s", m.stdout + m.stderr)
    parts = [f"{name} {float(sec):.1f}s" for name, sec in done]
    if total:
        job = float(total.group(1))
        # "collecting rows" runs inside "planning: collect the classes to oversample".
        named = sum(float(sec) for name, sec in done if name != "collecting rows")
        parts.append(f"in the job outside these stages (the engine's start, reading the schema) {job - named:.1f}s")
        parts.append(f"start-up and shutdown {m.seconds - job:.1f}s")
    return "; ".join(parts)


WARM_SPARK = textwrap.dedent(
    """
    from distsmote.config import JobConfig
    from distsmote.engines.spark import SparkEngine
    with SparkEngine.open(JobConfig(engine="spark"), progress=False) as engine:
        engine.spark.range(0, 4, 1, 2).mapInArrow(lambda it: it, "id long").count()
    """
)


def warm_spark() -> None:
    """Open one Spark session untimed before the timed runs: on a machine without the
    Spark driver's class archive, it writes the archive (once; see the README's Spark
    section), so that the timed runs measure the steady state every later run gets."""
    print("opening a Spark session first (untimed; writes the driver's class archive if missing)", flush=True)
    subprocess.run([sys.executable, "-c", WARM_SPARK], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def run(rows: int, workdir: Path, imblearn_max: int, spark_max: int) -> dict:
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
    common = ["--input", str(data), "--output", str(out), "--label", "label", "--seed", "0"]
    shutil.rmtree(out, ignore_errors=True)
    result["distsmote_dask"] = _check(measure([exe, "resample", *common]), "distsmote (dask)")
    if rows <= spark_max:
        shutil.rmtree(out, ignore_errors=True)
        result["distsmote_spark"] = _check(measure([exe, "resample", "--engine", "spark", *common]), "distsmote (spark)")
    shutil.rmtree(out, ignore_errors=True)
    return result


RUNS = ("io_floor", "imblearn", "distsmote_dask", "distsmote_spark")


def report(res: dict) -> str:
    gb = 1024**3
    lines = [f"## {res['rows']:,} rows x {FEATURES} float32, 2 % minority -> {res['output_rows']:,} rows"]
    lines.append(f"{'run':<18}{'wall s':>9}{'cpu s':>8}{'peak GiB':>10}{'vs imblearn':>13}{'vs I/O floor':>14}"
                 f"{'mem vs imblearn':>17}{'vs Dask':>9}")
    imb = res.get("imblearn")
    floor = res["io_floor"]
    dask = res["distsmote_dask"]
    for key in RUNS:
        m = res.get(key)
        if m is None:
            continue
        r_imb = f"{m.seconds / imb.seconds:.2f}x" if imb else "n/a"
        r_mem = f"{m.peak_rss / imb.peak_rss:.2f}x" if imb else "n/a"
        lines.append(f"{key:<18}{m.seconds:>9.1f}{m.cpu_seconds:>8.1f}{m.peak_rss / gb:>10.2f}{r_imb:>13}"
                     f"{m.seconds / floor.seconds:>13.2f}x{r_mem:>17}{m.seconds / dask.seconds:>8.2f}x")
    lines.append(f"I/O floor phases: {floor.stdout.strip()}")
    if imb:
        lines.append(f"imbalanced-learn phases: {imb.stdout.strip()}")
    for key in ("distsmote_dask", "distsmote_spark"):
        if key in res:
            lines.append(f"{key} stages: {stages(res[key])}")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    """Wall time and peak memory against rows, one line per run kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"io_floor": "I/O floor (pyarrow)", "imblearn": "imbalanced-learn", "distsmote_dask": "distsmote, Dask",
              "distsmote_spark": "distsmote, Spark"}
    fig, (wall, mem) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key in RUNS:
        pts = [(r["rows"] / 1e6, r[key]) for r in results if key in r]
        if not pts:
            continue
        x = [p[0] for p in pts]
        wall.plot(x, [p[1].seconds for p in pts], marker="o", label=labels[key])
        mem.plot(x, [p[1].peak_rss / 1024**3 for p in pts], marker="o", label=labels[key])
    wall.set(xlabel="input rows (millions)", ylabel="wall time (s)", title="SMOTE, Parquet to Parquet: wall time")
    mem.set(xlabel="input rows (millions)", ylabel="peak memory, whole process tree (GiB)", title="Peak memory")
    for ax in (wall, mem):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    wall.legend()
    fig.suptitle(f"16 float32 features, 2 % minority to 1:1, {os.cpu_count()} cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[5_000_000, 20_000_000])
    p.add_argument("--workdir", default=str(Path(__file__).resolve().parent / "data"))
    p.add_argument("--imblearn-max-rows", type=int, default=20_000_000,
                   help="skip imbalanced-learn above this size (60 M rows need ~30 GB)")
    p.add_argument("--spark", action="store_true", help="also run the Spark engine (local[*])")
    p.add_argument("--spark-max-rows", type=int, default=20_000_000, help="with --spark, skip Spark above this size")
    p.add_argument("--plot", help="write a PNG of wall time and peak memory against rows here")
    p.add_argument("--json", help="also write raw figures to this file")
    args = p.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}")
    if args.spark:
        warm_spark()
    raw, results = [], []
    for rows in args.rows:
        res = run(rows, workdir, args.imblearn_max_rows, args.spark_max_rows if args.spark else 0)
        print(report(res), flush=True)
        results.append(res)
        raw.append({k: (v.__dict__ | {"stdout": "", "stderr": ""}) if isinstance(v, Measurement) else v for k, v in res.items()})
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=2))
    if args.plot:
        plot(results, Path(args.plot))


if __name__ == "__main__":
    main()
