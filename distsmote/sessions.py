"""Engine sessions for a job: a Dask client or cluster, a SparkSession, and signals.

A job runs inside :func:`engine_context`, which starts or joins the engine, and inside
:func:`signal_guard`, which turns SIGTERM (sent by Airflow, Kubernetes and ``timeout``)
into :class:`Terminated` in the main thread, so that a stopped job cleans up like one
interrupted with Ctrl-C.  A watch thread fails a Dask job whose scheduler has had no
worker for ``dask.no_workers_timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from distsmote.config import JobConfig
from distsmote.paths import redact

log = logging.getLogger("distsmote")


# -- signals --------------------------------------------------------------------------


class Terminated(BaseException):
    """SIGTERM arrived (Airflow, Kubernetes and ``timeout`` send it); handled like Ctrl-C."""


class NoWorkersError(RuntimeError):
    """No Dask worker was connected for longer than ``dask.no_workers_timeout``."""


_pending: list[BaseException] = []
_guard_lock = threading.Lock()
_guarded = False


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _pending.pop() if _pending else Terminated()


@contextlib.contextmanager
def signal_guard() -> Iterator[bool]:
    """Turn SIGTERM into :class:`Terminated` in the main thread while a job runs.

    Yields whether the handler is installed (only possible in the main thread).
    """
    global _guarded
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        yield False
        return
    _guarded = True
    try:
        yield True
    finally:
        with _guard_lock:
            _guarded = False
            signal.signal(signal.SIGTERM, previous)
            _pending.clear()


def _raise_in_main(exc: BaseException) -> None:
    """Make the main thread raise ``exc`` (through the SIGTERM handler), if a job runs."""
    with _guard_lock:
        if not _guarded:
            return
        _pending.append(exc)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)


class _WorkerWatch(threading.Thread):
    """Log when a Dask scheduler has no workers; fail the job after ``timeout`` seconds."""

    def __init__(self, client: Any, address: str, timeout: float) -> None:
        super().__init__(name="distsmote-worker-watch", daemon=True)
        self.client, self.address, self.timeout = client, address, timeout
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = max(0.2, min(5.0, self.timeout / 5))
        since: float | None = None
        while not self.stopped.wait(interval):
            try:
                workers = len(self.client.nthreads())
            except Exception:  # noqa: BLE001 - a lost scheduler counts as no workers
                workers = 0
            now = time.monotonic()
            if workers:
                if since is not None:
                    log.info("Dask workers are back (%d)", workers)
                since = None
            elif since is None:
                since = now
                log.warning("no Dask worker is connected to %s; waiting up to %g s for one "
                            "(dask.no_workers_timeout)", redact(self.address), self.timeout)
            elif now - since >= self.timeout and not self.stopped.is_set():
                _raise_in_main(NoWorkersError(
                    f"no Dask worker was connected to {redact(self.address)} for {self.timeout:g} s; "
                    "start workers, or raise --no-workers-timeout (dask.no_workers_timeout)"
                ))
                return


# -- engines ----------------------------------------------------------------------------


@contextlib.contextmanager
def dask_client(config: JobConfig, watch: bool = False, verbose: bool = False) -> Iterator[Any]:
    """Connect to ``dask.scheduler``, or start an embedded local cluster on 127.0.0.1.

    With ``watch``, a thread fails the job (in the main thread) when no worker has been
    connected for ``dask.no_workers_timeout`` seconds.
    """
    from distributed import Client, LocalCluster

    @contextlib.contextmanager
    def watched(client: Any, address: str) -> Iterator[Any]:
        watcher = _WorkerWatch(client, address, config.dask.no_workers_timeout) if watch else None
        if watcher is not None:
            watcher.start()
        try:
            yield client
        finally:
            if watcher is not None:
                watcher.stopped.set()

    if config.dask.scheduler:
        with Client(config.dask.scheduler) as client, watched(client, config.dask.scheduler) as c:
            yield c
        return
    n_workers = config.dask.n_workers or max(1, (os.cpu_count() or 1) // config.dask.threads_per_worker)
    level = logging.WARNING if verbose else logging.CRITICAL  # task tracebacks only with --verbose
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"):
        logging.getLogger(name).setLevel(level)
    with LocalCluster(
        n_workers=n_workers,
        threads_per_worker=config.dask.threads_per_worker,
        processes=True,
        host="127.0.0.1",
        scheduler_kwargs={"dashboard": False},
        memory_limit=config.dask.memory_limit,
        silence_logs=level,
    ) as cluster, Client(cluster) as client, watched(client, cluster.scheduler_address) as c:
        log.info("embedded Dask cluster: %d workers × %d threads", n_workers, config.dask.threads_per_worker)
        yield c


@contextlib.contextmanager
def spark_session(config: JobConfig, verbose: bool = False, progress: bool = True) -> Iterator[Any]:
    """Get (or create) the SparkSession; under spark-submit its master is used.

    A session that was already active (a notebook's, a test's) is used as is and left
    running; one created here is stopped at the end, and its log level is ``WARN`` with
    ``verbose``, else ``FATAL`` (task failures and retries are not printed: a job that
    fails says why in one line).
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    builder = SparkSession.builder.appName(config.spark.app_name)
    master = config.spark.master
    if not master and not os.environ.get("SPARK_ENV_LOADED") and "spark.master" not in config.spark.conf:
        # Not under spark-submit.  local[*,4]: a failed task is retried (up to 4
        # attempts), as on a cluster; plain local[*] would fail the job at once.
        master = os.environ.get("MASTER", "local[*,4]")
    if master:
        builder = builder.master(master)
    if master and master.startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        os.environ["PYSPARK_PYTHON"] = sys.executable  # local workers use this interpreter
    if "spark.ui.showConsoleProgress" not in config.spark.conf:  # Spark's own stage bar
        builder = builder.config("spark.ui.showConsoleProgress", str(progress and _is_tty()).lower())
    for key, value in config.spark.conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN" if verbose else "FATAL")
    try:
        yield session
    except (KeyboardInterrupt, Terminated):
        spark_interrupted(session)
        raise
    finally:
        session.stop()


def spark_interrupted(session: Any) -> None:
    """Make a SparkSession usable again after a signal interrupted a call into the JVM.

    PySpark pins one py4j connection per Python thread.  A signal handler that raises
    in the middle of a call leaves that connection waiting for an answer, which the
    next call would read as its own.  Drop (close) it, so the next call opens a fresh
    one, and cancel the running jobs so that no task writes on.
    """
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


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def engine_context(
    config: JobConfig, verbose: bool = False, watch: bool = False, progress: bool = True
) -> Iterator[Any]:
    """Yield the engine handle (None, a Dask client or a SparkSession)."""
    if config.engine == "dask":
        with dask_client(config, watch=watch, verbose=verbose) as client:
            yield client
    elif config.engine == "spark":
        with spark_session(config, verbose=verbose, progress=progress) as session:
            yield session
    else:
        yield None
