"""Spark driver calls that a signal can interrupt, and recovery after one.

A long blocking call into the JVM (a write, a collect) runs in a thread while the
calling thread waits in Python, so a SIGTERM or Ctrl-C is handled at once; after the
signal, the session's py4j connection is reset and its jobs cancelled.
"""

from __future__ import annotations

import logging
from typing import Any


def interruptible(call: Any) -> Any:
    """Run a long, blocking driver call in a thread that inherits the caller's job group
    and local properties, while the calling thread waits in Python: a SIGTERM or Ctrl-C
    is then handled at once (the engine cancels the jobs), whichever thread the OS gave
    the signal to."""
    from pyspark import InheritableThread

    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            out["error"] = exc

    thread = InheritableThread(target=target, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.25)
    if "error" in out:
        raise out["error"]
    return out["value"]


def spark_interrupted(session: Any) -> None:
    """Make a SparkSession usable again after a signal interrupted a call into the JVM.

    PySpark pins one py4j connection per Python thread.  A signal handler that raises
    in the middle of a call leaves that connection waiting for an answer, which the
    next call would read as its own.  Drop (close) it, so the next call opens a fresh
    one, and cancel the running jobs so that no task writes on.
    """
    log = logging.getLogger("distsmote")
    try:
        client = session.sparkContext._gateway._gateway_client
        connection = client.get_thread_connection()
        if connection is not None:
            client.thread_connection.connection = None
            connection.close()
    except Exception:  # noqa: BLE001 - best effort; not every gateway pins threads
        log.debug("could not reset the py4j connection", exc_info=True)
    try:
        session.sparkContext.cancelAllJobs()
    except Exception:  # noqa: BLE001
        log.debug("could not cancel Spark jobs", exc_info=True)
