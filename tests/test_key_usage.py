"""Key usage: cookies opened per key id, the ``old_key`` event, the snapshot, and the Prometheus export."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from sealed_sessions import ConfigurationError, KeyRing, Sealer, SessionMiddleware
from sealed_sessions._events import AuthEvent, AuthEvents, EventKind
from sealed_sessions._metrics import prometheus_collector
from sealed_sessions.testing import seal
from tests.helpers import CORPUS_V1, DAY, KEY_A, KEY_B, START, FakeClock, call, cookie, session_app

OLD = KeyRing(KEY_A).key_ids[0].hex()
NEW = KeyRing(KEY_B).key_ids[0].hex()


def stack(app: Any) -> SessionMiddleware:
    """The SessionMiddleware instance in a built Starlette app."""
    layer = app.middleware_stack
    while not isinstance(layer, SessionMiddleware):
        layer = layer.app
    return layer


@pytest.mark.case("M9")
async def test_old_key_cookie_is_counted_under_its_key_and_resealed(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An older key's cookie counts under that key's id, emits old_key and comes back under the current key."""
    caplog.set_level(logging.INFO, "sealed_sessions")
    events = AuthEvents()
    seen: list[AuthEvent] = []
    events.on(None, seen.append)
    app = session_app(secret_key=[KEY_B, KEY_A], clock=clock, events=events)
    old_value = seal(KEY_A, {"n": 1}, issued_at=START, last_active=START)

    first = await call(app, cookie(old_value))
    middleware = stack(app)
    assert first.json() == {"n": 1}
    assert middleware.key_usage.counts == {NEW: 0, OLD: 1}
    assert seen == [AuthEvent(EventKind.OLD_KEY, START, key_id=OLD)]
    assert [getattr(r, "key_id", None) for r in caplog.records if r.name == "sealed_sessions"] == [OLD]

    await call(app, cookie(first.cookie_value()))  # the resealed cookie opens under the current key
    await call(app, cookie(first.cookie_value()))
    assert middleware.key_usage.counts == {NEW: 2, OLD: 1}
    assert len(seen) == 1


async def test_refused_and_absent_cookies_are_not_counted(clock: FakeClock) -> None:
    """Only a request whose cookie opened counts; a refusal is a ``refusal`` event with its reason instead."""
    events = AuthEvents()
    seen: list[AuthEvent] = []
    events.on(None, seen.append)
    app = session_app(secret_key=[KEY_B, KEY_A], clock=clock, events=events)
    await call(app)
    await call(app, cookie(seal(KEY_B, {"n": 1})[:-2] + "AA"))
    assert stack(app).key_usage.counts == {NEW: 0, OLD: 0}
    assert [(e.kind, e.reason, e.at) for e in seen] == [(EventKind.REFUSAL, "bad_mac", START)]
    assert stack(app).events is events


@pytest.mark.case("M9")
async def test_snapshot_is_json_with_every_key_of_the_ring(clock: FakeClock) -> None:
    """The snapshot lists every key (0 if unused), when older keys last opened, and when their cookies all expire."""
    app = session_app(secret_key=[KEY_B, KEY_A], clock=clock, idle_timeout=DAY)
    before = json.loads(json.dumps((await call(app), stack(app).key_usage.snapshot())[1]))
    assert before == {
        "cookie": "__Host-session",
        "since": START,
        "current": NEW,
        "opened": {NEW: 0, OLD: 0},
        "older_last_opened": {OLD: None},
        "older_keys_expire_by": START + DAY,  # the idle timeout is shorter than max_age
    }
    clock.advance(60)
    await call(app, cookie(seal(KEY_A, {"n": 1}, issued_at=START, last_active=START)))
    after = stack(app).key_usage.snapshot()
    assert after["opened"] == {NEW: 0, OLD: 1} and after["older_last_opened"] == {OLD: START + 60}
    assert list(after["opened"]) == [NEW, OLD]  # current first


def test_older_keys_expiry_bound_follows_the_lifetime(clock: FakeClock) -> None:
    """max_age alone bounds it; neither max_age nor idle_timeout: no bound (``None``)."""
    inner = session_app()
    only_max_age = SessionMiddleware(inner, [KEY_B, KEY_A], max_age=3600, clock=clock)
    unbounded = SessionMiddleware(inner, [KEY_B, KEY_A], max_age=None, clock=clock)
    assert only_max_age.key_usage.older_keys_expire_by == START + 3600
    assert unbounded.key_usage.older_keys_expire_by is None
    assert only_max_age.key_usage.current == NEW and repr(only_max_age.key_usage).startswith("<KeyUsage")


def test_opened_names_the_key_that_opened_it() -> None:
    """``Opened.key_id`` is the ring id of the key that opened the value (a version 1 cookie: its key's current id)."""
    ring = Sealer([KEY_B, KEY_A])
    assert ring.peek(seal(KEY_A, {})).key_id == KeyRing(KEY_A).key_ids[0]
    assert ring.peek(seal(KEY_B, {})).key_id == KeyRing(KEY_B).key_ids[0]
    entry = next(e for e in CORPUS_V1["opens"] if e["sealed_with_current_key"])
    v1 = Sealer(entry["open_keys"], entry["cookie_name"]).peek(entry["cookie"])
    assert v1.key_id == KeyRing(entry["open_keys"]).key_ids[0] and not v1.sealed_with_current_key


@pytest.mark.case("M8")
async def test_no_cookie_value_in_events_or_log_records(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """Events and log records of an old-key open and of refusals never hold any part of a cookie value."""
    caplog.set_level(logging.DEBUG)
    events = AuthEvents()
    seen: list[AuthEvent] = []
    events.on(None, seen.append)
    app = session_app(secret_key=[KEY_B, KEY_A], clock=clock, events=events)
    values = [
        seal(KEY_A, {"secret": "s3cr3t-data"}, issued_at=START, last_active=START),
        seal(KEY_B, {"n": 1})[:-2] + "AA",
        "garbage!",
    ]
    resealed = (await call(app, cookie(values[0]))).cookie_value()
    await call(app, cookie(values[1]))
    await call(app, cookie(values[2]))
    dumped = repr(seen) + caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    assert {e.kind for e in seen} == {EventKind.OLD_KEY, EventKind.REFUSAL}
    for value in [*values[:2], resealed]:
        assert value[30:60] not in dumped
    assert "s3cr3t" not in dumped


# -- Prometheus ------------------------------------------------------------------------------------------


@pytest.mark.case("M10")
async def test_prometheus_text_exposes_opens_rejections_and_events(clock: FakeClock) -> None:
    """The collector exports cookies opened per key id, rejections per reason and events per kind, as text."""
    prometheus_client = pytest.importorskip("prometheus_client")
    events = AuthEvents()
    app = session_app(secret_key=[KEY_B, KEY_A], clock=clock, events=events)
    await call(app, cookie(seal(KEY_A, {"n": 1}, issued_at=START, last_active=START)))
    await call(app, cookie("garbage!"))
    registry = prometheus_client.CollectorRegistry()
    prometheus_collector(stack(app), registry=registry)
    text = prometheus_client.generate_latest(registry).decode()
    assert f'sealed_sessions_cookies_opened_total{{cookie="__Host-session",key_id="{OLD}"}} 1.0' in text
    assert f'sealed_sessions_cookies_opened_total{{cookie="__Host-session",key_id="{NEW}"}} 0.0' in text
    assert 'sealed_sessions_rejections_total{cookie="__Host-session",reason="malformed"} 1.0' in text
    assert 'sealed_sessions_events_total{kind="old_key"} 1.0' in text
    assert 'sealed_sessions_events_total{kind="refusal"} 1.0' in text
    assert "# TYPE sealed_sessions_cookies_opened_total counter" in text


def test_prometheus_collector_without_prometheus_client_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without prometheus_client, asking for the collector is a ConfigurationError naming the extra."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'sealed-sessions\[prometheus\]'"):
        prometheus_collector(SessionMiddleware(session_app(), KEY_A))


def test_the_shared_hub_reaches_the_key_usage_of_an_added_middleware() -> None:
    """With app.add_middleware(..., events=hub) the application reads key usage through the hub."""
    import asyncio

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from sealed_sessions import AuthEvents, SessionMiddleware

    hub = AuthEvents()

    async def keys(request: Any) -> JSONResponse:
        assert hub.key_usage is not None
        return JSONResponse(hub.key_usage.snapshot())

    app = Starlette(routes=[Route("/keys", keys)])
    app.add_middleware(SessionMiddleware, secret_key=KEY_A, events=hub)

    async def fetch() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            return (await client.get("/keys")).json()

    assert "opened" in asyncio.run(fetch())
