"""Progress of long work: log lines, and a live bar on a terminal.

Every long step of a run (class statistics, planning, generation, the kNN join's
stages, the write) is wrapped in :func:`stage`.  A stage reports on the ``"distsmote"``
logger at ``INFO``:

* a line when it starts and one when it ends, with the elapsed seconds;
* while it runs, when its total is known: a line at every tenth of the way
  (``"generation: 30/100 tasks (30%), 4.1s"``), and at most every ``interval`` seconds
  a line saying it is still running (with task counts if it has a total or a ``poll``);
* on a terminal (``stderr`` is a TTY), a live bar instead of the running lines, when
  the stage has a total and ``bar`` is not ``False``.

Nothing is shown unless the ``"distsmote"`` logger is enabled for ``INFO`` (the CLI
enables it unless ``--quiet``; a library user opts in with ``logging``), so the library
stays silent by default.  Spark stages show Spark's own console progress bar instead of
ours (``spark.ui.showConsoleProgress``); their running lines come from ``poll``.

Use :func:`follow` to wait for Dask futures with the same reporting::

    with stage("class statistics"):
        stats = engine.label_stats(frame, label, features)

    rows = sum(follow(client.compute(writes), "write", unit="partitions", count=int))
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

logger = logging.getLogger("distsmote")

#: Width of the bar, in characters.
BAR_WIDTH = 30
#: Seconds between redraws of a bar (except the final one).
REDRAW_SECONDS = 0.2

_lock = threading.RLock()
_bars: list["Stage"] = []  # stages drawing a bar, innermost last


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def _fmt_count(n: int) -> str:
    return f"{n:,}"


class Stage:
    """A running stage of work; see :func:`stage`, which creates it.

    Attributes
    ----------
    name : str
        What is running ("class statistics", "kNN join: search", ...).
    total : int or None
        Units of work, if known.
    done : int
        Units finished so far.
    count : int
        A running sum of something the units produced (e.g. rows), shown as
        ``count_unit`` when non-zero.
    """

    def __init__(
        self,
        name: str,
        total: int | None,
        unit: str,
        count_unit: str,
        bar: bool,
        interval: float,
        poll: Callable[[], tuple[int, int] | None] | None,
        stream: TextIO,
    ) -> None:
        self.name = name
        self.total = total
        self.unit = unit
        self.count_unit = count_unit
        self.done = 0
        self.count = 0
        self.interval = interval
        self._poll = poll
        self._stream = stream
        self._bar = bar
        self._t0 = time.perf_counter()
        self._decile = 0
        self._last_line = self._t0
        self._last_draw = 0.0
        self._drawn = False

    # -- public ----------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        """Seconds since the stage started."""
        return time.perf_counter() - self._t0

    def set_total(self, total: int) -> None:
        """Set (or correct) the number of units once it is known."""
        with _lock:
            self.total = int(total)

    def advance(self, n: int = 1, count: int = 0) -> None:
        """Record ``n`` more finished units that produced ``count`` (e.g. rows)."""
        with _lock:
            self.done += int(n)
            self.count += int(count)
            if self._bar:
                self._draw(force=self.total is not None and self.done >= self.total)
                return
            if self.total:
                decile = min(10, 10 * self.done // self.total)
                if decile > self._decile:
                    self._decile = decile
                    self._line(self._progress_text())

    # -- rendering -------------------------------------------------------------------

    def _progress_text(self) -> str:
        done, total = self.done, self.total
        if (not total) and self._poll is not None:
            polled = self._poll()
            if polled:
                done, total = polled
        parts = []
        if total:
            parts.append(f"{_fmt_count(done)}/{_fmt_count(total)} {self.unit} ({100 * done // max(total, 1)}%)")
        elif done:
            parts.append(f"{_fmt_count(done)} {self.unit}")
        if self.count:
            parts.append(f"{_fmt_count(self.count)} {self.count_unit}")
        parts.append(f"{self.elapsed:.1f}s")
        return f"{self.name}: " + ", ".join(parts)

    def _line(self, text: str) -> None:
        """Log one line, keeping any bar on the terminal intact."""
        with _lock:
            _clear_bar()
            logger.info(text)
            self._last_line = time.perf_counter()
            _redraw_bar()

    def _render(self) -> str:
        total = max(self.total or 0, 1)
        filled = min(BAR_WIDTH, BAR_WIDTH * self.done // total)
        extra = f", {_fmt_count(self.count)} {self.count_unit}" if self.count else ""
        return (
            f"{self.name} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
            f"{_fmt_count(self.done)}/{_fmt_count(self.total or 0)} {self.unit}{extra}, {self.elapsed:.0f}s"
        )

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < REDRAW_SECONDS:
            return
        if _bars and _bars[-1] is not self:
            return  # an inner stage owns the terminal line
        self._last_draw = now
        self._stream.write("\r\033[K" + self._render())
        self._stream.flush()
        self._drawn = True

    def _tick(self) -> None:
        """Called by the ticker thread: refresh the bar, or log a still-running line."""
        with _lock:
            if self._bar:
                self._draw()
            elif time.perf_counter() - self._last_line >= self.interval:
                self._line(self._progress_text() + " (running)")


def _clear_bar() -> None:
    if _bars and _bars[-1]._drawn:
        top = _bars[-1]
        top._stream.write("\r\033[K")
        top._stream.flush()
        top._drawn = False


def _redraw_bar() -> None:
    if _bars:
        _bars[-1]._draw(force=True)


def _ticker(st: Stage, stop: threading.Event) -> None:
    period = REDRAW_SECONDS * 5 if st._bar else max(0.05, min(st.interval, 5.0) / 5)
    while not stop.wait(period):
        try:
            st._tick()
        except Exception:  # noqa: BLE001 - reporting must never break the work
            logger.debug("progress ticker failed", exc_info=True)
            return


@contextlib.contextmanager
def stage(
    name: str,
    total: int | None = None,
    unit: str = "tasks",
    *,
    count_unit: str = "rows",
    bar: bool | None = None,
    interval: float = 30.0,
    poll: Callable[[], tuple[int, int] | None] | None = None,
    stream: TextIO | None = None,
) -> Iterator[Stage]:
    """Report a stage of work: start and end lines, running lines or a live bar.

    Parameters
    ----------
    name : str
        What runs, as users should read it: ``"class statistics"``, ``"planning"``,
        ``"generation"``, ``"kNN join: search"``, ``"write"``.
    total : int, optional
        Units of work, if known (call :meth:`Stage.advance` as they finish).
    unit : str, default "tasks"
        What a unit is, for the messages ("tasks", "partitions").
    count_unit : str, default "rows"
        What the ``count`` of :meth:`Stage.advance` counts.
    bar : bool, optional
        Draw a live bar on ``stream``.  Default: when ``stream`` is a terminal and the
        stage has a total.  Pass ``False`` where another bar is shown (Spark's).
    interval : float, default 30
        Longest silence, in seconds, before a "still running" line (not with a bar).
    poll : callable, optional
        ``poll() -> (done, total)`` or ``None``: progress measured elsewhere (e.g.
        Spark's status tracker), shown in the running lines of a stage without a total.
    stream : file, optional
        Where the bar goes (default ``sys.stderr``).

    Yields
    ------
    Stage
        Call ``advance(n, count)`` as units finish, ``set_total(n)`` if the total is
        learnt late.

    Notes
    -----
    Silent (but still timing) unless the ``"distsmote"`` logger is enabled for
    ``INFO``.  Stages nest: the innermost stage with a bar owns the terminal line, and
    log lines clear and redraw it.  The end line says ``done`` or, if the block raised,
    ``stopped``; the exception propagates unchanged.
    """
    stream = sys.stderr if stream is None else stream
    enabled = logger.isEnabledFor(logging.INFO)
    if bar is None:
        bar = _is_tty(stream)
    draw = bool(enabled and bar and total)
    st = Stage(name, total, unit, count_unit, draw, interval, poll, stream)
    stop = threading.Event()
    ticker = None
    if enabled:
        st._line(f"{name}: started" + (f" ({_fmt_count(total)} {unit})" if total else ""))
        with _lock:
            if draw:
                _clear_bar()
                _bars.append(st)
                st._draw(force=True)
        ticker = threading.Thread(target=_ticker, args=(st, stop), name=f"progress: {name}", daemon=True)
        ticker.start()
    ok = False
    try:
        yield st
        ok = True
    finally:
        stop.set()
        if ticker is not None:
            ticker.join(timeout=5)
        if enabled:
            with _lock:
                if draw:
                    if ok:
                        st._draw(force=True)  # the final state, briefly
                    _clear_bar()
                    if st in _bars:
                        _bars.remove(st)
            summary = []
            if st.total:
                summary.append(f"{_fmt_count(st.done)}/{_fmt_count(st.total)} {unit}")
            elif st.done:
                summary.append(f"{_fmt_count(st.done)} {unit}")
            if st.count:
                summary.append(f"{_fmt_count(st.count)} {count_unit}")
            detail = f" ({', '.join(summary)})" if summary else ""
            verb = "done" if ok else "stopped"
            st._line(f"{name}: {verb} in {st.elapsed:.1f}s{detail}")


def follow(
    futures: Sequence[Any],
    name: str,
    *,
    unit: str = "partitions",
    count: Callable[[Any], int] | None = None,
    count_unit: str = "rows",
    each: Callable[[int, Any], None] | None = None,
    gather: bool = True,
    **stage_kwargs: Any,
) -> list[Any]:
    """Wait for Dask futures as a :func:`stage`, one unit per future.

    Parameters
    ----------
    futures : sequence of distributed.Future
        E.g. ``client.compute(frame.to_delayed())``: one future per partition.
    name, unit, count_unit
        As for :func:`stage`.
    count : callable, optional
        ``count(result) -> int`` added to the stage's count (e.g. rows written).
    each : callable, optional
        ``each(position, result)`` called as each result arrives, in completion order;
        it may raise to stop early.
    gather : bool, default True
        Fetch the results to the client.  ``False`` only waits (the results stay on the
        workers; ``count`` and ``each`` are not called) and returns ``[]``.
    **stage_kwargs
        Passed to :func:`stage` (``bar``, ``interval``, ``stream``).

    Returns
    -------
    list
        The results in the order of ``futures`` (``[]`` if ``gather`` is false).

    Notes
    -----
    On any error (a failed task, ``each`` raising, an interrupt) the futures that are
    still pending are cancelled and the error propagates.
    """
    from distributed import as_completed

    futures = list(futures)
    position = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    finished = False
    try:
        with stage(name, total=len(futures), unit=unit, count_unit=count_unit, **stage_kwargs) as st:
            for future in as_completed(futures, with_results=False):
                if not gather:
                    if future.status == "error":
                        future.result()  # raises the task's exception
                    st.advance()
                    continue
                value = future.result()
                i = position[future.key]
                results[i] = value
                if each is not None:
                    each(i, value)
                st.advance(1, count(value) if count is not None else 0)
        finished = True
    finally:
        if not finished and futures:
            with contextlib.suppress(Exception):
                futures[0].client.cancel(futures)
    return results if gather else []
