"""Start and stop REAL Dask / Spark standalone clusters on 127.0.0.1 for the tests.

Nothing here is mocked: the Dask scheduler and worker are the ``dask`` CLI of the
running interpreter's environment, the Spark master and worker are the JVM daemons
shipped inside the installed ``pyspark`` wheel (``$SPARK_HOME/bin/spark-class``).

Design rules
------------
* Every process is started in its own session / process group
  (``start_new_session=True``) and torn down with ``killpg`` (SIGTERM, then SIGKILL),
  so children (Dask nanny -> worker process, Spark worker -> executor JVM) go too.
* On Linux every daemon also gets ``PR_SET_PDEATHSIG=SIGKILL``: if the pytest process
  is SIGKILLed (e.g. a CI timeout) the daemons die with it instead of being orphaned.
  An ``atexit`` hook is a second safety net for abnormal interpreter exits.
* Every component logs to a file; if it does not come up within ``STARTUP_TIMEOUT``
  seconds, or exits early, a ``ClusterStartupError`` is raised that contains the
  tail of its log. Nothing is ever skipped.
* Everything binds to 127.0.0.1: ``--host``; Dask's HTTP servers pinned with
  ``--dashboard-address 127.0.0.1:0`` (``--no-dashboard`` alone still listens on
  0.0.0.0:8787); ``SPARK_LOCAL_IP`` (Spark's Jetty UIs otherwise bind 0.0.0.0); the
  master's REST server (fixed port 6066) is disabled. HTTP polling ignores
  ``*_proxy`` environment variables.

This module must not import ``distsmote`` (the package may not be importable yet)
and imports pyspark / distributed lazily, inside the functions that need them.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

HOST = "127.0.0.1"
STARTUP_TIMEOUT = float(os.environ.get("DISTSMOTE_TEST_STARTUP_TIMEOUT", "90"))
STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 60

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = Path(__file__).resolve().parent

# Names the file that arms fault points (distsmote._faults). conftest sets it, once per
# test session, in os.environ before any cluster starts, so every daemon, executor and
# worker inherits it; Spark executors also get it through spark.executorEnv.
FAULTS_FILE_ENV = "DISTSMOTE_FAULTS_FILE"

# Seconds each fixture took to come up; printed by conftest.pytest_terminal_summary.
STARTUP_TIMES: dict[str, float] = {}

# Environment variables that would silently redirect pyspark / spark-submit elsewhere
# (Spark Connect, an already running gateway, foreign submit args or config dirs).
_SPARK_ENV_TO_DROP = (
    "PYSPARK_SUBMIT_ARGS",
    "PYSPARK_GATEWAY_PORT",
    "PYSPARK_GATEWAY_SECRET",
    "SPARK_REMOTE",
    "SPARK_CONNECT_MODE_ENABLED",
    "SPARK_CONNECT_MODE",
    "MASTER",
    "SPARK_MASTER_URL",
    "HADOOP_CONF_DIR",
    "YARN_CONF_DIR",
)


class ClusterStartupError(RuntimeError):
    """A real cluster component did not come up; message carries its log tail."""


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (tiny race window, see docs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:  # pragma: no cover - diagnostic only
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def python_path_for_workers() -> str:
    """PYTHONPATH for remote Python processes (Dask workers, Spark executors).

    cloudpickle pickles module-level functions *by reference*; a function defined in a
    test module (imported by pytest as ``test_xxx`` with ``tests/`` on sys.path) or in
    ``distsmote`` (maybe not pip-installed) must be importable on the workers too.
    """
    parts = [str(REPO_ROOT), str(TESTS_DIR)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    # Never send 127.0.0.1 traffic through an http_proxy from the environment.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _make_preexec() -> Callable[[], None] | None:
    """preexec_fn that asks Linux to SIGKILL the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # pragma: no cover
        return None
    PR_SET_PDEATHSIG = 1
    sigkill = int(signal.SIGKILL)

    def _preexec() -> None:  # runs in the child between fork and exec
        prctl(PR_SET_PDEATHSIG, sigkill, 0, 0, 0)

    return _preexec


_PREEXEC = _make_preexec()


@dataclass(eq=False)
class ManagedProcess:
    """A daemon started in its own process group, logging to ``log_path``."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    _log_file: object = field(repr=False, default=None)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail(self.log_path, lines)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the whole process group, wait, then SIGKILL what is left."""
        pgid = self.popen.pid  # start_new_session=True -> pgid == pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        # The leader may be gone while children (nanny's worker, executors) linger.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and _group_exists(pgid):
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        if self._log_file is not None:
            with contextlib.suppress(Exception):
                self._log_file.close()
        _LIVE.discard(self)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True


_LIVE: set[ManagedProcess] = set()


@atexit.register
def _kill_leftovers() -> None:  # safety net; normal teardown goes through fixtures
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.stop(timeout=5)


def start_process(
    name: str, cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path
) -> ManagedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "ab", buffering=0)
    log_file.write(f"$ {' '.join(map(str, cmd))}\n".encode())
    popen = subprocess.Popen(
        [str(c) for c in cmd],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(cwd),
        start_new_session=True,
        preexec_fn=_PREEXEC,
    )
    proc = ManagedProcess(name=name, popen=popen, log_path=log_path, _log_file=log_file)
    _LIVE.add(proc)
    return proc


def _failure_report(what: str, procs: Iterable[ManagedProcess], extra_logs=()) -> str:
    parts = [what]
    for p in procs:
        state = "running" if p.alive() else f"exited with code {p.popen.returncode}"
        parts.append(
            f"\n----- {p.name} (pid {p.pid}, {state}); last lines of {p.log_path} -----\n"
            + p.log_tail()
        )
    for label, path in extra_logs:
        parts.append(f"\n----- {label}: last lines of {path} -----\n" + tail(path))
    return "\n".join(parts)


def wait_until(
    predicate: Callable[[], bool],
    what: str,
    procs: list[ManagedProcess],
    timeout: float = STARTUP_TIMEOUT,
    interval: float = 0.25,
) -> None:
    """Poll ``predicate`` until true; fail loudly on timeout or if a process exits."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        for p in procs:
            if not p.alive():
                raise ClusterStartupError(
                    _failure_report(f"{p.name} exited while waiting for: {what}", procs)
                )
        try:
            if predicate():
                return
        except ClusterStartupError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last one
            last_exc = exc
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:.0f}s waiting for: {what}"
            if last_exc is not None:
                msg += f" (last error: {last_exc!r})"
            raise ClusterStartupError(_failure_report(msg, procs))
        time.sleep(interval)


_BIND_ERRORS = ("Address already in use", "BindException", "Failed to bind", "EADDRINUSE")


def start_on_free_ports(
    name: str,
    n_ports: int,
    make_cmd: Callable[[list[int]], list],
    ready: Callable[[list[int]], bool],
    what: Callable[[list[int]], str],
    env: dict[str, str],
    log_path: Path,
    cwd: Path,
    also_watch: list[ManagedProcess] = (),
    attempts: int = 3,
) -> tuple[ManagedProcess, list[int]]:
    """Start a daemon on freshly picked ports and wait until ``ready(ports)``.

    ``free_port()`` closes its probe socket before the daemon binds, so another process
    can grab the port in between. If the daemon dies with a bind error we retry with
    new ports; any other failure is raised at once.
    """
    for attempt in range(1, attempts + 1):
        ports: list[int] = []
        while len(ports) < n_ports:
            p = free_port()
            if p not in ports:
                ports.append(p)
        proc = start_process(name, make_cmd(ports), env, log_path, cwd)
        try:
            wait_until(lambda: ready(ports), what(ports), [proc, *also_watch])
            return proc, ports
        except ClusterStartupError:
            bind_error = not proc.alive() and any(e in proc.log_tail(200) for e in _BIND_ERRORS)
            proc.stop()
            if not bind_error or attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


# ------------------------------------------------------------------------------ Dask


@dataclass
class DaskCluster:
    address: str  # "tcp://127.0.0.1:<port>"
    scheduler: ManagedProcess
    worker: ManagedProcess  # the `dask worker` CLI: N_WORKERS nannies, one worker process each
    log_dir: Path
    n_workers: int = 2

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.scheduler, self.worker]

    def wait_for_workers(self, client, n: int | None = None, gone: Iterable[str] = (),
                         timeout: float = STARTUP_TIMEOUT) -> dict:
        """Wait until ``n`` (default: all) workers are registered and none of ``gone``.

        A killed worker process is restarted by its nanny under a new address; tests
        that kill one call this so the next test sees the full cluster again.
        Returns ``scheduler_info()["workers"]``.
        """
        n = self.n_workers if n is None else n
        gone = set(gone)
        state: dict = {}

        def ready() -> bool:
            workers = client.scheduler_info(n_workers=-1)["workers"]
            state["workers"] = workers
            return len(workers) >= n and not gone.intersection(workers)

        wait_until(ready, f"{n} Dask workers registered (none of {sorted(gone)})",
                   self.processes, timeout=timeout)
        return state["workers"]

    def stop(self) -> None:
        # Worker first so it does not spend its death-timeout reconnecting.
        self.worker.stop()
        self.scheduler.stop()


DASK_WORKERS = 2  # worker processes (each under a nanny that restarts it if it dies)


def start_dask_cluster(base_dir: Path) -> DaskCluster:
    """``dask scheduler`` + ``dask worker`` (2 processes x 1 thread, 3 GiB each) on 127.0.0.1.

    Two worker processes, so a test can kill one mid-job and the job finishes on the
    other; each runs under a nanny, which starts a replacement when its worker dies.
    """
    from distributed import Client

    t0 = time.monotonic()
    dask_cli = Path(sys.executable).parent / "dask"
    if not dask_cli.exists():
        raise ClusterStartupError(f"dask CLI not found next to {sys.executable}: {dask_cli}")
    base_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = python_path_for_workers()
    env.pop("DASK_SCHEDULER_ADDRESS", None)

    sched_file = base_dir / "scheduler.json"

    def sched_cmd(ports: list[int]) -> list:
        sched_file.unlink(missing_ok=True)
        return [
            dask_cli, "scheduler",
            "--host", HOST,
            "--port", str(ports[0]),
            # --no-dashboard only drops the Bokeh app: the HTTP server (health,
            # metrics routes) still starts, by default on 0.0.0.0:8787. Pin it.
            "--no-dashboard",
            "--dashboard-address", f"{HOST}:0",
            "--scheduler-file", str(sched_file),  # written once it is listening
        ]

    def sched_ready(ports: list[int]) -> bool:
        if not sched_file.exists():
            return False
        info = json.loads(sched_file.read_text() or "{}")
        return info.get("address") == f"tcp://{HOST}:{ports[0]}"

    scheduler, (port,) = start_on_free_ports(
        "dask-scheduler", 1, sched_cmd, sched_ready,
        lambda ports: f"Dask scheduler listening on tcp://{HOST}:{ports[0]}",
        env, base_dir / "scheduler.log", base_dir,
    )
    address = f"tcp://{HOST}:{port}"
    worker: ManagedProcess | None = None
    try:
        worker = start_process(
            "dask-worker",
            [
                dask_cli, "worker", address,
                "--nworkers", str(DASK_WORKERS),
                "--nthreads", "1",
                "--host", HOST,
                "--memory-limit", "3GiB",
                "--no-dashboard",
                "--dashboard-address", f"{HOST}:0",  # same as scheduler: not 0.0.0.0
                "--local-directory", str(base_dir / "worker-space"),
                "--death-timeout", "60",
                # Imported before the worker takes messages: a worker that the fault tests'
                # nanny restarts otherwise unpickles its first message while a task thread
                # imports dask.dataframe, and Python 3.11's import machinery can then fail
                # with KeyError('dask.dataframe'), closing the worker and its nanny.
                "--preload", "dask.dataframe",
            ],
            env,
            base_dir / "worker.log",
            cwd=base_dir,
        )
        procs = [scheduler, worker]
        # Client() itself may block up to its timeout; do it in a helper thread so the
        # liveness checks in wait_until keep running and a crash is reported at once.
        result: dict[str, object] = {}

        def _wait_for_worker() -> None:
            try:
                with Client(address, timeout="30s", set_as_default=False) as c:
                    c.wait_for_workers(DASK_WORKERS, timeout=STARTUP_TIMEOUT)
                    result["n"] = len(c.scheduler_info(n_workers=-1)["workers"])
            except BaseException as exc:  # noqa: BLE001
                result["error"] = exc

        th = threading.Thread(target=_wait_for_worker, name="dask-wait-for-worker", daemon=True)
        th.start()

        def _done() -> bool:
            if "error" in result:
                raise ClusterStartupError(
                    _failure_report(f"waiting for the Dask worker failed: {result['error']!r}", procs)
                )
            return "n" in result

        wait_until(_done, f"{DASK_WORKERS} Dask workers registered at the scheduler", procs,
                   timeout=STARTUP_TIMEOUT + 10)
        th.join(timeout=5)
    except BaseException:
        if worker is not None:
            worker.stop()
        scheduler.stop()
        raise
    STARTUP_TIMES["dask_cluster"] = time.monotonic() - t0
    return DaskCluster(address=address, scheduler=scheduler, worker=worker, log_dir=base_dir,
                       n_workers=DASK_WORKERS)


# ----------------------------------------------------------------------------- Spark


def spark_home() -> str:
    import pyspark

    return os.path.dirname(os.path.abspath(pyspark.__file__))


@dataclass
class SparkCluster:
    master_url: str  # "spark://127.0.0.1:<port>"
    spark_home: str
    spark_submit: str  # $SPARK_HOME/bin/spark-submit
    env: dict[str, str]  # environment for spark-submit & co.
    master_webui_url: str
    master: ManagedProcess
    worker: ManagedProcess
    base_dir: Path
    # Advertised slots / memory of the single worker (see start_spark_cluster).
    worker_cores: int = 4
    worker_memory: str = "3g"

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.master, self.worker]

    def master_state(self) -> dict:
        with _no_proxy_opener().open(f"{self.master_webui_url}/json/", timeout=5) as r:
            return json.load(r)

    def submit_args(self, *extra: str) -> list[str]:
        """``spark-submit`` argv prefix for an app that fits NEXT TO the session's app.

        The ``spark`` fixture's app holds 2 of the worker's 4 slots and 2g of its 3g
        for the whole test session; a submitted app asking for more would wait forever
        ("Initial job has not accepted any resources").
        """
        return [
            self.spark_submit,
            "--master", self.master_url,
            "--conf", "spark.cores.max=2",
            "--conf", "spark.executor.cores=2",
            "--conf", "spark.executor.memory=768m",
            "--conf", "spark.driver.memory=1g",
            "--conf", f"spark.driver.host={HOST}",
            "--conf", f"spark.driver.bindAddress={HOST}",
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.ui.showConsoleProgress=false",
            "--conf", f"spark.pyspark.python={sys.executable}",
            "--conf", f"spark.pyspark.driver.python={sys.executable}",
            "--conf", f"spark.executorEnv.PYTHONPATH={self.env['PYTHONPATH']}",
            *(["--conf", f"spark.executorEnv.{FAULTS_FILE_ENV}={self.env[FAULTS_FILE_ENV]}"]
              if FAULTS_FILE_ENV in self.env else []),
            "--conf", f"spark.local.dir={self.base_dir / 'submit-local'}",
            "--conf", "spark.sql.session.timeZone=UTC",
            *extra,
        ]

    def worker_logs(self) -> list[tuple[str, Path]]:
        """(label, path) of executor stdout/stderr files under SPARK_WORKER_DIR."""
        work = self.base_dir / "worker-work"
        out = []
        for p in sorted(work.glob("app-*/*/std*")):
            out.append((f"executor {p.parent.parent.name}/{p.parent.name} {p.name}", p))
        return out[-4:]

    def stop(self) -> None:
        self.worker.stop()
        self.master.stop()


def spark_env(base_dir: Path) -> dict[str, str]:
    """Environment for Spark daemons and spark-submit: everything on 127.0.0.1."""
    home = spark_home()
    env = {k: v for k, v in os.environ.items() if k not in _SPARK_ENV_TO_DROP}
    conf_dir = base_dir / "conf"  # empty: no stray spark-defaults.conf / spark-env.sh
    conf_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("worker-work", "logs", "pids", "local"):
        (base_dir / sub).mkdir(parents=True, exist_ok=True)
    env.update(
        SPARK_HOME=home,
        SPARK_CONF_DIR=str(conf_dir),
        SPARK_LOCAL_IP=HOST,  # also makes every Jetty UI bind 127.0.0.1, not 0.0.0.0
        SPARK_MASTER_HOST=HOST,
        SPARK_PUBLIC_DNS=HOST,
        SPARK_WORKER_DIR=str(base_dir / "worker-work"),
        SPARK_LOG_DIR=str(base_dir / "logs"),
        SPARK_PID_DIR=str(base_dir / "pids"),
        SPARK_LOCAL_DIRS=str(base_dir / "local"),
        SPARK_DAEMON_MEMORY="512m",
        # The master's REST submission server listens on the FIXED port 6066 by
        # default: two test sessions on one machine would collide. Not needed.
        # spark.port.maxRetries=0: on a port clash the daemon must fail (and we retry
        # with new ports) instead of silently binding port+1, behind our back.
        SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false -Dspark.port.maxRetries=0",
        SPARK_WORKER_OPTS="-Dspark.port.maxRetries=0",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PYTHONPATH=python_path_for_workers(),
        PYTHONUNBUFFERED="1",
    )
    return env


def start_spark_cluster(base_dir: Path) -> SparkCluster:
    """Spark standalone master + one worker, from the pyspark wheel's own jars.

    The worker advertises 4 cores (slots; the machine may have fewer) and 3g so that the
    session-wide ``spark`` app (2 cores, 2g executor) and one ``spark-submit`` app
    (2 cores, <=1g executor) can run at the same time. Standalone mode otherwise gives
    the first app every core and a second app never gets an executor.
    """
    t0 = time.monotonic()
    home = spark_home()
    spark_class = Path(home) / "bin" / "spark-class"
    spark_submit = Path(home) / "bin" / "spark-submit"
    for script in (spark_class, spark_submit):
        if not script.exists():
            raise ClusterStartupError(f"{script} not found (pyspark wheel incomplete?)")
        if not os.access(script, os.X_OK):  # some installers drop the exec bit
            script.chmod(script.stat().st_mode | 0o755)
    base_dir.mkdir(parents=True, exist_ok=True)
    env = spark_env(base_dir)
    worker_cores, worker_memory = 4, "3g"

    opener = _no_proxy_opener()

    def master_json(ui_port: int) -> dict:
        with opener.open(f"http://{HOST}:{ui_port}/json/", timeout=3) as r:
            return json.load(r)

    def master_ready(ports: list[int]) -> bool:
        state = master_json(ports[1])
        # Check "url" too: we must be polling OUR master, on the port we asked for.
        return state.get("status") == "ALIVE" and state.get("url") == f"spark://{HOST}:{ports[0]}"

    master, (master_port, master_ui) = start_on_free_ports(
        "spark-master", 2,
        lambda ports: [
            spark_class, "org.apache.spark.deploy.master.Master",
            "--host", HOST,
            "--port", str(ports[0]),
            "--webui-port", str(ports[1]),
        ],
        master_ready,
        lambda ports: f"Spark master ALIVE at spark://{HOST}:{ports[0]} (web UI port {ports[1]})",
        env, base_dir / "logs" / "master.log", base_dir,
    )
    master_url = f"spark://{HOST}:{master_port}"
    webui = f"http://{HOST}:{master_ui}"
    worker: ManagedProcess | None = None
    try:
        def worker_registered(_ports: list[int]) -> bool:
            state = master_json(master_ui)
            alive = state.get("aliveworkers")
            if alive is None:  # older JSON layouts: count workers in state ALIVE
                alive = sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")
            return int(alive) >= 1

        worker, _ = start_on_free_ports(
            "spark-worker", 1,
            lambda ports: [
                spark_class, "org.apache.spark.deploy.worker.Worker", master_url,
                "--host", HOST,
                "--cores", str(worker_cores),
                "--memory", worker_memory,
                "--webui-port", str(ports[0]),
                "--work-dir", env["SPARK_WORKER_DIR"],
            ],
            worker_registered,
            lambda ports: f"1 Spark worker ALIVE at {master_url}",
            env, base_dir / "logs" / "worker.log", base_dir,
            also_watch=[master],
        )
    except BaseException:
        if worker is not None:
            worker.stop()
        master.stop()
        raise
    STARTUP_TIMES["spark_cluster"] = time.monotonic() - t0
    return SparkCluster(
        master_url=master_url,
        spark_home=home,
        spark_submit=str(spark_submit),
        env=env,
        master_webui_url=webui,
        master=master,
        worker=worker,
        base_dir=base_dir,
        worker_cores=worker_cores,
        worker_memory=worker_memory,
    )


# In-process SparkSession --------------------------------------------------------------

SESSION_CONF: dict[str, str] = {
    "spark.app.name": "distsmote-tests",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.executor.memory": "2g",
    "spark.driver.memory": "2g",
    # 2 of the worker's 4 slots: leaves room for spark-submit tests (see above).
    "spark.cores.max": "2",
    "spark.executor.cores": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Fail loudly instead of silently falling back to the slow non-Arrow path.
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.driver.host": HOST,
    "spark.driver.bindAddress": HOST,
    "spark.python.worker.reuse": "true",
    "spark.python.worker.faulthandler.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    # Standalone's default, pinned: the fault tests need a failed task to be retried.
    "spark.task.maxFailures": "4",
}

# os.environ keys the in-process driver needs (launch_gateway copies os.environ).
_DRIVER_ENV_KEYS = (
    "SPARK_HOME",
    "SPARK_CONF_DIR",
    "SPARK_LOCAL_IP",
    "PYSPARK_PYTHON",
    "PYSPARK_DRIVER_PYTHON",
)


@dataclass
class SparkSessionHandle:
    session: object  # pyspark.sql.SparkSession
    driver_log: Path
    _gateway_proc: subprocess.Popen | None
    _saved_env: dict[str, str | None]

    def stop(self) -> None:
        from pyspark import SparkContext

        try:
            self.session.stop()
        finally:
            gw = SparkContext._gateway
            with contextlib.suppress(Exception):
                if gw is not None:
                    gw.shutdown()
            SparkContext._gateway = None
            SparkContext._jvm = None
            proc = self._gateway_proc
            if proc is not None and proc.poll() is None:
                # The driver JVM exits when its stdin pipe closes.
                with contextlib.suppress(Exception):
                    proc.stdin.close()
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            for k, v in self._saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def start_spark_session(cluster: SparkCluster, base_dir: Path) -> SparkSessionHandle:
    """One SparkSession for the whole test session, on the standalone cluster.

    The driver JVM is launched explicitly via ``pyspark.java_gateway.launch_gateway`` so
    its stdout/stderr go to ``driver.log`` (instead of the pytest process' captured
    fds) and so teardown can make sure that JVM is gone.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    t0 = time.monotonic()
    if SparkContext._active_spark_context is not None or SparkContext._gateway is not None:
        raise ClusterStartupError(
            "a SparkContext/JVM gateway already exists in this process; the `spark` "
            "fixture must be the only place that creates one"
        )
    base_dir.mkdir(parents=True, exist_ok=True)
    (base_dir / "local").mkdir(exist_ok=True)

    saved = {k: os.environ.get(k) for k in (*_DRIVER_ENV_KEYS, *_SPARK_ENV_TO_DROP)}
    for k in _SPARK_ENV_TO_DROP:
        os.environ.pop(k, None)
    for k in _DRIVER_ENV_KEYS:
        os.environ[k] = cluster.env[k]

    conf = SparkConf(loadDefaults=False)
    conf.setMaster(cluster.master_url)
    for k, v in SESSION_CONF.items():
        conf.set(k, v)
    conf.set("spark.pyspark.python", sys.executable)
    conf.set("spark.pyspark.driver.python", sys.executable)
    conf.set("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
    conf.set("spark.executorEnv.PYTHONPATH", cluster.env["PYTHONPATH"])
    if FAULTS_FILE_ENV in cluster.env:  # arm faults in executors (see conftest `faults`)
        conf.set(f"spark.executorEnv.{FAULTS_FILE_ENV}", cluster.env[FAULTS_FILE_ENV])
    conf.set("spark.local.dir", str(base_dir / "local"))
    conf.set("spark.sql.warehouse.dir", str(base_dir / "warehouse"))

    driver_log = base_dir / "driver.log"
    log_file = open(driver_log, "ab", buffering=0)
    gateway = None
    try:
        gateway = launch_gateway(
            conf, popen_kwargs={"stdout": log_file, "stderr": subprocess.STDOUT}
        )
        SparkContext._ensure_initialized(gateway=gateway, conf=conf)
        builder = SparkSession.builder.master(cluster.master_url)
        for k, v in conf.getAll():
            builder = builder.config(k, v)
        session = builder.getOrCreate()
    except BaseException as exc:
        if gateway is not None and getattr(gateway, "proc", None) is not None:
            with contextlib.suppress(Exception):
                gateway.proc.kill()
        SparkContext._gateway = None
        SparkContext._jvm = None
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        raise ClusterStartupError(
            _failure_report(
                f"could not create the SparkSession on {cluster.master_url}: {exc!r}",
                cluster.processes,
                [("driver", driver_log)],
            )
        ) from exc
    finally:
        log_file.close()  # the child holds its own copy of the fd

    handle = SparkSessionHandle(
        session=session,
        driver_log=driver_log,
        _gateway_proc=getattr(gateway, "proc", None),
        _saved_env=saved,
    )
    try:
        session.sparkContext.setLogLevel("WARN")
        _warm_up(session, cluster, driver_log)
    except BaseException:
        handle.stop()
        raise
    STARTUP_TIMES["spark (session + first executor)"] = time.monotonic() - t0
    return handle


def _warm_up(session, cluster: SparkCluster, driver_log: Path) -> None:
    """Run one tiny Python job so a missing executor fails here, loudly, not hangs.

    Without an executor (not enough free cores/memory on the worker, executor crash, bad
    Python) Spark just logs "Initial job has not accepted any resources" forever.
    """
    sc = session.sparkContext
    tag = "distsmote-fixture-warmup"
    timed_out = threading.Event()

    def _cancel() -> None:
        timed_out.set()
        with contextlib.suppress(Exception):
            sc.cancelJobsWithTag(tag)

    timer = threading.Timer(STARTUP_TIMEOUT, _cancel)
    timer.daemon = True
    sc.addJobTag(tag)  # thread-local; removed again below
    timer.start()
    try:
        got = sc.parallelize(range(4), 2).map(lambda x: x + 1).sum()
        if got != 10:
            raise ClusterStartupError(f"warm-up job returned {got!r}, expected 10")
    except Exception as exc:
        reason = (
            f"timed out after {STARTUP_TIMEOUT:.0f}s: no executor ran the warm-up job"
            if timed_out.is_set()
            else f"warm-up job failed: {exc!r}"
        )
        raise ClusterStartupError(
            _failure_report(
                f"SparkSession on {cluster.master_url}: {reason}",
                cluster.processes,
                [("driver", driver_log), *cluster.worker_logs()],
            )
        ) from exc
    finally:
        timer.cancel()
        with contextlib.suppress(Exception):
            sc.removeJobTag(tag)
