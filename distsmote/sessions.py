"""What a job's engine session needs besides the engine: signals and a worker watch.

A job runs inside its engine's ``open`` (``Engine.open``: start or join a cluster) and
inside :func:`signal_guard`, which turns SIGTERM (sent by Airflow, Kubernetes and
``timeout``) into :class:`Terminated` in the main thread, so that a stopped job cleans
up like one interrupted with Ctrl-C.  :func:`watch_workers` fails a Dask job whose
scheduler has had no worker for ``dask.no_workers_timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

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


# -- worker watch -------------------------------------------------------------------


@contextlib.contextmanager
def watch_workers(client: Any, address: str, timeout: float, enabled: bool = True) -> Iterator[None]:
    """While the block runs, fail the job (in the main thread) when ``client``'s
    scheduler has had no worker for ``timeout`` seconds (``dask.no_workers_timeout``)."""
    watcher = _WorkerWatch(client, address, timeout) if enabled else None
    if watcher is not None:
        watcher.start()
    try:
        yield
    finally:
        if watcher is not None:
            watcher.stopped.set()


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
