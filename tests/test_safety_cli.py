"""Never lose data, end to end: the CLI in a subprocess killed or stopped at every step
of the commit and by SIGTERM, outputs overlapping the input on every engine, a Dask
scheduler without workers, and task failures reported in one line."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import _clusters
from distsmote import SMOTE
from distsmote.cli import main

from _data import assert_same_rows, make_frame

ROOT = Path(__file__).resolve().parents[1]
SEED = 3
COMMIT_STEPS = ["begin", "unmark", "aside", "move", "mark", "cleanup", "done"]
BEFORE_COMMIT_POINT = {"begin", "unmark", "aside", "move", "mark"}


@pytest.fixture()
def dataset(tmp_path):
    frame = make_frame({0: 300, 1: 30}, n_features=3, seed=2, dtype=np.float32)
    src = tmp_path / "in"
    src.mkdir()
    frame.iloc[:150].to_parquet(src / "a.parquet", index=False)
    frame.iloc[150:].to_parquet(src / "b.parquet", index=False)
    return frame, src


def _digest(path: Path) -> dict[str, str]:
    """Every file under ``path`` with a hash of its bytes (to prove it untouched)."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*")) if p.is_file()
    }


def _old_output(dst: Path, frame: pd.DataFrame) -> dict[str, str]:
    """A complete dataset at ``dst`` whose file names differ from a new run's."""
    dst.mkdir()
    frame.iloc[:10].to_parquet(dst / "old-0.parquet", index=False)
    frame.iloc[10:20].to_parquet(dst / "old-1.parquet", index=False)
    (dst / "_SUCCESS").touch()
    return _digest(dst)


def _cli(*argv: str, faults: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("DISTSMOTE_FAULTS", None)
    if faults:
        env["DISTSMOTE_FAULTS"] = faults
    return subprocess.run([sys.executable, "-m", "distsmote.cli", *argv], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if not re.match(r"\d\d:\d\d:\d\d distsmote: ", line)]


def _expected(frame: pd.DataFrame) -> pd.DataFrame:
    return SMOTE(random_state=SEED).resample(frame, label="y")


def _assert_no_mix(dst: Path, old: dict[str, str], expected: pd.DataFrame) -> None:
    """What a reader sees: old files only, new files only, or nothing marked complete."""
    if not dst.exists():
        return
    data = {p.name for p in dst.iterdir() if not p.name.startswith(("_", "."))}
    olds, news = {n for n in data if n.startswith("old-")}, {n for n in data if n.startswith("part-")}
    assert not (olds and news), f"old and new files mixed: {sorted(data)}"
    if (dst / "_SUCCESS").exists():
        if olds:
            assert _digest(dst) == old
        else:
            assert_same_rows(pd.read_parquet(dst), expected)


def _job(src: Path, dst: Path, *extra: str) -> list[str]:
    return ["resample", "--input", str(src), "--output", str(dst), "--label", "y",
            "--engine", "local", "--seed", str(SEED), "--quiet", *extra]


# -- kills and signals during the commit --------------------------------------------------


@pytest.mark.parametrize("step", COMMIT_STEPS)
def test_overwrite_killed_at_each_commit_step(dataset, tmp_path, step):
    frame, src = dataset
    dst = tmp_path / "out"
    old = _old_output(dst, frame)
    inputs = _digest(src)
    expected = _expected(frame)

    proc = _cli(*_job(src, dst, "--overwrite"), faults=f"commit.{step}=kill")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert _digest(src) == inputs
    _assert_no_mix(dst, old, expected)
    if step in BEFORE_COMMIT_POINT:
        assert not (dst / "_SUCCESS").exists() or _digest(dst) == old

    assert main(_job(src, dst, "--overwrite")) == 0  # the rerun, in process
    assert_same_rows(pd.read_parquet(dst), expected)
    assert (dst / "_SUCCESS").exists() and not (dst / "_OWNER").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # no staging or aside left
    assert _digest(src) == inputs


@pytest.mark.parametrize("step", ["move", "mark"])
def test_first_run_killed_in_commit_reruns_without_overwrite(dataset, tmp_path, step):
    """A killed first run leaves nothing marked complete; the plain rerun succeeds."""
    frame, src = dataset
    dst = tmp_path / "out"
    proc = _cli(*_job(src, dst), faults=f"commit.{step}=kill")
    assert proc.returncode == -signal.SIGKILL
    assert not (dst / "_SUCCESS").exists()
    assert main(_job(src, dst)) == 0
    assert_same_rows(pd.read_parquet(dst), _expected(frame))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


@pytest.mark.parametrize("point", ["plan", "write", "commit.aside", "commit.move"])
def test_sigterm_is_one_line_and_removes_partial_output(dataset, tmp_path, point):
    frame, src = dataset
    dst = tmp_path / "out"
    old = _old_output(dst, frame)
    proc = _cli(*_job(src, dst, "--overwrite"), faults=f"{point}=term")
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert _error_lines(proc.stderr) == [
        "distsmote: terminated (SIGTERM); no output was committed (partial files were removed)"
    ]
    assert _digest(dst) == old  # the old output is back, marked complete as before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


@pytest.mark.parametrize("point", ["generate", "write"])
def test_sigkill_leaves_staging_that_the_next_run_removes(dataset, tmp_path, capsys, point):
    frame, src = dataset
    dst = tmp_path / "out"
    proc = _cli(*_job(src, dst), faults=f"{point}=kill")
    assert proc.returncode == -signal.SIGKILL
    assert not dst.exists()
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    if point == "write":
        assert len(left) == 1 and left[0].startswith(".out.staging-")
    assert main(_job(src, dst)[:-1]) == 0  # not --quiet: the cleanup is logged
    if point == "write":
        assert "removed staging directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
    assert_same_rows(pd.read_parquet(dst), _expected(frame))


# -- output paths overlapping the input ---------------------------------------------------


def _overlaps(tmp_path: Path, src: Path):
    file_src = src / "a.parquet"
    return [
        (str(src), str(src), "is the input"),
        (str(src), f"file://{src}/", "is the input"),
        (str(file_src), str(tmp_path), "contains the input"),
        (str(src), str(src / "balanced"), "is inside the input"),
        (str(src), os.path.relpath(src, os.getcwd()) + "//", "is the input"),
    ]


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_output_overlapping_input_is_refused(dataset, tmp_path, capsys, engine):
    _, src = dataset
    before = _digest(tmp_path)
    for inp, out, message in _overlaps(tmp_path, src):
        code = main(["resample", "--input", inp, "--output", out, "--label", "y",
                     "--engine", engine, "--overwrite"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(_error_lines(err)) == 1, (inp, out, err)
        assert _digest(tmp_path) == before


def test_spark_output_equal_to_input_is_refused(spark, dataset, tmp_path, capsys):
    """Spark used to skip the check: --overwrite replaced the input by its own output."""
    _, src = dataset
    before = _digest(tmp_path)
    for inp, out, message in _overlaps(tmp_path, src):
        code = main(["resample", "--input", inp, "--output", out, "--label", "y",
                     "--engine", "spark", "--overwrite"])
        err = capsys.readouterr().err
        assert code == 2 and message in err, (inp, out, err)
        assert _digest(tmp_path) == before


def test_spark_overwrite_commits_through_hadoop(spark, dataset, tmp_path, capsys):
    frame, src = dataset
    dst = tmp_path / "out"
    _old_output(dst, frame)
    code = main(["resample", "--input", str(src), "--output", str(dst), "--label", "y",
                 "--engine", "spark", "--seed", str(SEED), "--overwrite", "--quiet"])
    assert code == 0, capsys.readouterr().err
    result = pd.read_parquet(dst)
    result["y"] = result["y"].astype(np.int64)
    assert_same_rows(result, _expected(frame))
    names = sorted(p.name for p in dst.iterdir() if not p.name.startswith("."))
    assert "_SUCCESS" in names and "_OWNER" not in names and not [n for n in names if n.startswith("old-")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


# -- Dask without workers, task failures and Ctrl-C ----------------------------------------


def test_no_dask_workers_fails_after_timeout(dataset, tmp_path):
    _, src = dataset
    port = _clusters.free_port()
    dask_cli = Path(sys.executable).parent / "dask"
    scheduler = _clusters.start_process(
        "dask-scheduler-no-workers",
        [str(dask_cli), "scheduler", "--host", _clusters.HOST, "--port", str(port),
         "--no-dashboard", "--dashboard-address", f"{_clusters.HOST}:0"],
        dict(os.environ), tmp_path / "scheduler.log", tmp_path,
    )
    try:
        def listening() -> bool:
            import socket

            with socket.socket() as s:
                return s.connect_ex((_clusters.HOST, port)) == 0

        _clusters.wait_until(listening, "Dask scheduler listening", [scheduler])
        t0 = time.monotonic()
        proc = _cli("resample", "--input", str(src), "--output", str(tmp_path / "out"), "--label", "y",
                    "--engine", "dask", "--scheduler", f"tcp://{_clusters.HOST}:{port}",
                    "--no-workers-timeout", "2", timeout=120)
        elapsed = time.monotonic() - t0
    finally:
        scheduler.stop()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "no Dask worker is connected" in proc.stderr  # logged when it starts waiting
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1 and "no Dask worker was connected" in lines[0] and "for 2 s" in lines[0], lines
    assert elapsed < 60
    assert not (tmp_path / "out").exists()


def test_task_failure_and_ctrl_c_are_one_line_on_dask(dataset, tmp_path):
    _, src = dataset
    argv = ["resample", "--input", str(src), "--output", str(tmp_path / "out"), "--label", "y",
            "--engine", "dask", "--n-workers", "1"]
    proc = _cli(*argv, faults="generate=raise")
    assert proc.returncode == 2
    assert _error_lines(proc.stderr) == ["distsmote: error: fault injected at 'generate'"], proc.stderr
    assert "Traceback" not in proc.stderr
    # the failed run left nothing, not even from tasks still running when it aborted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]

    env = dict(os.environ, PYTHONPATH=str(ROOT), DISTSMOTE_FAULTS="generate=sleep:30")
    ctrl_c = subprocess.Popen([sys.executable, "-m", "distsmote.cli", *argv], env=env, text=True,
                              stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 90
    while not any(p.name.startswith(".out.staging") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and ctrl_c.poll() is None
        time.sleep(0.2)
    time.sleep(1)
    os.killpg(ctrl_c.pid, signal.SIGINT)  # what a terminal sends to the whole process group
    _, err = ctrl_c.communicate(timeout=90)
    assert ctrl_c.returncode == 130
    assert _error_lines(err) == ["distsmote: interrupted; no output was committed (partial files were removed)"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_verbose_shows_the_traceback(dataset, tmp_path, monkeypatch):
    from distsmote._faults import InjectedFault

    _, src = dataset
    monkeypatch.setenv("DISTSMOTE_FAULTS", "plan=raise")
    argv = _job(src, tmp_path / "out")
    assert main(argv) == 2
    with pytest.raises(InjectedFault):
        main([*argv, "--verbose"])
    with pytest.raises(InjectedFault):
        main([*argv, "--debug"])


def test_spark_task_failure_is_one_line(dataset, tmp_path):
    """Tasks that keep failing: one line naming the cause, no worker traceback on stderr
    (local mode runs the executor in the driver's JVM, whose log would print them)."""
    _, src = dataset
    proc = _cli("resample", "--input", str(src), "--output", str(tmp_path / "out"), "--label", "y",
                "--engine", "spark", "--spark-master", "local[1]", "--seed", "1",
                faults="generate=raise", timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert _error_lines(proc.stderr)[-1] == "distsmote: error: InjectedFault: fault injected at 'generate'", proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and " ERROR " not in proc.stderr, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_spark_sigterm_mid_job_is_one_line_and_removes_staging(dataset, tmp_path):
    """SIGTERM while the driver waits in the JVM for a write: 143, one line, no staging.

    (A signal raised inside a py4j call used to leave the pinned connection waiting, and
    the next call read its stale answer.)
    """
    _, src = dataset
    env = dict(os.environ, PYTHONPATH=str(ROOT), DISTSMOTE_FAULTS="generate=sleep:60")
    proc = subprocess.Popen(
        [sys.executable, "-m", "distsmote.cli", "resample", "--input", str(src), "--output",
         str(tmp_path / "out"), "--label", "y", "--engine", "spark", "--spark-master", "local[1]"],
        env=env, text=True, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not any(p.name.startswith(".out.staging") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(2)  # the generation task is sleeping in the executor
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-3000:]
    assert time.monotonic() - t0 < 30  # not after the sleeping task ends
    assert _error_lines(err)[-1] == (
        "distsmote: terminated (SIGTERM); no output was committed (partial files were removed)"
    ), err[-3000:]
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
