"""Measure wall time, CPU time and peak memory of a whole process tree."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


#: A finished stage in distsmote's log: ``"<stage>: done in 1.2s"``.
STAGE_DONE = re.compile(r"([^\n]+?): done in ([0-9.]+)s")


@dataclass
class Measurement:
    """Wall seconds, CPU seconds and peak resident memory (bytes) of a process tree, and
    the peak of its root process alone (the driver, without its cluster's workers)."""

    seconds: float
    cpu_seconds: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str
    root_peak_rss: int = 0


class TreeMonitor:
    """Samples a process and all its descendants (e.g. Dask workers) in a thread.

    Attributes
    ----------
    peak : int
        Largest total RSS seen, in bytes.
    root_peak : int
        Largest RSS of the root process alone.
    cpu : dict
        Latest user+system CPU seconds seen per pid (a process that ends between two
        samples is counted up to its last sample).
    """

    def __init__(self, proc: psutil.Process | None = None, interval: float = 0.1) -> None:
        self.proc = proc or psutil.Process()
        self.interval = interval
        self.peak = 0
        self.root_peak = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        """Take one sample now."""
        total = 0
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return
        for p in procs:
            try:
                with p.oneshot():
                    rss = p.memory_info().rss
                    total += rss
                    if p is self.proc:
                        self.root_peak = max(self.root_peak, rss)
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def __enter__(self) -> "TreeMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(cmd: list[str], env: dict | None = None, interval: float = 0.1) -> Measurement:
    """Run ``cmd`` and sample the RSS and CPU of it and its descendants."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with TreeMonitor(psutil.Process(proc.pid), interval) as monitor:
        out, err = proc.communicate()
        seconds = time.perf_counter() - t0
    return Measurement(seconds, sum(monitor.cpu.values()), monitor.peak, proc.returncode, out, err,
                       monitor.root_peak)


def dataset_ready(path: Path) -> bool:
    """True if ``path`` holds a complete benchmark dataset (its ``_DONE`` marker); else
    empty it for writing (the writer touches ``_DONE`` last)."""
    if (path / "_DONE").exists():
        return True
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return False


def write_clustered(path: Path, rows: int, labels, shift: float, features: int = 16,
                    rows_per_file: int = 1_000_000, seed: int = 0) -> None:
    """A cached benchmark dataset: float32 features around 32 random centres, an int64
    ``label`` from ``labels(rng, n)``, each row moved by ``shift × label``; 1 M rows per
    Parquet file, ``_DONE`` written last."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if dataset_ready(path):
        return
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(32, features)).astype(np.float32)
    for i, start in enumerate(range(0, rows, rows_per_file)):
        n = min(rows_per_file, rows - start)
        x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, features), dtype=np.float32)
        y = labels(rng, n).astype(np.int64)
        x += (y[:, None] * shift).astype(np.float32)
        cols = {f"f{j:02d}": x[:, j] for j in range(features)}
        cols["label"] = y
        pq.write_table(pa.table(cols), path / f"part-{i:05d}.parquet")
    (path / "_DONE").touch()
