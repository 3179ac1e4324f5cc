"""SMOTE above the driver budget: generation from the kNN join vs the broadcast path.

The data: N rows × 16 float32 features in 4 classes (50 %, 25 %, 15 % and 10 % of the
rows), resampled with ``sampling_strategy="not majority"`` (every class up to the
largest), Parquet → Parquet with distsmote's CLI, on the same data in the same session:

* the broadcast path (the default ``--driver-budget 2GiB``): the three smaller classes
  are collected to the driver and their indexes broadcast;
* the join path (``--driver-budget 256MiB`` by default): no class row reaches the
  driver; the neighbours come from the distributed kNN join;
* the I/O floor: pyarrow reads the input and writes an output of the same size.

Reports wall time, CPU time and peak memory of each run's process tree and of its
driver process alone (the embedded cluster's workers are its children), the join
path's wall time as a ratio of the broadcast path's, and each run's per-stage breakdown.

    python benchmarks/bench_driver_budget.py --rows 20000000 --repeat 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import Measurement, measure, write_clustered  # noqa: E402
from bench_smote import IO_FLOOR, stages  # noqa: E402

FEATURES = 16
ROWS_PER_FILE = 1_000_000
SHARES = (0.50, 0.25, 0.15, 0.10)


def write_data(path: Path, rows: int, seed: int = 0) -> None:
    """Clustered float32 features; class ``c`` (0-3) on ``SHARES[c]`` of the rows."""
    write_clustered(path, rows, lambda rng, n: rng.choice(len(SHARES), size=n, p=SHARES), 0.5,
                    FEATURES, ROWS_PER_FILE, seed)


def _check(m: Measurement, what: str) -> Measurement:
    if m.returncode != 0:
        raise SystemExit(f"{what} failed:\n{m.stderr[-4000:]}")
    return m


def run(rows: int, workdir: Path, engine: str, budget: str) -> dict:
    data = workdir / f"budget-{rows}"
    write_data(data, rows)
    counts = np.zeros(len(SHARES), np.int64)
    for f in sorted(data.glob("*.parquet")):
        counts += np.bincount(pq.read_table(f, columns=["label"]).column(0).to_numpy(), minlength=len(SHARES))
    out_rows = int(counts.max()) * len(SHARES)
    out = workdir / "out"
    result: dict = {"rows": rows, "counts": counts.tolist(), "output_rows": out_rows}
    shutil.rmtree(out, ignore_errors=True)
    result["io_floor"] = _check(measure([sys.executable, "-c", IO_FLOOR, str(data), str(out), str(out_rows)]), "I/O floor")
    exe = str(Path(sys.executable).with_name("distsmote"))
    common = ["resample", "--engine", engine, "--input", str(data), "--output", str(out), "--label", "label",
              "--seed", "0", "--sampling-strategy", "not majority"]
    for name, extra in (("broadcast", []), ("join", ["--driver-budget", budget])):
        shutil.rmtree(out, ignore_errors=True)
        result[name] = _check(measure([exe, *common, *extra]), f"distsmote ({name})")
    shutil.rmtree(out, ignore_errors=True)
    return result


def report(res: dict, engine: str, budget: str) -> str:
    gib = 2**30
    lines = [f"{res['rows']:,} rows in classes {res['counts']} -> {res['output_rows']:,} rows ({engine}; "
             f"join path: --driver-budget {budget})"]
    base = res["broadcast"].seconds
    for name in ("io_floor", "broadcast", "join"):
        m = res[name]
        lines.append(f"  {name:10s} {m.seconds:8.1f}s  cpu {m.cpu_seconds:8.1f}s  peak {m.peak_rss / gib:5.2f} GiB"
                     f" (driver {m.root_peak_rss / gib:5.2f} GiB)  {m.seconds / base:5.2f}x broadcast")
    lines.append(f"  floor stages: {res['io_floor'].stdout.strip()}")
    for name in ("broadcast", "join"):
        lines.append(f"  {name} stages: {stages(res[name])}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[2_000_000])
    ap.add_argument("--engine", choices=["dask", "spark", "local"], default="dask")
    ap.add_argument("--budget", default="256MiB", help="--driver-budget of the join path")
    ap.add_argument("--repeat", type=int, default=1, help="runs per size (the machine is noisy)")
    ap.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / "data")
    args = ap.parse_args()
    for rows in args.rows:
        for _ in range(args.repeat):
            print(report(run(rows, args.workdir, args.engine, args.budget), args.engine, args.budget), flush=True)


if __name__ == "__main__":
    main()
