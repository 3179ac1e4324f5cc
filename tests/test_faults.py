"""Faults injected into real runs on the test clusters; the output must not change.

* Spark: every task of a stage fails on its first attempt (``fail-once`` keys on the
  task's attempt number) in generation, in the kNN join's search and mid-write; the
  job succeeds on retry and writes the clean run's rows, as a multiset.
* Dask: a worker process is SIGKILLed while it runs a generation task, the map side of
  the join's shuffle, a search task after that shuffle, or a part-file write; the job finishes on the other worker
  (the nanny restarts the killed one) and writes the clean run's rows.

Every test also proves that its fault really happened (failed Spark tasks counted by
the status tracker; the killed Dask worker left the scheduler), so none can pass
vacuously.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distsmote import SMOTE, SMOTETomek, TomekLinks
from distsmote.engines.dask import DaskEngine
from distsmote.engines.files import keep_only
from distsmote.engines.spark import SparkEngine

from _data import assert_same_rows, make_frame

COUNTS = {0: 3000, 1: 240, 2: 150}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    """A Parquet dataset of three files: a few thousand rows, three classes."""
    frame = make_frame(COUNTS, n_features=4, seed=17, dtype=np.float32)
    src = tmp_path_factory.mktemp("faults") / "input"
    src.mkdir()
    for i, chunk in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[chunk].to_parquet(src / f"part-{i}.parquet", index=False)
    return str(src)


def _smote() -> SMOTE:
    return SMOTE(random_state=11, knn="ivf")


def _smote_tomek() -> SMOTETomek:
    return SMOTETomek(random_state=11, tomek=TomekLinks(sampling_strategy="all", knn="ivf"))


SAMPLERS = {"smote": _smote, "smote_tomek": _smote_tomek}


def _read(path: Path | str) -> pd.DataFrame:
    out = pd.read_parquet(path)
    out["y"] = out["y"].astype(np.int64)
    return out


# ----------------------------------------------------------------------------- Spark


@contextlib.contextmanager
def _job_group(spark):
    """Run the block's Spark jobs in a fresh job group; yield a failed-task counter."""
    sc = spark.sparkContext
    group = f"distsmote-faults-{uuid.uuid4().hex[:8]}"
    sc.setJobGroup(group, "fault injection test")

    def failed_tasks() -> int:
        tracker = sc.statusTracker()
        n = 0
        for job in tracker.getJobIdsForGroup(group):
            info = tracker.getJobInfo(job)
            for stage in info.stageIds if info else ():
                st = tracker.getStageInfo(stage)
                n += st.numFailedTasks if st else 0
        return n

    try:
        yield failed_tasks
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)


def _spark_run(spark, source: str, sampler: str, dst: Path) -> tuple[pd.DataFrame, int]:
    """Resample on Spark and write Parquet; return the rows and the failed task count."""
    frame = spark.read.parquet(source)
    with _job_group(spark) as failed_tasks:
        out = SAMPLERS[sampler]().resample(frame, label="y")
        parts = SparkEngine(spark).write_parts(out, str(dst))
        n_failed = failed_tasks()
    keep_only(str(dst), parts)  # as a commit does: only what successful attempts reported
    return _read(dst), n_failed


@pytest.fixture(scope="module")
def spark_clean(spark, source, tmp_path_factory):
    """The clean Spark runs, once per sampler (lazily)."""
    base = tmp_path_factory.mktemp("spark-clean")
    cache: dict[str, pd.DataFrame] = {}

    def get(sampler: str) -> pd.DataFrame:
        if sampler not in cache:
            rows, n_failed = _spark_run(spark, source, sampler, base / sampler)
            assert n_failed == 0
            cache[sampler] = rows
        return cache[sampler]

    return get


def test_spark_session_retries_failed_tasks(spark):
    assert int(spark.sparkContext.getConf().get("spark.task.maxFailures")) > 1


@pytest.mark.parametrize(
    "point, sampler",
    [
        ("generate", "smote"),  # the generation task, at its start
        ("join.search", "smote_tomek"),  # every search task of the kNN join
        ("generate.emitted", "smote"),  # mid-write: the writer already has the rows
    ],
)
def test_spark_task_fails_on_first_attempt(spark, spark_clean, source, faults, tmp_path, point, sampler):
    expected = spark_clean(sampler)
    faults.arm(f"{point}=fail-once")
    rows, n_failed = _spark_run(spark, source, sampler, tmp_path / "out")
    faults.disarm()
    assert n_failed > 0, f"no task failed: fault point {point!r} never ran"
    assert_same_rows(rows, expected)
    # The failed attempts left nothing behind: only the committed part files.
    leftovers = [p.name for p in (tmp_path / "out").iterdir()
                 if not (p.name.startswith("part-") or p.name in ("_SUCCESS",) or p.name.startswith("."))]
    assert leftovers == []


def _input_files(source: str) -> list[str]:
    return [str(p) for p in sorted(Path(source).glob("*.parquet"))]


def _assert_copies(source: str, parts: list, dst: Path) -> None:
    """The first part files of ``dst`` are one byte-for-byte copy of each input file."""
    inputs = _input_files(source)
    copies = [p for p in parts if p.copy_of is not None]
    assert [p.copy_of for p in copies] == inputs
    assert [(dst / p.name).read_bytes() for p in copies] == [Path(f).read_bytes() for f in inputs]
    assert sorted(p.name for p in parts)[:len(inputs)] == [p.name for p in copies]


def test_spark_copies_and_writes_fail_on_first_attempt(spark, spark_clean, source, faults, tmp_path):
    """Every task of a write with copies of the input files fails once (fault point
    ``write``); the retries copy each file once and write the clean run's rows."""
    expected = spark_clean("smote")
    dst = tmp_path / "out"
    faults.arm("write=fail-once")
    with _job_group(spark) as failed_tasks:
        new = _smote().resample(spark.read.parquet(source), label="y", new_rows_only=True)
        parts = SparkEngine(spark).write_parts(new, str(dst), label="y", copies=_input_files(source))
        n_failed = failed_tasks()
    faults.disarm()
    assert n_failed >= len(parts), n_failed
    keep_only(str(dst), parts)
    _assert_copies(source, parts, dst)
    assert_same_rows(_read(dst), expected)


# ------------------------------------------------------------------------------ Dask


def _held_at(point: str) -> list[str]:
    """Threads of this process that are inside ``fault_point(point)`` (run on a worker)."""
    held = []
    for ident, frame in sys._current_frames().items():
        f = frame
        while f is not None:
            if f.f_code.co_name == "fault_point" and f.f_locals.get("point") == point:
                held.append(str(ident))
                break
            f = f.f_back
    return held


class _Killer(threading.Thread):
    """SIGKILL the worker process whose task is held at fault point ``point``.

    Polls the workers' thread stacks until one is inside ``fault_point(point)`` (armed
    with ``sleep``, so it stays there), kills that process, then disarms the faults so
    the recomputation runs at full speed.
    """

    def __init__(self, client, faults, point: str, timeout: float = 120.0) -> None:
        super().__init__(name=f"kill-worker-at-{point}", daemon=True)
        self.client, self.faults, self.point, self.timeout = client, faults, point, timeout
        self.killed: tuple[str, int] | None = None
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            deadline = time.monotonic() + self.timeout
            while not self._stop_event.is_set() and time.monotonic() < deadline:
                held = [a for a, threads in self.client.run(_held_at, self.point).items() if threads]
                if held:
                    pid = self.client.run(os.getpid, workers=held[:1])[held[0]]
                    os.kill(pid, signal.SIGKILL)
                    self.killed = (held[0], pid)
                    return
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.faults.disarm()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


def _dask_run(source: str, sampler: str, dst: Path) -> pd.DataFrame:
    import dask.dataframe as dd

    frame = dd.read_parquet(source)
    out = SAMPLERS[sampler]().resample(frame, label="y")
    DaskEngine().write_parts(out, str(dst))
    return _read(dst)


@pytest.fixture(scope="module")
def dask_clean(dask_client, source, tmp_path_factory):
    """The clean Dask runs, once per sampler (lazily)."""
    base = tmp_path_factory.mktemp("dask-clean")
    cache: dict[str, pd.DataFrame] = {}

    def get(sampler: str) -> pd.DataFrame:
        if sampler not in cache:
            cache[sampler] = _dask_run(source, sampler, base / sampler)
        return cache[sampler]

    return get


@pytest.mark.parametrize(
    "point, sampler",
    [
        ("generate", "smote"),  # a generation task
        # The map side of the join's p2p shuffle: the worker dies mid-transfer.
        ("shuffle", "smote_tomek"),
        # A search task reads its bucket group from the join's p2p shuffle: losing its
        # worker loses shuffle output, so the shuffle itself must be redone.
        ("join.search", "smote_tomek"),
        ("write", "smote"),  # a part-file write
    ],
)
def test_dask_worker_killed_mid_job(dask_cluster, dask_client, dask_clean, source, faults, tmp_path,
                                    point, sampler):
    expected = dask_clean(sampler)
    before = set(dask_cluster.wait_for_workers(dask_client))
    faults.arm(f"{point}=sleep:5")
    killer = _Killer(dask_client, faults, point)
    killer.start()
    try:
        rows = _dask_run(source, sampler, tmp_path / "out")
    finally:
        killer.stop()
    assert killer.error is None, repr(killer.error)
    assert killer.killed is not None, f"no worker reached fault point {point!r}"
    address, pid = killer.killed
    assert address in before
    # The cluster recovers (the nanny restarts the process) for the tests that follow.
    after = dask_cluster.wait_for_workers(dask_client, gone=[address])
    assert pid not in dask_client.run(os.getpid).values()
    assert len(after) == dask_cluster.n_workers
    assert_same_rows(rows, expected)


def test_dask_worker_killed_mid_copy(dask_cluster, dask_client, dask_clean, source, faults, tmp_path):
    """A worker dies while copying an input file; the copy is done again elsewhere and
    the output holds the clean run's rows."""
    import dask.dataframe as dd

    expected = dask_clean("smote")
    before = set(dask_cluster.wait_for_workers(dask_client))
    new = _smote().resample(dd.read_parquet(source), label="y", new_rows_only=True)
    faults.arm("write=sleep:5")
    killer = _Killer(dask_client, faults, "write")
    killer.start()
    dst = tmp_path / "out"
    try:
        parts = DaskEngine().write_parts(new, str(dst), label="y", copies=_input_files(source))
    finally:
        killer.stop()
    assert killer.error is None, repr(killer.error)
    assert killer.killed is not None, "no worker reached fault point 'write'"
    address, _ = killer.killed
    assert address in before
    dask_cluster.wait_for_workers(dask_client, gone=[address])
    _assert_copies(source, parts, dst)
    assert_same_rows(_read(dst), expected)
