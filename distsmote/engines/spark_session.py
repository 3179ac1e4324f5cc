"""Creating the SparkSession of a CLI run or job.

A session that distsmote creates outside ``spark-submit`` launches its own driver JVM
(PySpark runs ``spark-submit`` as a child process), with the class archive of
:mod:`distsmote.engines.spark_archive` and, with a ``local`` master, the JVM options of
:func:`local_java_options`.  A job launches that JVM before it plans
(:func:`prelaunch`: the sampler's imports and the input's footers on the driver
meanwhile), and :func:`build_session` creates the session on it;
:func:`cancel_prelaunch` stops it if the job ends first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from distsmote.engines.spark_archive import (
    JAVA_OPTIONS,
    ClassArchive,
    class_archive,
    defaults_java_options,
    launches_jvm,
)

logger = logging.getLogger("distsmote")

#: The driver JVM's options with a ``local`` master, where that JVM is the whole cluster
#: and lives for one job, each as (flag, pattern of the user's options that replace it).
#: The serial collector needs no threads of its own on a heap of a few GiB (SMOTETomek at
#: 1 M rows: same time, 2.9 GiB peak against 3.3).  C1 alone compiles soon enough for a
#: JVM that only schedules Python tasks (SMOTE at 20 M rows: 23.2 / 23.3 s against
#: 28.1 / 26.2 s), but a JVM that shuffles rows needs C2's code (SMOTETomek at 1 M rows:
#: 59.0 / 65.9 s against 54.5 / 62.5 s), so C1 is for :data:`PYTHON_ONLY_SAMPLERS`.
SERIAL_GC = ("-XX:+UseSerialGC", r"-XX:[+-]Use\w*GC\b")
C1_ONLY = ("-XX:TieredStopAtLevel=1", r"-XX:[+-]?Tiered")
#: Samplers whose Spark jobs read, generate in Python tasks and write: no shuffle, no
#: join (SMOTE over its driver budget joins, and then runs with C1's code too).
PYTHON_ONLY_SAMPLERS = frozenset({"smote", "smotenc", "smoten"})

def local_java_options(options: str, python_only: bool) -> str:
    """The user's driver JVM options, then :data:`SERIAL_GC` and, for a job whose JVM
    only schedules Python tasks, :data:`C1_ONLY`, each unless the user's options choose
    a collector or a compiler tier."""
    ours = [SERIAL_GC, C1_ONLY] if python_only else [SERIAL_GC]
    added = [flag for flag, theirs in ours if not re.search(theirs, options)]
    return " ".join(part for part in (options, *added) if part)


@contextlib.contextmanager
def spark_session(config: Any, *, verbose: bool = False, progress: bool = True) -> Iterator[Any]:
    """The active SparkSession (a notebook's, a test's), used as is and left running, or
    one created here and stopped at the end.

    A created session's log level is ``WARN`` with ``verbose``, else ``FATAL`` (task
    failures and retries are not printed: a job that fails says why in one line).  On
    Ctrl-C or SIGTERM its running jobs are cancelled first.
    """
    from pyspark.sql import SparkSession

    from distsmote.engines.spark_interrupts import spark_interrupted
    from distsmote.sessions import Terminated, _is_tty

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    session, archive = build_session(config, progress=progress, is_tty=_is_tty())
    session.sparkContext.setLogLevel("WARN" if verbose else "FATAL")
    ok = False
    try:
        yield session
        ok = True
    except (KeyboardInterrupt, Terminated):
        spark_interrupted(session)
        raise
    finally:
        session.stop()
        if archive is not None:
            archive.finish(ok)


@dataclass
class _Plan:
    """How this process creates its session: master, settings, and the user's own
    settings (``plain``) to fall back on if the JVM refuses ours."""

    app_name: str
    master: str | None
    conf: dict[str, str]
    plain: dict[str, str]
    archive: ClassArchive | None


def _plan(config: Any, *, progress: bool, is_tty: bool) -> _Plan:
    conf = dict(config.spark.conf)
    master = config.spark.master
    if not master and not os.environ.get("SPARK_ENV_LOADED") and "spark.master" not in conf:
        # Not under spark-submit.  local[*,4]: a failed task is retried (up to 4
        # attempts), as on a cluster; plain local[*] would fail the job at once.
        master = os.environ.get("MASTER", "local[*,4]")
    if master and master.startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        os.environ["PYSPARK_PYTHON"] = sys.executable  # local workers use this interpreter
    conf.setdefault("spark.python.daemon.module", "distsmote.engines.spark_daemon")  # no worker tracebacks
    conf.setdefault("spark.ui.showConsoleProgress", str(progress and is_tty).lower())  # Spark's stage bar
    plain = dict(conf)  # the user's settings, if the JVM refuses ours
    if (master or conf.get("spark.master", "")).startswith("local") and launches_jvm():
        conf[JAVA_OPTIONS] = local_java_options(conf.get(JAVA_OPTIONS) or defaults_java_options(),
                                                python_only=config.sampler.name in PYTHON_ONLY_SAMPLERS)
    archive = class_archive(conf, enabled=config.spark.class_archive)
    if archive is not None:
        conf[JAVA_OPTIONS] = archive.java_options()
    return _Plan(config.spark.app_name, master, conf, plain, archive)


@dataclass
class _Launch:
    """A driver JVM launched ahead of its session (:func:`prelaunch`)."""

    config: Any
    plan: _Plan
    thread: threading.Thread | None = None
    gateway: Any = None
    error: BaseException | None = None
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        try:
            from pyspark import SparkConf
            from pyspark.java_gateway import launch_gateway

            conf = SparkConf(loadDefaults=False).setAppName(self.plan.app_name)
            if self.plan.master:
                conf.setMaster(self.plan.master)
            gateway = launch_gateway(conf.setAll(list(self.plan.conf.items())))
        except BaseException as exc:  # noqa: BLE001 - the session's creation reports it
            self.error = exc
            return
        with self.lock:
            if self.cancelled:
                _kill(gateway, self.plan.archive)
            else:
                self.gateway = gateway


_LAUNCH: _Launch | None = None


def prelaunch(config: Any, *, progress: bool = True) -> None:
    """Launch the driver JVM of ``config``'s session now, in the background.

    A job calls this before its planning on the driver (building the sampler, which
    imports scikit-learn; reading the input's footers), so that the JVM starts on the
    other core meanwhile; :func:`spark_session` then creates the session on that JVM.
    Nothing happens when no JVM would be launched here (:func:`launches_jvm`).  Call
    :func:`cancel_prelaunch` when the job ends before its session is created.
    """
    global _LAUNCH
    from distsmote.sessions import _is_tty

    if _LAUNCH is not None or not launches_jvm():
        return
    launch = _Launch(config, _plan(config, progress=progress, is_tty=_is_tty()))
    launch.thread = threading.Thread(target=launch.run, name="distsmote-spark-driver", daemon=True)
    launch.thread.start()
    _LAUNCH = launch


def cancel_prelaunch() -> None:
    """Stop a JVM :func:`prelaunch` started that no session took (nothing otherwise).

    Waits for the launch to finish (about a second), so that no JVM outlives the job.
    """
    global _LAUNCH
    launch, _LAUNCH = _LAUNCH, None
    if launch is None:
        return
    with launch.lock:
        launch.cancelled = True  # a launch still running kills its JVM when it is up
        gateway, launch.gateway = launch.gateway, None
    if gateway is not None:
        _kill(gateway, launch.plan.archive)
    if launch.thread is not None:
        launch.thread.join()


def _kill(gateway: Any, archive: ClassArchive | None) -> None:
    """End an unused JVM at once (it writes no class archive)."""
    proc = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):
        gateway.shutdown()
    if proc is not None:
        proc.kill()
        proc.wait()
    if archive is not None and archive.creating:
        archive.partial.unlink(missing_ok=True)


def _take_launch(config: Any) -> _Launch | None:
    """The launch :func:`prelaunch` started for ``config``, once its JVM is up or failed."""
    global _LAUNCH
    launch = _LAUNCH
    if launch is None or launch.config is not config:
        return None
    _LAUNCH = None
    if launch.thread is not None:
        launch.thread.join()
    return launch


def build_session(config: Any, *, progress: bool, is_tty: bool) -> tuple[Any, ClassArchive | None]:
    """A new SparkSession for ``config.spark`` (under ``spark-submit``, its master), on
    the JVM :func:`prelaunch` started for ``config`` if it did.

    Returns the session and the :class:`ClassArchive` its driver uses (``None``: none);
    call ``archive.finish(ok)`` after stopping the session.
    """
    from pyspark import SparkContext

    launch = _take_launch(config)
    plan = launch.plan if launch is not None else _plan(config, progress=progress, is_tty=is_tty)
    try:
        if launch is not None and launch.error is not None:
            raise launch.error
        if launch is not None and launch.gateway is not None:
            SparkContext._gateway, SparkContext._jvm = launch.gateway, launch.gateway.jvm
        return _create(plan.app_name, plan.master, plan.conf), plan.archive
    except Exception:
        if plan.conf == plan.plain:
            raise
        # Another JVM, or a damaged archive, can stop the JVM at start.
        session = _create(plan.app_name, plan.master, plan.plain)  # fails too: not our options
        logger.warning("the Spark driver did not start with the options %r; started without them",
                       plan.conf[JAVA_OPTIONS])
        if plan.archive is not None:
            plan.archive.discard()  # not used again
        return session, None


def _create(app_name: str, master: str | None, conf: dict[str, str]) -> Any:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


__all__ = ["C1_ONLY", "PYTHON_ONLY_SAMPLERS", "SERIAL_GC", "build_session", "cancel_prelaunch",
           "local_java_options", "prelaunch", "spark_session"]
