"""Progress of long work: log lines off a terminal, a live bar on one, on every engine."""

from __future__ import annotations

import io as _io
import logging
import os
import pty
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from distsmote import SMOTE
from distsmote.progress import follow, stage

from _data import make_frame

LOGGER = "distsmote"


def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


class _FakeTTY(_io.StringIO):
    def isatty(self) -> bool:
        return True


# ------------------------------------------------------------------------ the reporter


def test_stage_logs_start_tenths_and_end(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with stage("generation", total=20, unit="tasks", bar=False) as st:
        for _ in range(20):
            st.advance(1, count=3)
    lines = _messages(caplog)
    assert lines[0] == "generation: started (20 tasks)"
    running = lines[1:-1]
    assert [line.split(",")[0] for line in running] == [
        f"generation: {2 * i}/20 tasks ({10 * i}%)" for i in range(1, 11)
    ]
    assert "60 rows" in running[-1]
    assert lines[-1].startswith("generation: done in ") and lines[-1].endswith("s (20/20 tasks, 60 rows)")


def test_stage_without_total_logs_start_and_end_with_seconds(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with stage("class statistics"):
        time.sleep(0.05)
    start, end = _messages(caplog)
    assert start == "class statistics: started"
    seconds = float(end.removeprefix("class statistics: done in ").removesuffix("s"))
    assert seconds >= 0.05


def test_stage_that_raises_says_stopped_and_reraises(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with pytest.raises(KeyError, match="boom"):
        with stage("write", total=4, bar=False) as st:
            st.advance()
            raise KeyError("boom")
    assert _messages(caplog)[-1].startswith("write: stopped in ")


def test_long_stage_logs_running_lines_with_polled_counts(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with stage("kNN join: search", bar=False, interval=0.2, poll=lambda: (3, 8)):
        time.sleep(0.9)
    running = [m for m in _messages(caplog) if m.endswith("(running)")]
    assert len(running) >= 2
    assert running[0].startswith("kNN join: search: 3/8 tasks (37%), ")


def test_silent_unless_the_logger_is_enabled(caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    tty = _FakeTTY()
    with stage("generation", total=3, stream=tty) as st:
        st.advance(3)
    assert _messages(caplog) == [] and tty.getvalue() == ""


def test_bar_on_a_terminal_replaces_running_lines(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    tty = _FakeTTY()
    with stage("write", total=4, unit="partitions", stream=tty) as st:
        for _ in range(4):
            st.advance(1, count=1000)
    drawn = tty.getvalue()
    assert "\r\033[K" in drawn
    assert f"write [{'#' * 30}] 4/4 partitions, 4,000 rows" in drawn
    assert drawn.endswith("\r\033[K")  # the bar is cleared at the end
    lines = _messages(caplog)
    assert lines[0] == "write: started (4 partitions)" and lines[-1].startswith("write: done in ")
    assert len(lines) == 2  # no tenth-of-the-way lines under a bar


def test_nested_stage_bars_restore_the_outer_bar(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    tty = _FakeTTY()
    with stage("outer", total=2, stream=tty) as outer:
        with stage("inner", total=1, stream=tty) as inner:
            inner.advance()
            during_inner = tty.getvalue()
        after_inner = tty.getvalue()
        outer.advance(2)
    assert during_inner.endswith("\r\033[Kinner [" + "#" * 30 + "] 1/1 tasks, 0s")
    # The inner bar is cleared and the outer one drawn again, on the same line.
    assert after_inner.endswith("\r\033[Kouter [" + "." * 30 + "] 0/2 tasks, 0s")


_PTY_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from distsmote.progress import stage
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="LOG %(message)s")
    logging.getLogger("distsmote").setLevel(logging.INFO)
    with stage("generation", total=5, unit="tasks") as st:
        for _ in range(5):
            st.advance(1, count=7)
    """
)


def _run(stderr_is_tty: bool) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-c", _PTY_SCRIPT]
    if not stderr_is_tty:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True).stderr
    parent, child = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=child)
        os.close(child)
        chunks = []
        while True:
            try:
                data = os.read(parent, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(parent)
    return b"".join(chunks).decode()


def test_a_bar_under_a_terminal_and_lines_in_logs():
    on_tty = _run(stderr_is_tty=True)
    assert f"generation [{'#' * 30}] 5/5 tasks, 35 rows" in on_tty
    assert "\r" in on_tty and "LOG generation: started (5 tasks)" in on_tty
    assert "LOG generation: done in " in on_tty
    assert "(20%)" not in on_tty  # the bar replaces the running lines
    in_logs = _run(stderr_is_tty=False)
    assert "\r" not in in_logs and "[#" not in in_logs
    assert [line for line in in_logs.splitlines() if "%" in line][0].startswith(
        "LOG generation: 1/5 tasks (20%), 7 rows, "
    )
    assert in_logs.splitlines()[-1].startswith("LOG generation: done in ")


# ------------------------------------------------------------------------------ engines


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame({0: 600, 1: 60, 2: 30}, n_features=3, seed=4)


def test_local_engine_reports_statistics_and_generation(caplog, frame):
    caplog.set_level(logging.INFO, logger=LOGGER)
    SMOTE(random_state=1).resample(frame, label="y")
    lines = _messages(caplog)
    assert "class statistics: started" in lines
    assert any(m.startswith("class statistics: done in ") for m in lines)
    done = [m for m in lines if m.startswith("generation tasks: done in ")]
    assert done and done[0].endswith("(2/2 tasks, 1,110 rows)")  # 540 + 570 new rows


def test_follow_dask_futures_in_order_with_progress(caplog, dask_client):
    import dask.dataframe as dd

    caplog.set_level(logging.INFO, logger=LOGGER)
    ddf = dd.from_pandas(pd.DataFrame({"x": np.arange(100)}), npartitions=5)
    parts = follow(dask_client.compute(ddf.to_delayed()), "collecting", count=len, bar=False)
    assert [p["x"].iloc[0] for p in parts] == [0, 20, 40, 60, 80]
    lines = _messages(caplog)
    assert lines[0] == "collecting: started (5 partitions)"
    assert lines[-1].endswith("(5/5 partitions, 100 rows)")


def test_follow_stops_early_and_cancels(caplog, dask_client):
    import dask.dataframe as dd

    caplog.set_level(logging.INFO, logger=LOGGER)
    ddf = dd.from_pandas(pd.DataFrame({"x": np.arange(100)}), npartitions=5)
    futures = dask_client.compute(ddf.to_delayed())

    def refuse(_i, _pdf):
        raise RuntimeError("too many rows")

    with pytest.raises(RuntimeError, match="too many rows"):
        follow(futures, "collecting", each=refuse, bar=False)
    assert _messages(caplog)[-1].startswith("collecting: stopped in ")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(f.status == "cancelled" for f in futures):
        time.sleep(0.05)
    assert [f.status for f in futures] == ["cancelled"] * 5


def test_dask_engine_follows_partitions(caplog, dask_client, frame):
    import dask.dataframe as dd

    caplog.set_level(logging.INFO, logger=LOGGER)
    SMOTE(random_state=1).resample(dd.from_pandas(frame, npartitions=3), label="y")
    lines = _messages(caplog)
    assert "class statistics: started (3 partitions)" in lines
    assert any(m.startswith("class statistics: done in ") and m.endswith("(3/3 partitions)") for m in lines)
    # The statistics' pass brought the minority's rows back: no second pass.
    assert "collecting rows: 90 rows, brought back by the class statistics' pass" in lines
    assert not any(m.startswith("collecting rows: started") for m in lines)


def _sleepy(batches):
    for batch in batches:
        time.sleep(0.6)
        yield pa.RecordBatch.from_arrays([batch.column(0)], names=["id"])


def test_spark_engine_reports_statistics_and_running_task_counts(caplog, spark, frame):
    from distsmote.engines.spark import _active_tasks

    caplog.set_level(logging.INFO, logger=LOGGER)
    SMOTE(random_state=1).resample(spark.createDataFrame(frame), label="y")
    lines = _messages(caplog)
    assert "class statistics: started" in lines
    assert any(m.startswith("class statistics: done in ") for m in lines)
    assert any(m.startswith("collecting rows: done in ") for m in lines)

    caplog.clear()
    with stage("spark job", bar=False, interval=0.3, poll=_active_tasks(spark)):
        spark.range(0, 4, numPartitions=4).mapInArrow(_sleepy, "id long").collect()
    running = [m for m in _messages(caplog) if m.endswith("(running)")]
    assert any("/4 tasks (" in m for m in running), running
