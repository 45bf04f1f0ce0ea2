"""A timer for asyncio that fires tens of microseconds after its time, where the event loop's own cannot.

asyncio's selector waits in whole milliseconds (``epoll_wait`` takes milliseconds and asyncio rounds
up), so ``loop.call_at`` fires up to a millisecond late; uvloop's timers count milliseconds too, and
one under a millisecond fires on the next loop turn, early. The latency benchmark adds 0.25 ms
each way and starts requests on a schedule, so it needs better: a :class:`PreciseTimer` keeps due
callbacks in a heap watched by one daemon thread, which sleeps with the operating system's
fine-grained timed wait and hands whatever is due to the loop with ``call_soon_threadsafe``.

Guaranteed: a callback never runs before its time (by :func:`time.monotonic`), and callbacks run
in order of their times, ties in the order they were scheduled. Not guaranteed: how late one runs;
usually tens of microseconds (the thread's wake-up, then the loop's next turn), more on a busy
machine or while the loop runs something long. On Linux the thread asks for a 1 ns timer slack
(``prctl``), where the default is 50 us.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

__all__ = ["PreciseTimer"]

_PR_SET_TIMERSLACK = 29


def _tighten_timer_slack() -> None:
    """Ask Linux for 1 ns of timer slack on the calling thread (best effort, nothing elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)


class PreciseTimer:
    """``call_at(when, callback)`` on ``loop`` with sub-millisecond precision; close it when done.

    ``when`` is a :func:`time.monotonic` time. The callbacks run on the loop's thread; the timer's
    own thread only waits and hands them over.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._heap: list[tuple[float, int, Callable[[], object]]] = []
        self._seq = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="precise-timer", daemon=True)
        self._thread.start()

    def call_at(self, when: float, callback: Callable[[], object]) -> None:
        """Run ``callback()`` on the loop once :func:`time.monotonic` reaches ``when``; never, once closed."""
        with self._changed:
            if self._closed:  # shutting down: what is still being scheduled is dropped, as what is pending
                return
            heapq.heappush(self._heap, (when, next(self._seq), callback))
            if self._heap[0][0] == when:  # the new earliest: the thread waits for a later time
                self._changed.notify()

    async def sleep_until(self, when: float) -> None:
        """Return once :func:`time.monotonic` has reached ``when`` (at once if it has)."""
        if time.monotonic() >= when:
            return
        future: asyncio.Future[None] = self._loop.create_future()

        def wake() -> None:
            if not future.done():  # not cancelled meanwhile
                future.set_result(None)

        self.call_at(when, wake)
        await future

    def close(self) -> None:
        """Stop the thread; callbacks not yet due are dropped."""
        with self._changed:
            self._closed = True
            self._heap.clear()
            self._changed.notify()
        self._thread.join()

    def __enter__(self) -> PreciseTimer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> None:
        _tighten_timer_slack()
        heap = self._heap
        with self._changed:
            while not self._closed:
                if not heap:
                    self._changed.wait()
                    continue
                wait = heap[0][0] - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                now = time.monotonic()
                due = []
                while heap and heap[0][0] <= now:
                    due.append(heapq.heappop(heap)[2])
                try:
                    self._loop.call_soon_threadsafe(self._run_all, due)
                except RuntimeError:  # the loop is closed: nobody is left to call back
                    return

    def _run_all(self, callbacks: list[Callable[[], object]]) -> None:
        """On the loop: run a batch of due callbacks; one that raises is reported and the rest still run."""
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:
                self._loop.call_exception_handler({"message": "PreciseTimer callback failed", "exception": exc})
