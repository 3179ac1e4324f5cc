"""Time ``evaluate`` on a large churn-like table on the embedded Dask cluster.

The table is generated on the workers (``make_churn_dask``), so nothing is sent from
the client; the client's own peak memory is reported to show that no table reached it.

    python benchmarks/bench_evaluate.py --rows 5000000 --samplers none,smote --models lr,dt

Prints one line per figure: wall seconds, client peak RSS, the path that ran, and the
F1 / ROC-AUC of each sampler × model.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import psutil


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--partitions", type=int, default=40)
    p.add_argument("--samplers", default="none,smote")
    p.add_argument("--models", default="lr,dt")
    p.add_argument("--n-workers", type=int, default=2)
    p.add_argument("--report", default=None, help="also write the report here")
    args = p.parse_args()
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("distsmote").setLevel(logging.INFO)
    warnings.filterwarnings("ignore")

    from distsmote.config import JobConfig
    from distsmote.datasets import CHURN_LABEL, make_churn_dask
    from distsmote.evaluate import run_evaluation, write_report
    from distsmote.sessions import dask_client

    me = psutil.Process()
    peak = [me.memory_info().rss]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], me.memory_info().rss)

    threading.Thread(target=watch, daemon=True).start()
    config = JobConfig(engine="dask", dask={"n_workers": args.n_workers, "memory_limit": "8GiB"})
    with dask_client(config):
        frame = make_churn_dask(args.rows, args.partitions, seed=0)
        rss0 = me.memory_info().rss
        t0 = time.perf_counter()
        ev = run_evaluation(frame, CHURN_LABEL, args.samplers, args.models, seed=0)
        seconds = time.perf_counter() - t0
        if args.report:
            write_report(ev, args.report)
    done.set()
    print(f"rows {args.rows:,} on {args.n_workers} "
          f"Dask workers (cpus {os.cpu_count()}): evaluate {seconds:.0f} s; client RSS "
          f"{rss0 / 2**20:.0f} MiB at start, peak {peak[0] / 2**20:.0f} MiB")
    print(ev.path)
    m = ev.metrics[ev.metrics["metric"].isin(["f1", "recall", "roc_auc", "average_precision",
                                              "fit_seconds", "resample_seconds"])]
    print(m.pivot_table(index=["sampler", "model"], columns="metric", values="mean").round(3).to_string())
    print(ev.counts.to_string(index=False))


if __name__ == "__main__":
    main()
