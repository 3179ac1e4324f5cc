"""The Spark driver JVM's class archive.

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
import time
from dataclasses import dataclass
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


def defaults_java_options() -> str:
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
    options = conf.get(JAVA_OPTIONS) or defaults_java_options()
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


__all__ = ["CACHE_ENV", "JAVA_OPTIONS", "ClassArchive", "cache_dir", "class_archive", "defaults_java_options",
           "launches_jvm"]
