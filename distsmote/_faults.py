"""Fault points: named places where a test can kill, stop or fail a run.

The suite proves the safety promises (a killed run leaves nothing that looks complete,
a retried task gives identical rows) by injecting faults into real runs: the CLI in a
subprocess, Spark executors and Dask workers.  Production code calls
:func:`fault_point` at a few named places; it does nothing unless a fault is armed.

A fault is armed by a spec ``"point=action[,point=action...]"`` found in the
``DISTSMOTE_FAULTS`` environment variable, or in the file named by
``DISTSMOTE_FAULTS_FILE`` (read at every call, so a test can arm and disarm faults in
long-lived worker processes by writing that file).  Actions:

``kill``
    SIGKILL the current process (a crash: no cleanup runs).
``term``
    SIGTERM the current process (what Airflow, Kubernetes and ``timeout`` send).
``raise``
    Raise :class:`InjectedFault`.
``fail-once``
    Raise :class:`InjectedFault` on a Spark task's first attempt; outside Spark, raise in
    the first process that reaches the point (a marker file beside the faults file, or
    in the temp directory, records that it fired).
``sleep:SECONDS``
    Sleep, so that a test can act while the run is at this point.

Points used by distsmote: ``plan`` (driver, before generation is planned),
``generate`` (each generation task), ``generate.emitted`` (Spark: after a generation
task has handed its rows on, i.e. mid-write), ``join.search`` (each kNN-join search
task), ``shuffle`` (Dask: the sending side of each shuffle), ``write`` (each Dask/local
part-file write), ``commit.<step>`` (each step of the output commit, see :mod:`distsmote.commit`), and
``delta.commit`` / ``delta.committed`` (just before and after a Delta transaction, see
:mod:`distsmote.delta`).
"""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile
import time

ENV = "DISTSMOTE_FAULTS"
FILE_ENV = "DISTSMOTE_FAULTS_FILE"


class InjectedFault(RuntimeError):
    """A failure injected by a test through a fault point."""


def _spec() -> str:
    spec = os.environ.get(ENV, "")
    path = os.environ.get(FILE_ENV)
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                spec = ",".join(s for s in (spec, fh.read().strip()) if s)
        except OSError:
            pass
    return spec


def _spark_attempt() -> int | None:
    try:
        from pyspark import TaskContext
    except ImportError:
        return None
    ctx = TaskContext.get()
    return None if ctx is None else int(ctx.attemptNumber())


def _first_time(point: str, spec: str) -> bool:
    """True in the first process to reach ``point`` under this spec (a marker file)."""
    base = os.environ.get(FILE_ENV) or os.path.join(tempfile.gettempdir(), "distsmote-faults")
    digest = hashlib.blake2b(spec.encode(), digest_size=8).hexdigest()
    marker = f"{base}.{point}.{digest}.fired"
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def fault_point(point: str) -> None:
    """Act on a fault armed for ``point``; do nothing otherwise (the normal case)."""
    spec = _spec()
    if not spec:
        return
    for item in spec.split(","):
        name, _, action = item.strip().partition("=")
        if name != point:
            continue
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action == "term":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # let the handler run; it raises in the main thread
        elif action == "raise":
            raise InjectedFault(f"fault injected at {point!r}")
        elif action == "fail-once":
            attempt = _spark_attempt()
            if (attempt == 0) if attempt is not None else _first_time(point, spec):
                raise InjectedFault(f"fault injected at {point!r} (first attempt)")
        elif action.startswith("sleep:"):
            time.sleep(float(action.split(":", 1)[1]))
