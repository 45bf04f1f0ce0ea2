"""An asyncio HTTP/1.1 load generator: raw streams, keep-alive, fixed concurrency, bounded runs.

Each of ``concurrency`` connections sends one request, reads the whole response, and sends the
next on the same connection (closed-loop, like ``wrk``). A run stops at ``duration`` seconds or
``max_requests`` requests, whichever comes first; requests during ``warmup`` are not counted.
Latency is measured per request from write to last body byte; p50 and p99 use the nearest rank.

The parser reads what our apps send (status line, headers, ``Content-Length`` or chunked body) and
counts anything else, or any status >= 400, as an error rather than guessing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .stats import percentile

__all__ = ["LoadResult", "Request", "build_request", "read_response", "run_load"]

_TIMEOUT = 10.0
"""Seconds one request may take before its connection is counted as an error and reopened."""


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 as this generator understands it."""


@dataclass(frozen=True)
class Request:
    """Where to send what: ``host:port`` and the raw request bytes."""

    host: str
    port: int
    raw: bytes


def build_request(host: str, port: int, path: str, *, cookie: str | None = None) -> Request:
    """A keep-alive GET with an optional ``Cookie`` header, as raw bytes."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "User-Agent: sealed-bench", "Accept: */*"]
    if cookie is not None:
        lines.append(f"Cookie: {cookie}")
    return Request(host, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes, bool]:
    """Read one response: ``(status, headers, body, keep_alive)``. Header names are lower-cased.

    Repeated headers are joined with ``b", "`` except ``set-cookie``, whose values are joined with
    ``b"\\n"`` (they may contain commas).
    """
    head = await reader.readuntil(b"\r\n\r\n")  # one read for the whole head: the hot path
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {lines[0][:80]!r}")
    status = int(parts[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"bad header line {line[:80]!r}")
        key, val = name.strip().lower(), value.strip()
        if key in headers:
            headers[key] += (b"\n" if key == b"set-cookie" else b", ") + val
        else:
            headers[key] = val
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    elif b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:
        raise ProtocolError("response without Content-Length or chunked encoding")
    keep_alive = headers.get(b"connection", b"").lower() != b"close"
    return status, headers, body, keep_alive


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def p(self, q: float) -> float | None:
        """Latency percentile in milliseconds, or ``None`` with no successful requests."""
        return percentile(self.latencies, q) * 1000 if self.latencies else None

    def record(self, status: int, latency: float) -> None:
        """Count one answer: a success with its latency in seconds, or an error if ``status`` >= 400."""
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 400:
            self.errors += 1
        else:
            self.requests += 1
            self.latencies.append(latency)


async def _connection(
    request: Request, result: LoadResult, start_counting: float, stop: float, max_requests: int | None
) -> None:
    """One keep-alive connection in a closed loop until ``stop``; reconnects after an error.

    A single deadline (``stop`` plus a grace period) bounds the whole loop, instead of a timer per
    request: per-request ``wait_for`` would cost the generator a task per request.
    """
    clock = time.perf_counter
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    loop = asyncio.get_running_loop()
    sent = clock()
    try:
        async with asyncio.timeout_at(loop.time() + (stop - clock()) + _TIMEOUT):
            while clock() < stop and (max_requests is None or result.requests < max_requests):
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(request.host, request.port)
                sent = clock()
                try:
                    writer.write(request.raw)
                    status, _headers, _body, keep_alive = await read_response(reader)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError):
                    if sent >= start_counting:
                        result.errors += 1
                    writer.close()
                    writer = reader = None
                    continue
                done = clock()
                if sent >= start_counting and done <= stop:
                    result.record(status, done - sent)
                if not keep_alive:
                    writer.close()
                    writer = reader = None
    except TimeoutError:  # the server stopped answering: the request in flight is an error
        result.errors += 1
    except OSError:  # could not (re)connect
        result.errors += 1
    finally:
        if writer is not None:
            writer.close()


async def run_load(
    requests: Sequence[Request],
    *,
    concurrency: int,
    duration: float,
    warmup: float = 0.0,
    max_requests: int | None = None,
) -> LoadResult:
    """Drive ``concurrency`` keep-alive connections, spread round-robin over ``requests``.

    Several ``requests`` entries let one run spread connections over several servers (the
    scale-out scenario) or several cookies.
    """
    if concurrency < 1 or not requests:
        raise ValueError("need at least one connection and one request")
    result = LoadResult()
    begin = time.perf_counter()
    start_counting = begin + warmup
    stop = start_counting + duration
    tasks = [
        asyncio.create_task(_connection(requests[i % len(requests)], result, start_counting, stop, max_requests))
        for i in range(concurrency)
    ]
    await asyncio.gather(*tasks)
    result.seconds = min(time.perf_counter(), stop) - start_counting
    return result
