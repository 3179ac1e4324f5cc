"""Shared pytest fixtures: REAL Dask and Spark standalone clusters on 127.0.0.1.

Session-scoped and lazy: a component is started the first time a test asks for it,
once per test session, and torn down (whole process groups, no orphaned JVMs) at the
end. A component that does not come up within ~90 s makes the test ERROR with the
tail of its log; these fixtures never skip.

Fixtures
--------
dask_cluster   ``dask scheduler`` + ``dask worker`` with 2 worker processes (1 thread,
               3GiB each), each under a nanny that restarts it if it dies.
               ``.address`` -> "tcp://127.0.0.1:<port>"; ``.log_dir``; ``.n_workers``;
               ``.wait_for_workers(client, gone=...)`` (after killing a worker).
dask_client    ``distributed.Client`` connected to ``dask_cluster``. NOTE: it is created
               the normal way, so it becomes the *default* client: once a test has
               requested it, plain ``dask.compute()`` / ``.compute()`` calls anywhere in
               the process run on the cluster until session end.
spark_cluster  Spark standalone master + one worker from the pyspark wheel.
               ``.master_url``, ``.spark_home``, ``.spark_submit``, ``.env`` (use as the
               environment of ``spark-submit`` subprocesses) and ``.submit_args(...)``
               (a ``spark-submit`` argv prefix whose resource settings fit next to the
               ``spark`` fixture's app; see ``tests/_clusters.py``).
spark          ONE ``SparkSession`` on ``spark_cluster`` for the whole session
               (2 executor cores, shuffle partitions 4, Arrow on without fallback,
               ``spark.task.maxFailures`` 4). Do not call ``spark.stop()`` in tests.
faults         Arms fault points (``distsmote._faults``) in this process, the Dask
               workers and the Spark executors: ``faults.arm("generate=fail-once")``.
               Disarmed (and the ``fail-once`` markers removed) when the test ends.
               Works through ``DISTSMOTE_FAULTS_FILE``, which this file points at a
               per-session path before any cluster starts, so every process inherits it.

Tests that use any of these fixtures are automatically marked ``cluster``, so
``pytest -m "not cluster"`` runs only the fast in-process tests.

This file must not import ``distsmote`` (nor pyspark / distributed) at import time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # e.g. --import-mode=importlib, or tests/ made a package
    sys.path.insert(0, _HERE)

import _clusters  # noqa: E402

CLUSTER_FIXTURES = frozenset({"dask_cluster", "dask_client", "spark_cluster", "spark"})


def pytest_configure(config):
    # One faults file per test session, named in os.environ before any daemon starts:
    # Dask workers and Spark executors inherit it and read it at every fault point.
    if _clusters.FAULTS_FILE_ENV not in os.environ:
        config._distsmote_faults_dir = tempfile.mkdtemp(prefix="distsmote-faults-")
        os.environ[_clusters.FAULTS_FILE_ENV] = os.path.join(config._distsmote_faults_dir, "armed")
    # distsmote's cache (the Spark driver's class archive of CLI runs in subprocesses):
    # one per test session, not the user's.
    if "DISTSMOTE_CACHE_DIR" not in os.environ:
        config._distsmote_cache_dir = tempfile.mkdtemp(prefix="distsmote-cache-")
        os.environ["DISTSMOTE_CACHE_DIR"] = config._distsmote_cache_dir
    # pyspark 4.x warns once per process, on importing pyspark.testing during
    # SparkSession creation (and again on mapInArrow), that pandas >= 3 is "not yet
    # fully supported". It says nothing about the code under test; silence only it.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:PySpark does not yet fully support pandas:FutureWarning",
    )


def pytest_unconfigure(config):
    path = getattr(config, "_distsmote_faults_dir", None)
    if path:
        os.environ.pop(_clusters.FAULTS_FILE_ENV, None)
        shutil.rmtree(path, ignore_errors=True)
    cache = getattr(config, "_distsmote_cache_dir", None)
    if cache:
        os.environ.pop("DISTSMOTE_CACHE_DIR", None)
        shutil.rmtree(cache, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if CLUSTER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _clusters.STARTUP_TIMES:
        terminalreporter.write_sep("-", "real cluster fixture startup times")
        for name, secs in _clusters.STARTUP_TIMES.items():
            terminalreporter.write_line(f"{name}: {secs:.1f}s")


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    cluster = _clusters.start_dask_cluster(tmp_path_factory.mktemp("dask"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def dask_client(dask_cluster):
    from distributed import Client

    client = Client(dask_cluster.address, timeout="30s")  # becomes the default client
    try:
        yield client
    finally:
        client.close(timeout=30)


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    cluster = _clusters.start_spark_cluster(tmp_path_factory.mktemp("spark"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def spark(spark_cluster, tmp_path_factory):
    handle = _clusters.start_spark_session(
        spark_cluster, tmp_path_factory.mktemp("spark-driver")
    )
    try:
        yield handle.session
    finally:
        handle.stop()


class Faults:
    """Arm and disarm fault points in every process of the test session.

    ``arm`` replaces the whole spec atomically (readers see the old or the new spec,
    never a partial one); ``disarm`` removes it and the ``fail-once`` markers.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def arm(self, spec: str) -> None:
        self.disarm()
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(spec, encoding="utf-8")
        os.replace(tmp, self.path)

    def disarm(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for marker in self.path.parent.glob(self.path.name + ".*.fired"):
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()

    def fired(self) -> list[str]:
        """Points whose ``fail-once`` fired outside Spark (marker files)."""
        prefix = len(self.path.name) + 1
        markers = self.path.parent.glob(self.path.name + ".*.fired")
        return sorted(m.name[prefix:].removesuffix(".fired").rsplit(".", 1)[0] for m in markers)


@pytest.fixture
def faults():
    handle = Faults(os.environ[_clusters.FAULTS_FILE_ENV])
    handle.disarm()
    try:
        yield handle
    finally:
        handle.disarm()
