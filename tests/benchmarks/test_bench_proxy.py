"""The delaying proxy of the latency benchmark, against an echo server on loopback, and its precise timer."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import socketserver
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from benchmarks import proxy as proxy_module
from benchmarks.clock import PreciseTimer
from benchmarks.harness import run_async
from benchmarks.proxy import Counters, Route, main, serve_route
from benchmarks.proxy_process import running_proxy

HOST = "127.0.0.1"


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send back every chunk as it comes; close at EOF."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def _proxied(delay: float, target_port: int | None = None) -> AsyncIterator[tuple[int, Counters]]:
    """A proxy (in this loop) to an echo server, or to ``target_port``; yields its port and counters."""
    echo = await asyncio.start_server(_echo, HOST, 0)
    listening = socket.create_server((HOST, 0))
    with PreciseTimer() as timer:
        route = Route((HOST, target_port or echo.sockets[0].getsockname()[1]), delay, timer)
        proxy = await serve_route(listening, route)
        try:
            yield listening.getsockname()[1], route.counters
        finally:
            await asyncio.sleep(2 * delay + 0.01)  # the last ends pass through and both sides close
            proxy.close()
            echo.close()
            for server in (proxy, echo):  # uvloop's wait for open connections too: bounded, should one hang
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(server.wait_closed(), 2)


async def _finish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Send EOF and read whatever is left up to the other side's EOF."""
    writer.write_eof()
    rest = await reader.read()
    writer.close()
    await writer.wait_closed()
    return rest


async def test_forwards_bytes_both_ways_intact_and_in_order() -> None:
    """A megabyte in chunks of random sizes comes back from the echo server byte for byte."""
    rng = random.Random(7)
    chunks = [rng.randbytes(rng.randint(1, 20_000)) for _ in range(100)]
    sent = b"".join(chunks)
    async with _proxied(0.001) as (port, counters):
        reader, writer = await asyncio.open_connection(HOST, port)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        received = await reader.readexactly(len(sent))
        assert await _finish(reader, writer) == b""
    assert received == sent
    assert counters.connections == 1
    assert counters.bytes_up == counters.bytes_down == len(sent)


async def test_holds_each_chunk_at_least_the_delay_each_way() -> None:
    """A one-byte round trip through a 30 ms proxy takes at least 60 ms (and well under a second)."""
    async with _proxied(0.03) as (port, _):
        reader, writer = await asyncio.open_connection(HOST, port)
        for _ in range(3):
            started = time.monotonic()
            writer.write(b"x")
            assert await reader.readexactly(1) == b"x"
            assert 0.06 <= time.monotonic() - started < 1.0
        await _finish(reader, writer)


async def test_pipelined_chunks_each_get_the_delay_once() -> None:
    """Chunks sent 10 ms apart each come back after 2 x delay, not after the delays of those before them."""
    delay, count = 0.05, 8
    async with _proxied(delay) as (port, counters):
        reader, writer = await asyncio.open_connection(HOST, port)
        sent: list[float] = []

        async def send() -> None:
            for i in range(count):
                sent.append(time.monotonic())
                writer.write(b"%03d;" % i)
                await asyncio.sleep(0.01)

        async def receive() -> list[tuple[bytes, float]]:
            return [(await reader.readexactly(4), time.monotonic()) for _ in range(count)]

        _, echoed = await asyncio.gather(send(), receive())
        await _finish(reader, writer)
    assert [data for data, _ in echoed] == [b"%03d;" % i for i in range(count)]
    took = [arrived - started for (_, arrived), started in zip(echoed, sent, strict=True)]
    assert min(took) >= 2 * delay
    assert max(took) < 2 * delay + 0.1  # one sleep per chunk in the reading loop would make the last take 0.38 s
    assert counters.chunks_up == count


async def test_end_of_stream_travels_with_the_delay_then_both_sides_close() -> None:
    """The client's EOF reaches the echo server, which closes; the client sees EOF at least 2 x delay later."""
    async with _proxied(0.02) as (port, _):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"last words")
        started = time.monotonic()
        assert await _finish(reader, writer) == b"last words"
        assert time.monotonic() - started >= 0.04


async def test_server_closing_first_closes_the_client() -> None:
    """A server that answers and hangs up: the client gets the answer, then EOF."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        writer.close()

    greeter = await asyncio.start_server(greet, HOST, 0)
    async with _proxied(0.01, greeter.sockets[0].getsockname()[1]) as (port, _):
        reader, writer = await asyncio.open_connection(HOST, port)
        assert await asyncio.wait_for(reader.read(), 5) == b"bye"
        writer.close()
        await writer.wait_closed()
    greeter.close()
    await greeter.wait_closed()


async def test_unreachable_target_closes_the_client() -> None:
    """When the target refuses, the accepted connection is closed rather than left hanging."""
    with socket.create_server((HOST, 0)) as s:
        closed_port = s.getsockname()[1]  # nothing listens there once this block ends
    async with _proxied(0.001, closed_port) as (port, counters):
        reader, writer = await asyncio.open_connection(HOST, port)
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()
    assert counters.connections == 1


def test_data_read_before_the_target_answers_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvloop reads a client at once, however connection_made pauses it: what comes before the target is kept."""
    original = proxy_module._Side._connect

    async def slow_connect(self: proxy_module._Side) -> None:
        await asyncio.sleep(0.05)  # the delay (1 ms) is long over by the time the target answers
        await original(self)

    monkeypatch.setattr(proxy_module._Side, "_connect", slow_connect)

    async def hello_first() -> bytes:
        async with _proxied(0.001) as (port, _):
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(b"hello")
            try:
                return await asyncio.wait_for(reader.readexactly(5), 2)
            finally:
                await _finish(reader, writer)

    assert run_async(hello_first()) == b"hello"  # uvloop where installed, as the proxy process runs


async def test_precise_timer_is_never_early_and_keeps_order() -> None:
    """Callbacks run at or after their time, in time order, ties in scheduling order; none after close."""
    ran: list[tuple[str, float]] = []
    done = asyncio.Event()
    now = time.monotonic()
    plan = [("c", 0.03), ("a", 0.01), ("b", 0.02), ("b2", 0.02)]
    with PreciseTimer() as timer:
        for name, offset in plan:
            timer.call_at(now + offset, lambda name=name: ran.append((name, time.monotonic())))  # type: ignore[misc]
        timer.call_at(now + 0.03, done.set)
        await asyncio.wait_for(done.wait(), 5)
    timer.call_at(now, lambda: ran.append(("late", 0.0)))
    await asyncio.sleep(0.01)
    assert [name for name, _ in ran] == ["a", "b", "b2", "c"]
    for (name, at), (_, offset) in zip(ran, sorted(plan, key=lambda p: p[1]), strict=True):
        assert at >= now + offset, name


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@contextlib.contextmanager
def _threaded_echo() -> Iterator[int]:
    with socketserver.ThreadingTCPServer((HOST, 0), _EchoHandler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()


def _ping(port: int) -> float:
    """Seconds for one 4-byte round trip on a new connection to ``port``."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        started = time.monotonic()
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
        return time.monotonic() - started


def test_running_proxy_forwards_counts_changes_delay_and_stops(tmp_path: Path) -> None:
    """The proxy process forwards on its port, reports its counters, takes a new delay, and is gone after the block."""
    with _threaded_echo() as echo_port, running_proxy({"echo": (HOST, echo_port)}, 0.002, log_dir=tmp_path) as proxy:
        assert _ping(proxy.ports["echo"]) >= 0.004
        counters = proxy.counters()["echo"]
        assert (counters.connections, counters.chunks_up, counters.bytes_up) == (1, 1, 4)
        proxy.set_delay(0.05)
        assert _ping(proxy.ports["echo"]) >= 0.1
        assert proxy.delay == 0.05
    assert proxy.process.poll() is not None


def test_proxy_refuses_targets_off_loopback() -> None:
    """Only loopback targets: anything else is a usage error, before any socket is opened."""
    with pytest.raises(SystemExit):
        main(["--delay", "0.001", "--route", "db", "127.0.0.1:0", "10.0.0.5:5432"])
