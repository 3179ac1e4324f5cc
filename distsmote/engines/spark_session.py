"""Creating the SparkSession of a CLI run or job, and the driver JVM's class archive.

A session that distsmote creates outside ``spark-submit`` launches its own driver JVM
(PySpark runs ``spark-submit`` as a child process).  Most of that JVM's start-up, and of
its first job, is loading and verifying Spark's classes.  The JVM can keep them in a
class-data archive (HotSpot's AppCDS, ``-XX:SharedArchiveFile``) and map it at the next
start: in a measured ``local[*]`` session, the start went from 4.7–5.4 s to 3.0–3.2 s
and the first job from 2.4–2.6 s to 1.3 s.

The first session for a given Java, Spark and class path writes the archive when its
JVM exits (``-XX:ArchiveClassesAtExit``: about 180 MB, once, and about 11 s at the end
of that run, which :class:`ClassArchive` waits for and reports); later sessions map it.
The archive is written under a temporary name and renamed, so a session never maps a
half-written file, and a JVM that cannot use an archive (another JVM, another class
path) ignores it silently.  It lives in ``$DISTSMOTE_CACHE_DIR`` (default
``$XDG_CACHE_HOME/distsmote`` or ``~/.cache/distsmote``); ``spark.class_archive: false``
in the job config turns it off.

A job launches that JVM before it plans (:func:`prelaunch`: the sampler's imports and
the input's footers on the driver meanwhile), and :func:`build_session` creates the
session on it; :func:`cancel_prelaunch` stops it if the job ends first.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("distsmote")

#: Where distsmote keeps caches (the class archive); default ``~/.cache/distsmote``.
CACHE_ENV = "DISTSMOTE_CACHE_DIR"
#: The driver's JVM options (``spark.driver.extraJavaOptions``).
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
#: Settings that change the driver's class path, and so which archive applies.
_CLASS_PATH_KEYS = ("spark.jars", "spark.jars.packages", "spark.jars.repositories",
                    "spark.driver.extraClassPath", "spark.driver.userClassPathFirst")
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
#: HotSpot's CDS messages off: a JVM that cannot map an archive just starts without it.
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
#: Archives (and failure marks) untouched for this many days are removed.
_UNUSED_DAYS = 30
#: How long the end of a run waits for its JVM to write the archive.
_DUMP_TIMEOUT = 300.0


def cache_dir() -> Path:
    """distsmote's cache directory: ``$DISTSMOTE_CACHE_DIR``, else the XDG cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "distsmote"


def _java() -> str | None:
    """The ``java`` that ``spark-class`` runs: ``$JAVA_HOME/bin/java``, else the PATH's."""
    home = os.environ.get("JAVA_HOME")
    found = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return os.path.realpath(found) if found and os.path.exists(found) else None


def _defaults_java_options() -> str:
    """``spark.driver.extraJavaOptions`` from ``spark-defaults.conf``, which ours replace."""
    from pyspark.find_spark_home import _find_spark_home

    conf_dir = os.environ.get("SPARK_CONF_DIR") or os.path.join(_find_spark_home(), "conf")
    try:
        lines = Path(conf_dir, "spark-defaults.conf").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        match = re.match(r"\s*spark\.driver\.extraJavaOptions(?:\s*=\s*|\s+)(.*)$", line)
        if match:
            return match.group(1).strip()
    return ""


def local_java_options(options: str, python_only: bool) -> str:
    """The user's driver JVM options, then :data:`SERIAL_GC` and, for a job whose JVM
    only schedules Python tasks, :data:`C1_ONLY`, each unless the user's options choose
    a collector or a compiler tier."""
    ours = [SERIAL_GC, C1_ONLY] if python_only else [SERIAL_GC]
    added = [flag for flag, theirs in ours if not re.search(theirs, options)]
    return " ".join(part for part in (options, *added) if part)


def launches_jvm() -> bool:
    """Whether a session created here launches its driver JVM with the options we set:
    no gateway runs (``spark-submit``, an earlier session, Spark Connect) and the user
    passes no driver options on ``PYSPARK_SUBMIT_ARGS``, which win over ``--conf``."""
    from pyspark import SparkContext

    submit_args = os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    return not (SparkContext._gateway is not None or os.environ.get("PYSPARK_GATEWAY_PORT")
                or os.environ.get("SPARK_ENV_LOADED") or os.environ.get("SPARK_REMOTE")
                or "--driver-java-options" in submit_args or JAVA_OPTIONS in submit_args)


def _key(java: str, conf: dict[str, str], options: str) -> str:
    """What the archive depends on: the JVM binary, Spark's jars, class path and options."""
    import pyspark
    from pyspark.find_spark_home import _find_spark_home

    jars = Path(_find_spark_home(), "jars")
    listing = sorted((p.name, p.stat().st_size) for p in jars.glob("*.jar")) if jars.is_dir() else []
    stat = os.stat(java)
    parts = [java, stat.st_size, stat.st_mtime_ns, pyspark.__version__, listing, options,
             [(k, conf.get(k)) for k in _CLASS_PATH_KEYS]]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


@dataclass
class ClassArchive:
    """The driver JVM's class archive for one session: mapped, or written at its end.

    Parameters
    ----------
    path : Path
        The archive.  It exists when ``creating`` is false.
    creating : bool
        The archive is missing: this session's JVM writes it (to :attr:`partial`) at its
        exit, and :meth:`finish` waits for that and renames it.
    options : str
        The driver's other JVM options (the user's, from the config or
        ``spark-defaults.conf``, and :func:`local_java_options`), kept first.
    """

    path: Path
    creating: bool
    options: str = ""

    @property
    def failed(self) -> Path:
        """Its mark: this archive could not be written or used; it is not tried again."""
        return self.path.with_suffix(".failed")

    @property
    def partial(self) -> Path:
        """Where this process's JVM writes the archive before the rename."""
        return self.path.with_name(f"{self.path.stem}.{os.getpid()}.partial")

    def java_options(self) -> str:
        """``spark.driver.extraJavaOptions``: the user's, then the archive's."""
        flag = (f"-XX:ArchiveClassesAtExit={self.partial}" if self.creating
                else f"-XX:SharedArchiveFile={self.path}")
        return " ".join(part for part in (self.options, flag, _QUIET) if part)

    def discard(self) -> None:
        """Remove an archive the JVM could not start with, and do not write it again."""
        self.path.unlink(missing_ok=True)
        self.partial.unlink(missing_ok=True)
        self.failed.touch()

    def finish(self, ok: bool) -> None:
        """After ``session.stop()``: end the driver JVM; on success keep its archive.

        The JVM writes the archive as it exits, so on success this stops PySpark's
        gateway (a later session in this process starts a new one) and waits for the
        JVM.  After a failure the gateway stays up (PySpark needs it to describe the
        error) until the interpreter exits, when the JVM is killed: nothing is written.
        """
        if not self.creating:
            return
        from pyspark import SparkContext

        gateway = SparkContext._gateway
        proc = getattr(gateway, "proc", None)
        if gateway is None or proc is None:
            return
        if not ok:
            atexit.register(self._abandon, proc)
            return
        SparkContext._gateway = SparkContext._jvm = None
        with contextlib.suppress(Exception):  # the JVM may already be gone
            gateway.shutdown()
        logger.info("saving the Spark driver's class archive %s (once: later sessions start faster)",
                    self.path)
        try:
            proc.stdin.close()  # PySpark's gateway server exits at the end of its input
            rc = proc.wait(timeout=_DUMP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = -1
        if rc == 0 and self.partial.is_file() and self.partial.stat().st_size > 0:
            os.replace(self.partial, self.path)
        else:
            self.discard()  # do not pay for a failing dump again

    def _abandon(self, proc: Any) -> None:
        # At exit, after the job reported its error: py4j threads still waiting on the
        # killed JVM would log a connection-reset traceback under that one line.
        logging.disable(logging.CRITICAL)
        proc.kill()
        proc.wait()
        self.partial.unlink(missing_ok=True)


def class_archive(conf: dict[str, str], enabled: bool = True) -> ClassArchive | None:
    """The class archive for a driver JVM this process is about to launch, if any.

    ``None`` (no archive) when it is turned off, when no JVM is launched here (a
    gateway already runs: ``spark-submit``, an earlier session), when the user passes
    driver options another way, when ``java`` is not found, when the cache directory
    cannot be written, or when writing an archive failed before for this key.
    """
    if not enabled or not launches_jvm():
        return None
    java = _java()
    if java is None:
        return None
    options = conf.get(JAVA_OPTIONS) or _defaults_java_options()
    directory = cache_dir() / "spark-class-archive"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(directory, os.W_OK) or any(c.isspace() or c in "\"'" for c in str(directory)):
        return None  # Spark splits the options on spaces
    archive = ClassArchive(directory / f"{_key(java, conf, options)}.jsa", creating=False, options=options)
    if archive.failed.exists():
        return None
    if archive.path.is_file():
        with contextlib.suppress(OSError):
            os.utime(archive.path)  # last used: archives unused for _UNUSED_DAYS are removed
    _prune(directory)
    archive.creating = not archive.path.is_file()
    return archive


def _prune(directory: Path) -> None:
    """Remove partial archives of runs that are gone, and archives no session has used
    for :data:`_UNUSED_DAYS` (left by an earlier Java or Spark)."""
    now = time.time()
    for stale in directory.glob("*.partial"):
        pid = stale.suffixes[-2].lstrip(".") if len(stale.suffixes) >= 2 else ""
        if not pid.isdigit() or not _alive(int(pid)):
            stale.unlink(missing_ok=True)
    for old in [*directory.glob("*.jsa"), *directory.glob("*.failed")]:
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > _UNUSED_DAYS * 86400:
                old.unlink()


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
        conf[JAVA_OPTIONS] = local_java_options(conf.get(JAVA_OPTIONS) or _defaults_java_options(),
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


__all__ = ["C1_ONLY", "CACHE_ENV", "PYTHON_ONLY_SAMPLERS", "SERIAL_GC", "ClassArchive", "build_session",
           "cache_dir", "cancel_prelaunch", "class_archive", "launches_jvm", "local_java_options", "prelaunch",
           "spark_session"]
