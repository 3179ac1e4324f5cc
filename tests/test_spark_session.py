"""The Spark driver's class archive: written once by a session distsmote starts, mapped by
the next, ignored when it cannot apply, and a damaged one never stops a job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from distsmote.config import JobConfig
from distsmote.engines import spark_archive
from distsmote.engines.spark_archive import JAVA_OPTIONS, ClassArchive, class_archive
from distsmote.engines.spark_session import local_java_options

ROOT = Path(__file__).resolve().parents[1]

# A fresh interpreter (no JVM yet) opens a session as the CLI does, runs one Python job
# and reports the driver JVM's options and the archive files left behind.
SESSION = r"""
import json, os, sys
from distsmote.config import JobConfig
from distsmote.engines import spark_archive
from distsmote.engines.spark import SparkEngine
import contextlib
import pyspark.core.context, pyspark.java_gateway
launches = []
def counted(*args, _launch=pyspark.java_gateway.launch_gateway, **kwargs):
    launches.append(1)
    return _launch(*args, **kwargs)
pyspark.java_gateway.launch_gateway = pyspark.core.context.launch_gateway = counted
if os.environ.get("UNKNOWN_JVM_OPTION"):  # a JVM that refuses the archive's options
    spark_archive._QUIET += " -Xlog:nosuchtag=off"
config = JobConfig(engine="spark", sampler={"name": os.environ.get("SAMPLER", "smote")},
                   spark={"master": "local[1]", "conf": json.loads(sys.argv[1]),
                          "class_archive": os.environ.get("ARCHIVE") != "0"})
# As a job does: the driver JVM launched first, while the driver plans (PRELAUNCH=1).
starting = SparkEngine.starting(config, progress=False) if os.environ.get("PRELAUNCH") else contextlib.nullcontext()
with starting, SparkEngine.open(config, progress=False) as engine:
    jvm = engine.spark.sparkContext._jvm
    args = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    rows = engine.spark.range(0, 6, 1, 2).mapInArrow(lambda it: it, "id long").count()
    if sys.argv[2:] == ["fail"]:
        engine.spark.sql("SELECT * FROM no_such_table").count()
directory = os.path.join(os.environ["DISTSMOTE_CACHE_DIR"], "spark-class-archive")
print(json.dumps({"args": args, "rows": rows, "launches": len(launches),
                  "files": sorted(os.listdir(directory)) if os.path.isdir(directory) else []}))
"""


def _env(cache: Path, **extra: str) -> dict:
    """A fresh interpreter's environment: this checkout, no gateway or submit arguments."""
    env = dict(os.environ, DISTSMOTE_CACHE_DIR=str(cache), **extra,
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for name in ("PYSPARK_SUBMIT_ARGS", "PYSPARK_GATEWAY_PORT", "SPARK_ENV_LOADED", "SPARK_REMOTE"):
        env.pop(name, None)
    return env


def _open_session(cache: Path, conf: dict | None = None, fail: bool = False, sampler: str = "smote",
                  **extra: str) -> dict:
    env = _env(cache, SAMPLER=sampler, **extra)
    done = subprocess.run([sys.executable, "-c", SESSION, json.dumps(conf or {}), *(["fail"] if fail else [])],
                          env=env, cwd=cache, check=False, capture_output=True, text=True, timeout=300)
    if fail:  # the error is described (PySpark needs the JVM for that), nothing is kept
        assert done.returncode == 1 and "no_such_table" in done.stderr, done.stderr[-3000:]
        return {"files": sorted(os.listdir(cache / "spark-class-archive"))}
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _flags(args: list[str], name: str) -> list[str]:
    return [a.split("=", 1)[1] for a in args if a.startswith(f"-XX:{name}=")]


def test_first_session_writes_the_archive_and_the_next_maps_it(tmp_path):
    assert _open_session(tmp_path, fail=True)["files"] == []  # a failed run writes none
    first = _open_session(tmp_path)
    assert {"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"} <= set(first["args"])  # a local master
    written = _flags(first["args"], "ArchiveClassesAtExit")
    assert len(written) == 1 and written[0].endswith(".partial")
    assert first["rows"] == 6
    files = first["files"]
    assert len(files) == 1 and files[0].endswith(".jsa"), files  # renamed, no partial left
    path = tmp_path / "spark-class-archive" / files[0]
    assert path.stat().st_size > 10_000_000

    second = _open_session(tmp_path)
    assert _flags(second["args"], "SharedArchiveFile") == [str(path)]
    assert not _flags(second["args"], "ArchiveClassesAtExit")
    assert second["rows"] == 6

    # Damaged (cut short): the JVM cannot start with it; the job starts without it,
    # removes it and does not write it again.
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 50])
    third = _open_session(tmp_path)
    assert third["rows"] == 6
    assert not _flags(third["args"], "SharedArchiveFile")
    assert third["files"] == [path.with_suffix(".failed").name]
    fourth = _open_session(tmp_path)
    assert not _flags(fourth["args"], "SharedArchiveFile") and not _flags(fourth["args"], "ArchiveClassesAtExit")


def test_a_jvm_that_refuses_the_options_starts_without_them(tmp_path):
    done = _open_session(tmp_path, UNKNOWN_JVM_OPTION="1")
    assert done["rows"] == 6
    assert not _flags(done["args"], "ArchiveClassesAtExit")
    assert len(done["files"]) == 1 and done["files"][0].endswith(".failed")  # not tried again
    again = _open_session(tmp_path)
    assert not _flags(again["args"], "ArchiveClassesAtExit") and again["files"] == done["files"]


def test_a_local_drivers_jvm_options_leave_the_users_choices_alone(tmp_path):
    ours = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
    assert local_java_options("", python_only=True) == ours
    assert local_java_options("", python_only=False) == "-XX:+UseSerialGC"  # a JVM that shuffles: C2
    assert local_java_options("-Dx=1", python_only=True) == f"-Dx=1 {ours}"
    assert local_java_options("-XX:+UseZGC", python_only=True) == "-XX:+UseZGC -XX:TieredStopAtLevel=1"
    assert local_java_options("-XX:TieredStopAtLevel=4", python_only=True) == "-XX:TieredStopAtLevel=4 -XX:+UseSerialGC"
    assert local_java_options("-XX:-TieredCompilation -XX:+UseG1GC", python_only=True) \
        == "-XX:-TieredCompilation -XX:+UseG1GC"
    assert local_java_options("-XX:+UseGCOverheadLimit", python_only=False).endswith("-XX:+UseSerialGC")

    mine = _open_session(tmp_path, {JAVA_OPTIONS: "-XX:+UseParallelGC -Dfoo=bar"}, ARCHIVE="0")
    assert mine["rows"] == 6
    assert {"-XX:+UseParallelGC", "-Dfoo=bar", "-XX:TieredStopAtLevel=1"} <= set(mine["args"])
    assert "-XX:+UseSerialGC" not in mine["args"]
    cleaning = _open_session(tmp_path, sampler="smote-enn", ARCHIVE="0")
    assert "-XX:+UseSerialGC" in cleaning["args"] and "-XX:TieredStopAtLevel=1" not in cleaning["args"]


def test_no_archive_when_a_jvm_already_runs_or_it_is_turned_off(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTSMOTE_CACHE_DIR", str(tmp_path))
    assert class_archive({}) is None  # this process's gateway already runs (the test session)
    assert not (tmp_path / "spark-class-archive").exists()


def test_archive_settings_keep_the_users_options_first(tmp_path, monkeypatch):
    from pyspark import SparkContext

    monkeypatch.setenv("DISTSMOTE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(SparkContext, "_gateway", None)
    for name in ("PYSPARK_SUBMIT_ARGS", "PYSPARK_GATEWAY_PORT", "SPARK_ENV_LOADED", "SPARK_REMOTE"):
        monkeypatch.delenv(name, raising=False)
    assert class_archive({}, enabled=False) is None

    plain = class_archive({})
    assert plain is not None and plain.creating
    mine = class_archive({JAVA_OPTIONS: "-Dfoo=bar -Xss4m"})
    assert mine is not None and mine.path != plain.path  # other options, other archive
    options = mine.java_options().split()
    assert options[:2] == ["-Dfoo=bar", "-Xss4m"]
    assert options[2] == f"-XX:ArchiveClassesAtExit={mine.partial}"
    assert class_archive({"spark.jars": "/x/extra.jar"}).path != plain.path  # other class path

    plain.path.write_bytes(b"archive")
    assert class_archive({}) == ClassArchive(plain.path, creating=False, options="")
    assert class_archive({}).java_options().split()[0] == f"-XX:SharedArchiveFile={plain.path}"

    # A partial archive of a run that no longer exists is removed; this run's is kept.
    stale = plain.path.with_name(f"{plain.path.stem}.999999999.partial")
    stale.write_bytes(b"x")
    live = plain.partial
    live.write_bytes(b"x")
    class_archive({})
    assert not stale.exists() and live.exists()

    # Archives no session used for 30 days go (an earlier Java's or Spark's); used ones stay.
    old = plain.path.with_name("0123456789abcdef0123.jsa")
    old.write_bytes(b"archive")
    os.utime(old, (time.time() - 31 * 86400,) * 2)
    os.utime(plain.path, (time.time() - 31 * 86400,) * 2)
    class_archive({})  # uses plain.path: its time is renewed
    assert not old.exists() and plain.path.exists()

    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--driver-java-options -Dx=1 pyspark-shell")
    assert class_archive({}) is None  # the user's options win over --conf: ours would not apply


def test_config_and_cache_directory(tmp_path, monkeypatch):
    assert JobConfig().spark.class_archive is True
    assert JobConfig(spark={"class_archive": False}).spark.class_archive is False
    monkeypatch.setenv("DISTSMOTE_CACHE_DIR", str(tmp_path / "c"))
    assert spark_archive.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("DISTSMOTE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert spark_archive.cache_dir() == tmp_path / "x" / "distsmote"


def test_a_prelaunched_jvm_becomes_the_session(tmp_path):
    """A job launches the driver JVM before it plans; the session is created on it, with
    the same options (one JVM launched), and the archive logic applies to it."""
    first = _open_session(tmp_path, PRELAUNCH="1")
    assert first["rows"] == 6 and first["launches"] == 1
    assert {"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"} <= set(first["args"])
    assert len(_flags(first["args"], "ArchiveClassesAtExit")) == 1
    second = _open_session(tmp_path, PRELAUNCH="1")
    assert second["launches"] == 1
    assert _flags(second["args"], "SharedArchiveFile") == [str(tmp_path / "spark-class-archive" / first["files"][0])]


def test_a_prelaunched_jvm_that_refuses_the_options_falls_back(tmp_path):
    done = _open_session(tmp_path, UNKNOWN_JVM_OPTION="1", PRELAUNCH="1")
    assert done["rows"] == 6 and done["launches"] == 2  # ours refused, then the user's settings
    assert not _flags(done["args"], "ArchiveClassesAtExit") and "-XX:+UseSerialGC" not in done["args"]
    assert len(done["files"]) == 1 and done["files"][0].endswith(".failed")


UNUSED = r"""
import json, sys
from distsmote.config import JobConfig
from distsmote.engines import spark_session
config = JobConfig(engine="spark", spark={"master": "local[1]"})
spark_session.prelaunch(config, progress=False)
launch = spark_session._LAUNCH
launch.thread.join()
proc = launch.gateway.proc
spark_session.cancel_prelaunch()  # the job failed before its session: the JVM goes
print(json.dumps({"pid": proc.pid, "exited": proc.poll() is not None,
                  "gateway": spark_session._LAUNCH is None}))
"""


def test_an_unused_prelaunched_jvm_is_stopped(tmp_path):
    env = _env(tmp_path)
    done = subprocess.run([sys.executable, "-c", UNUSED], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["exited"] and out["gateway"]
    assert not list((tmp_path / "spark-class-archive").glob("*.partial"))  # it wrote no archive


FAILING = r"""
import json, sys
import pyspark.java_gateway
procs = []
def recorded(*args, _launch=pyspark.java_gateway.launch_gateway, **kwargs):
    gateway = _launch(*args, **kwargs)
    procs.append(gateway.proc)
    return gateway
pyspark.java_gateway.launch_gateway = recorded
from distsmote.cli import main
code = main(["resample", "--input", sys.argv[1], "--output", sys.argv[2], "--label", "y", "--engine", "spark"])
print(json.dumps({"code": code, "launched": len(procs), "exited": all(p.poll() is not None for p in procs)}))
"""


def test_a_job_that_fails_before_its_session_stops_the_prelaunched_jvm(tmp_path):
    """Bad input is found after the JVM was launched: the job fails with the input's
    error and its JVM is gone when the job returns."""
    env = _env(tmp_path)
    done = subprocess.run([sys.executable, "-c", FAILING, str(tmp_path / "missing"), str(tmp_path / "out")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"code": 2, "launched": 1, "exited": True}, done.stderr[-3000:]
    assert "does not exist" in done.stderr
