"""Spark's Python daemon, quiet when the JVM drops a reused worker's connection.

Spark starts this module (``spark.python.daemon.module``, set by
:meth:`SparkEngine.open <distsmote.engines.spark.SparkEngine.open>`) instead of
``pyspark.daemon``.  A reused worker waits for its next task on a socket; when a job
fails and the session stops, the JVM may reset that connection, and PySpark's daemon
prints the worker's ``ConnectionResetError`` traceback on the job's stderr, under the
one-line error a failed job is meant to end with.  Here such a worker exits quietly;
everything else is PySpark's daemon unchanged.
"""

from __future__ import annotations

from typing import Any

import pyspark.daemon as _daemon

_worker = _daemon.worker


def _quiet_worker(sock: Any, authenticated: bool) -> int:
    try:
        return _worker(sock, authenticated)
    except (ConnectionResetError, BrokenPipeError):
        return 1  # the JVM closed the connection: nothing left to do or report


_daemon.worker = _quiet_worker

if __name__ == "__main__":
    _daemon.manager()
