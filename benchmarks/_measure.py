"""Run a command in a subprocess and measure wall time and peak memory of its process tree."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass

import psutil


@dataclass
class Measurement:
    """Wall seconds and peak resident memory (bytes) of a command's whole process tree."""

    seconds: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], env: dict | None = None, interval: float = 0.1) -> Measurement:
    """Run ``cmd`` and poll the RSS of it and all its descendants every ``interval`` s."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ps = psutil.Process(proc.pid)
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(ps))
            time.sleep(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    done.set()
    thread.join()
    return Measurement(seconds, peak, proc.returncode, out, err)
