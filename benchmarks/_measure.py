"""Run a command in a subprocess and measure wall time and peak memory of its process tree."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass

import psutil


@dataclass
class Measurement:
    """Wall seconds, CPU seconds and peak resident memory (bytes) of a process tree."""

    seconds: float
    cpu_seconds: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str


def _tree(proc: psutil.Process, cpu: dict[int, float]) -> int:
    """RSS of the tree now; records each process's latest CPU time into ``cpu``."""
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            with p.oneshot():
                total += p.memory_info().rss
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], env: dict | None = None, interval: float = 0.1) -> Measurement:
    """Run ``cmd`` and poll the RSS of it and all its descendants every ``interval`` s."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ps = psutil.Process(proc.pid)
    peak = 0
    cpu: dict[int, float] = {}
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree(ps, cpu))
            time.sleep(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    done.set()
    thread.join()
    # CPU of processes that ended between polls is partly missed; children's CPU is
    # sampled up to their last poll (good to within one interval per process).
    return Measurement(seconds, sum(cpu.values()), peak, proc.returncode, out, err)
