"""Open-loop load: requests start on a schedule, whatever the answers, and latency runs from the schedule.

The closed-loop generator (:func:`benchmarks.loadgen.run_load`) measures capacity, but a slow
answer holds back the next request on its connection, so its latencies leave out the wait a real
client would have seen (coordinated omission). :func:`run_open_loop` fixes the arrival times in
advance, ``rate`` per second (Poisson arrivals from a seeded generator, so every competitor gets
the same ones; or evenly spaced), and at each one sends a request on an idle keep-alive
connection, or on a new one while fewer than ``connections`` are open. Its latency runs from the
*scheduled* time to the last byte of the response: a late start, a connection being opened, all
of it counts. The arrivals are timed by :class:`benchmarks.clock.PreciseTimer`, not by the event
loop's millisecond timers.

Counted: the requests scheduled between ``warmup`` and ``warmup + duration``, however late they
finish (within ``timeout``; a slow tail is not cut off). An arrival that finds every connection
busy and the cap reached is not sent: it is counted as dropped and as an error. Not guaranteed:
that requests start on time when the generator's own process is short of CPU; the lateness of
each start is recorded, so a report can show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .clock import PreciseTimer
from .loadgen import LoadResult, ProtocolError, Request, read_response

__all__ = ["OpenLoopResult", "arrivals", "run_open_loop"]

Spacing = Literal["poisson", "even"]
_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class OpenLoopResult(LoadResult):
    """A :class:`LoadResult` whose latencies run from the schedule; ``seconds`` is the counted window."""

    offered: int = 0
    """Arrivals scheduled in the counted window."""
    dropped: int = 0
    """Of those, how many were not sent: every connection busy and no more allowed (also in ``errors``)."""
    lateness: list[float] = field(default_factory=list)
    """Seconds from each counted arrival's scheduled time to its dispatch: how far the generator fell behind."""


def arrivals(rate: float, seconds: float, *, spacing: Spacing = "poisson", seed: int = 0) -> list[float]:
    """Arrival offsets in ``[0, seconds)`` at ``rate`` per second: Poisson (seeded) or evenly spaced."""
    if rate <= 0 or seconds < 0:
        raise ValueError(f"need a positive rate and a duration >= 0, got {rate} and {seconds}")
    if spacing == "even":
        return [i / rate for i in range(int(seconds * rate))]
    rng = random.Random(seed)
    times: list[float] = []
    t = rng.expovariate(rate)
    while t < seconds:
        times.append(t)
        t += rng.expovariate(rate)
    return times


class _Run:
    """The state one open-loop run shares between its dispatcher and its requests."""

    def __init__(self, requests: Sequence[Request], connections: int, start_counting: float, timeout: float) -> None:
        self.requests = requests
        self.idle: list[list[_Connection]] = [[] for _ in requests]
        self.open = 0
        self.cap = connections
        self.start_counting = start_counting
        self.timeout = timeout
        self.result = OpenLoopResult()
        self.in_flight: set[asyncio.Task[None]] = set()

    def dispatch(self, index: int, due: float) -> None:
        """Start arrival ``index`` (scheduled at ``due``) on an idle or a new connection, or drop it."""
        counted = due >= self.start_counting
        if counted:
            self.result.lateness.append(max(0.0, time.monotonic() - due))
        which = index % len(self.requests)
        connection = self.take_idle(which)
        if connection is None:
            if self.open >= self.cap:
                if counted:
                    self.result.dropped += 1
                    self.result.errors += 1
                return
            self.open += 1
        task = asyncio.get_running_loop().create_task(self.send(self.requests[which], which, connection, due, counted))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    def take_idle(self, which: int) -> _Connection | None:
        """The most recently used idle connection to ``requests[which]`` that the server has not closed."""
        pool = self.idle[which]
        while pool:
            connection = pool.pop()
            if not connection[0].at_eof() and not connection[1].is_closing():
                return connection
            self.discard(connection)
        return None

    async def send(
        self, request: Request, which: int, connection: _Connection | None, due: float, counted: bool
    ) -> None:
        result = self.result
        try:
            async with asyncio.timeout(self.timeout):
                if connection is None:
                    connection = await asyncio.open_connection(request.host, request.port)
                reader, writer = connection
                writer.write(request.raw)
                status, _headers, _body, keep_alive = await read_response(reader)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError):
            if counted:
                result.errors += 1
            self.discard(connection)
            return
        if counted:
            result.record(status, time.monotonic() - due)
        if keep_alive:
            self.idle[which].append(connection)
        else:
            self.discard(connection)

    def discard(self, connection: _Connection | None) -> None:
        self.open -= 1
        if connection is not None:
            connection[1].close()

    async def close_idle(self) -> None:
        """Close every idle connection and wait until they are closed."""
        writers = [writer for pool in self.idle for _, writer in pool]
        for pool in self.idle:
            while pool:
                self.discard(pool.pop())
        for writer in writers:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def run_open_loop(
    requests: Sequence[Request],
    *,
    rate: float,
    duration: float,
    warmup: float = 0.0,
    connections: int = 64,
    spacing: Spacing = "poisson",
    seed: int = 0,
    timeout: float = 10.0,
) -> OpenLoopResult:
    """Offer ``rate`` requests per second for ``warmup + duration`` seconds, spread round-robin over ``requests``.

    At most ``connections`` connections are open at once; each request may take ``timeout``
    seconds, its connection included, before it counts as an error. Returns once every request
    sent has been answered or has timed out.
    """
    if connections < 1 or not requests:
        raise ValueError("need at least one connection and one request")
    schedule = arrivals(rate, warmup + duration, spacing=spacing, seed=seed)
    loop = asyncio.get_running_loop()
    begin = time.monotonic() + 0.005  # a moment to set up, so the first arrival is not already late
    run = _Run(requests, connections, begin + warmup, timeout)
    with PreciseTimer(loop) as timer:
        for index, offset in enumerate(schedule):
            due = begin + offset
            await timer.sleep_until(due)
            run.dispatch(index, due)
    if run.in_flight:
        await asyncio.wait(set(run.in_flight))  # each one ends by itself within ``timeout``
    await run.close_idle()
    result = run.result
    result.offered = sum(1 for offset in schedule if offset >= warmup)
    result.seconds = duration
    return result
