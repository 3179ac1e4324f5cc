"""ADASYN benchmark: against imbalanced-learn in-process, and against distsmote's SMOTE at scale.

``--small N`` (default 200 000): ``make_classification`` rows × 16 float32 features,
2 % minority (the data of ``bench_cleaning.py``).  imbalanced-learn's ADASYN and
distsmote's ADASYN (in-process engine, approximate default), each ``fit_resample`` in a
fresh process, run ``--repeat`` times: wall time of the fit, peak memory of the process,
and distsmote's per-stage log (kNN join, planning, generation).  Target: ≤ 0.5×.

``--large N`` (e.g. 5 000 000): the Parquet data of ``bench_smote.py``; distsmote's CLI on
the embedded Dask cluster with ``--sampler smote`` and ``--sampler adasyn``, plus the I/O
floor.  Target: ADASYN ≤ 2× SMOTE.

    python benchmarks/bench_adasyn.py --small 200000 --repeat 2
    python benchmarks/bench_adasyn.py --small 0 --large 5000000 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import Measurement, measure  # noqa: E402

FIT = textwrap.dedent(
    """
    import logging, sys, time
    sys.path.insert(0, sys.argv[3])
    from bench_cleaning import make_data
    X, y = make_data(int(sys.argv[2]))
    if sys.argv[1] == "imblearn":
        from imblearn.over_sampling import ADASYN
    else:
        from distsmote import ADASYN
        logging.basicConfig(level=logging.INFO, format="    %(relativeCreated)7.0f ms  %(message)s")
    t0 = time.perf_counter()
    Xr, yr = ADASYN(random_state=0).fit_resample(X, y)
    print(f"fit {time.perf_counter() - t0:.2f}s rows {len(yr)}")
    """
)


def _check(m: Measurement, what: str) -> Measurement:
    if m.returncode != 0:
        raise SystemExit(f"{what} failed:\n{m.stderr[-4000:]}")
    return m


def _fit_seconds(m: Measurement) -> float:
    return float(m.stdout.split("fit ")[1].split("s")[0])


def _stages(m: Measurement) -> str:
    keep = ("kNN join", "neighbours over", "plan:", "class ", "wrote", "generation", "planned")
    return "\n".join(line for line in m.stderr.splitlines() if any(k in line for k in keep))


def small(rows: int, repeat: int) -> None:
    here = str(Path(__file__).resolve().parent)
    gb = 1024**3
    print(f"## ADASYN fit_resample, {rows:,} rows x 16 float32, 2 % minority (in-process)")
    for i in range(repeat):
        imb = _check(measure([sys.executable, "-c", FIT, "imblearn", str(rows), here]), "imbalanced-learn")
        ours = _check(measure([sys.executable, "-c", FIT, "distsmote", str(rows), here]), "distsmote")
        ti, to = _fit_seconds(imb), _fit_seconds(ours)
        print(f"run {i + 1}: imbalanced-learn {ti:.2f}s (peak {imb.peak_rss / gb:.2f} GiB), "
              f"distsmote {to:.2f}s (peak {ours.peak_rss / gb:.2f} GiB): {to / ti:.2f}x")
        print("  distsmote stages:\n" + _stages(ours))


def large(rows: int, repeat: int, workdir: Path) -> None:
    from bench_smote import IO_FLOOR, write_data

    data = workdir / f"smote-{rows}"
    write_data(data, rows, 0.02)
    out = workdir / "out"
    exe = str(Path(sys.executable).with_name("distsmote"))
    gb = 1024**3
    print(f"## Parquet -> Parquet, {rows:,} rows x 16 float32, 2 % minority -> 1:1, embedded Dask")
    for i in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        floor = _check(measure([sys.executable, "-c", IO_FLOOR, str(data), str(out), str(int(rows * 1.96))]), "I/O floor")
        res = {}
        for sampler in ("smote", "adasyn"):
            shutil.rmtree(out, ignore_errors=True)
            res[sampler] = _check(measure([exe, "resample", "--input", str(data), "--output", str(out), "--label", "label",
                                           "--seed", "0", "--sampler", sampler]), f"distsmote {sampler}")
        s, a = res["smote"], res["adasyn"]
        print(f"run {i + 1}: I/O floor {floor.seconds:.1f}s; SMOTE {s.seconds:.1f}s ({s.cpu_seconds:.0f} CPU-s, "
              f"peak {s.peak_rss / gb:.2f} GiB); ADASYN {a.seconds:.1f}s ({a.cpu_seconds:.0f} CPU-s, peak "
              f"{a.peak_rss / gb:.2f} GiB): ADASYN/SMOTE {a.seconds / s.seconds:.2f}x, "
              f"ADASYN/floor {a.seconds / floor.seconds:.2f}x")
        print("  ADASYN stages:\n" + _stages(a))
    shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", type=int, default=200_000, help="rows of the in-process comparison (0: skip)")
    p.add_argument("--large", type=int, default=0, help="rows of the Dask comparison with SMOTE (0: skip)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each comparison (machines are noisy)")
    p.add_argument("--workdir", default=str(Path(__file__).resolve().parent / "data"))
    args = p.parse_args()
    print(f"cores: {os.cpu_count()}")
    if args.small:
        small(args.small, args.repeat)
    if args.large:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        large(args.large, args.repeat, Path(args.workdir))


if __name__ == "__main__":
    main()
