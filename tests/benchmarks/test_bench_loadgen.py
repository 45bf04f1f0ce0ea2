"""The load generator's HTTP handling, fed bytes directly (no server, no socket)."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.loadgen import LoadResult, ProtocolError, build_request, read_response, run_load


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def test_build_request_is_keep_alive_get_with_cookie() -> None:
    """The request is a plain HTTP/1.1 GET (keep-alive by default) carrying the cookie."""
    request = build_request("127.0.0.1", 8000, "/read", cookie="session=abc")
    assert request.raw == (
        b"GET /read HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: sealed-bench\r\nAccept: */*\r\n"
        b"Cookie: session=abc\r\n\r\n"
    )
    assert b"Cookie" not in build_request("127.0.0.1", 8000, "/").raw
    assert b"Connection" not in request.raw


async def test_reads_back_to_back_responses() -> None:
    """Two pipelined responses on one connection are read one at a time, bodies by Content-Length."""
    reader = _reader(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1; path=/\r\nset-cookie: b=2\r\n\r\nhello"
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nConnection: close\r\n\r\n"
    )
    status, headers, body, keep_alive = await read_response(reader)
    assert (status, body, keep_alive) == (200, b"hello", True)
    assert headers[b"set-cookie"] == b"a=1; path=/\nb=2"
    status, _, body, keep_alive = await read_response(reader)
    assert (status, body, keep_alive) == (404, b"", False)


async def test_reads_chunked_body() -> None:
    """A chunked body is reassembled, trailers skipped."""
    reader = _reader(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n"
    )
    status, _, body, _ = await read_response(reader)
    assert (status, body) == (200, b"abcde")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"SPDY/3 200 OK\r\n\r\n", id="not-http"),
        pytest.param(b"HTTP/1.1 abc OK\r\n\r\n", id="bad-status"),
        pytest.param(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", id="bad-header"),
        pytest.param(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody until close", id="no-length"),
    ],
)
async def test_refuses_what_it_does_not_understand(data: bytes) -> None:
    """Anything but well-formed HTTP/1.1 with a known body length is a protocol error, not a guess."""
    with pytest.raises(ProtocolError):
        await read_response(_reader(data))


async def test_truncated_response_is_an_incomplete_read() -> None:
    """A body shorter than its Content-Length raises, so the generator counts an error."""
    with pytest.raises(asyncio.IncompleteReadError):
        await read_response(_reader(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"))


def test_load_result_rate_and_percentiles() -> None:
    """Throughput is successes per counted second; percentiles come back in milliseconds."""
    result = LoadResult(requests=500, seconds=2.0, latencies=[i / 1000 for i in range(1, 101)])
    assert result.rps == 250.0
    assert result.p(50) == pytest.approx(50.0)
    assert result.p(99) == pytest.approx(99.0)
    assert LoadResult().rps == 0.0
    assert LoadResult().p(50) is None


async def test_run_load_refuses_empty_plans() -> None:
    """No connections or no requests is a usage error."""
    with pytest.raises(ValueError):
        await run_load([], concurrency=1, duration=0.1)
    with pytest.raises(ValueError):
        await run_load([build_request("127.0.0.1", 1, "/")], concurrency=0, duration=0.1)
