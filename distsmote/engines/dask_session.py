"""The Dask client of a CLI run or job: a scheduler's, or an embedded local cluster's."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

#: Dask settings of the embedded cluster's workers.  A worker buffers at most 256 MiB
#: of outgoing P2P shuffle data (Dask's default, 1 GiB, made the kNN join's replicate
#: step the run's memory peak); glibc's adaptive allocator is kept (see
#: :func:`dask_client`), with two arenas instead of eight per core, since memory freed
#: in one thread's arena cannot serve another's (SMOTEENN at 5 M rows: peak 5.91 GiB in
#: 279 s, against 6.48 GiB in 287 s).
EMBEDDED_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": "2",
    "distributed.p2p.comm.buffer": "256 MiB",
}


@contextlib.contextmanager
def dask_client(config: Any, *, verbose: bool = False, watch: bool = False) -> Iterator[Any]:
    """A ``distributed.Client`` of ``config.dask.scheduler``, or of an embedded local
    cluster on 127.0.0.1 (closed at the end).

    With ``watch``, a thread fails the job (in the main thread) when no worker has been
    connected for ``dask.no_workers_timeout`` seconds.
    """
    import dask
    from distributed import Client, LocalCluster

    from distsmote.sessions import watch_workers

    log = logging.getLogger("distsmote")
    timeout = config.dask.no_workers_timeout
    if config.dask.scheduler:
        with Client(config.dask.scheduler) as client, \
                watch_workers(client, config.dask.scheduler, timeout, watch):
            yield client
        return
    n_workers = config.dask.n_workers or max(1, (os.cpu_count() or 1) // config.dask.threads_per_worker)
    level = logging.WARNING if verbose else logging.CRITICAL  # task tracebacks only with --verbose
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"):
        logging.getLogger(name).setLevel(level)
    # The embedded workers keep glibc's adaptive allocator: Dask's default
    # MALLOC_TRIM_THRESHOLD_ turns it off, and every large numpy temporary of the
    # kNN join is then mapped and unmapped afresh (SMOTEENN at 1 M rows: 25 % faster
    # without it, half the system time, 0.5 GiB more peak memory).
    with dask.config.set(EMBEDDED_WORKER_CONFIG), LocalCluster(
        n_workers=n_workers,
        threads_per_worker=config.dask.threads_per_worker,
        processes=True,
        host="127.0.0.1",
        scheduler_kwargs={"dashboard": False},
        dashboard_address=":0",  # never a fixed port another cluster may hold
        memory_limit=config.dask.memory_limit,
        silence_logs=level,
    ) as cluster, Client(cluster) as client, \
            watch_workers(client, cluster.scheduler_address, timeout, watch):
        log.info("embedded Dask cluster: %d workers × %d threads", n_workers,
                 config.dask.threads_per_worker)
        yield client
