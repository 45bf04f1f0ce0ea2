"""J1 and J2: a flood of invalid cookies costs bounded work per request and leaves no memory behind."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

import sealed_sessions._envelope as envelope_module
import sealed_sessions._sealer as sealer_module
from sealed_sessions import SessionMiddleware
from sealed_sessions.testing import seal
from tests.helpers import KEY_A, KEY_B, START, FakeClock, call, cookie


def _invalid_cookies() -> list[tuple[str, str]]:
    """One of each kind of bad cookie from catalogue section A, as (kind, value)."""
    good = seal(KEY_A, {"user": 1}, issued_at=START)
    other_key = seal(KEY_B, {"user": 1}, issued_at=START)
    flipped = good[:40] + ("A" if good[40] != "A" else "B") + good[41:]
    return [
        ("garbage", "invalid"),
        ("alphabet", "<!--!@#+/" * 8),
        ("short", "AQ"),
        ("truncated", good[:-1]),
        ("appended", good + "AAAA"),
        ("flipped", flipped),
        ("other_key", other_key),
        ("version", "Aw" + good[2:]),
        ("oversized", "A" * 4097),
        ("megabyte", "A" * 1_000_000),
        ("expired", seal(KEY_A, {"user": 1}, issued_at=START - 10**7, max_age=60)),
    ]


class Counter:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return func(*args, **kwargs)

        return counted


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    counter = Counter()
    for module, name, label in [
        (envelope_module, "box_open", "mac_check"),
        (envelope_module, "b64decode_strict", "b64"),
        (sealer_module, "decode", "json"),
    ]:
        monkeypatch.setattr(module, name, counter.wrap(label, getattr(module, name)))
    yield counter


def _app() -> tuple[SessionMiddleware, list[int]]:
    handled: list[int] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        handled.append(len(scope["session"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return SessionMiddleware(endpoint, secret_key=[KEY_A], clock=FakeClock()), handled


@pytest.mark.case("J1")
@pytest.mark.parametrize(("kind", "value"), [pytest.param(k, v, id=k) for k, v in _invalid_cookies()])
async def test_each_invalid_cookie_costs_bounded_work(counter: Counter, kind: str, value: str) -> None:
    """Each invalid cookie costs at most one base64 decode, one MAC check and one JSON parse, and gives an empty 200."""
    app, handled = _app()
    for _ in range(50):
        result = await call(app, cookie(value))
        assert result.status == 200
        assert result.set_cookie == []
    assert handled == [0] * 50
    assert counter.calls.get("b64", 0) <= 50
    assert counter.calls.get("mac_check", 0) <= 50
    assert counter.calls.get("json", 0) <= 50
    if len(value) > 4096:  # refused before any decoding
        assert counter.calls == {}


@pytest.mark.case("J1")
async def test_flood_of_invalid_cookies_leaves_no_memory_behind(caplog: pytest.LogCaptureFixture) -> None:
    """Thousands of invalid cookies grow the heap by no more than a small constant (tracemalloc diff)."""
    caplog.set_level(logging.CRITICAL, logger="sealed_sessions")  # keep the log capture itself out of the heap
    app, handled = _app()
    headers = [cookie(v) for _, v in _invalid_cookies() if len(v) < 10_000]
    for header in headers * 20:  # warm up caches and interned strings
        await call(app, header)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(200):
            for header in headers:
                await call(app, header)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    filters = [tracemalloc.Filter(True, "*sealed_sessions*"), tracemalloc.Filter(True, "*starlette*")]
    growth = sum(
        stat.size_diff for stat in after.filter_traces(filters).compare_to(before.filter_traces(filters), "filename")
    )
    assert len(handled) == len(headers) * 220
    assert growth < 64 * 1024, f"heap grew by {growth} bytes over {len(headers) * 200} invalid cookies"


@pytest.mark.case("J2")
@pytest.mark.parametrize("size", [pytest.param(n, id=f"{n // 1024}kb") for n in (8 * 1024, 16 * 1024)])
async def test_huge_cookie_header_with_ours_buried_inside_costs_one_mac_check(counter: Counter, size: int) -> None:
    """A Cookie header of hundreds of cookies (8 to 16 KB) with ours buried inside is handled without a 500."""
    good = seal(KEY_A, {"user": 7}, issued_at=START)
    filler = b"; ".join(b"c%d=%s" % (i, b"x" * 20) for i in range(size // 26))
    app, handled = _app()
    result = await call(app, filler + f"; {cookie(good)}; z=1".encode())
    assert result.status == 200
    assert handled == [1]
    assert counter.calls["mac_check"] == 1
