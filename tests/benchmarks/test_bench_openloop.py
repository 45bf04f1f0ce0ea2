"""The open-loop generator against a tiny HTTP server on loopback: the schedule, not the answers, sets the pace."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from benchmarks.loadgen import build_request
from benchmarks.openloop import arrivals, run_open_loop

HOST = "127.0.0.1"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@contextlib.asynccontextmanager
async def _server(answer_after: float | None = 0.0) -> AsyncIterator[int]:
    """A keep-alive HTTP server answering every request after ``answer_after`` seconds (``None``: never)."""

    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                if answer_after is None:
                    await reader.read()  # until the client gives up and closes
                    break
                if answer_after:
                    await asyncio.sleep(answer_after)
                writer.write(RESPONSE)
        writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        for writer in writers:  # Python 3.11 leaves the accepted connections open
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def test_arrivals_have_the_rate_and_are_reproducible() -> None:
    """Poisson arrivals average the rate and repeat for a seed; even ones are exactly 1/rate apart."""
    poisson = arrivals(200, 10, seed=1)
    assert 1800 <= len(poisson) <= 2200
    assert poisson == sorted(poisson) and 0 <= poisson[0] and poisson[-1] < 10
    assert arrivals(200, 10, seed=1) == poisson != arrivals(200, 10, seed=2)
    assert arrivals(4, 1, spacing="even") == [0.0, 0.25, 0.5, 0.75]
    with pytest.raises(ValueError):
        arrivals(0, 1)


async def test_offers_the_requested_rate() -> None:
    """At 200 req/s for 0.3 s (after 0.05 s of warm-up) 60 requests are counted, all answered."""
    async with _server() as port:
        result = await run_open_loop(
            [build_request(HOST, port, "/")], rate=200, duration=0.3, warmup=0.05, spacing="even"
        )
    assert result.offered == 60
    assert 59 <= result.requests <= 60
    assert (result.errors, result.dropped) == (0, 0)
    assert result.rps == pytest.approx(200, rel=0.02)
    assert result.statuses == {200: result.requests}


async def test_latency_runs_from_the_scheduled_time() -> None:
    """Requests due while the generator was blocked for 0.1 s count the wait: their latency includes it."""
    async with _server() as port:
        asyncio.get_running_loop().call_later(0.05, time.sleep, 0.1)  # blocks the loop, as a busy process would
        result = await run_open_loop([build_request(HOST, port, "/")], rate=100, duration=0.4, spacing="even")
    assert result.errors == 0
    assert max(result.latencies) >= 0.08  # measured from the send, it would be a fraction of a millisecond
    assert max(result.lateness) >= 0.08
    assert min(result.latencies) < 0.02


async def test_busy_connections_and_the_cap_drop_arrivals() -> None:
    """With 2 connections and answers taking 0.3 s, 2 of 10 arrivals are sent and 8 dropped as errors."""
    async with _server(answer_after=0.3) as port:
        result = await run_open_loop(
            [build_request(HOST, port, "/")], rate=50, duration=0.2, connections=2, spacing="even"
        )
    assert (result.offered, result.requests, result.dropped, result.errors) == (10, 2, 8, 8)
    assert min(result.latencies) >= 0.3


async def test_unanswered_requests_time_out_as_errors() -> None:
    """A server that never answers: every request is an error after the timeout, and the run ends."""
    async with _server(answer_after=None) as port:
        started = time.monotonic()
        result = await run_open_loop(
            [build_request(HOST, port, "/")], rate=20, duration=0.2, spacing="even", timeout=0.2
        )
    assert (result.offered, result.requests, result.errors) == (4, 0, 4)
    assert time.monotonic() - started < 2


async def test_refuses_empty_plans() -> None:
    """No connections or no requests is a usage error."""
    with pytest.raises(ValueError):
        await run_open_loop([], rate=10, duration=0.1)
    with pytest.raises(ValueError):
        await run_open_loop([build_request(HOST, 1, "/")], rate=10, duration=0.1, connections=0)
