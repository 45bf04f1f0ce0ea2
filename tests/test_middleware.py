"""The ASGI middleware through the whole stack: bad cookies (A), time (C), keys (D), faults and load.

Most tests drive the app with raw ASGI messages (``call``), so the exact bytes of the Cookie
header and of every response message are under the test's control.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from sealed_sessions import Sealer, SessionMiddleware
from sealed_sessions.testing import seal, unseal

from .conftest import FakeClock as Clock

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

KEY_A = "v0dJ8jL4q4fZ3-1xq8r8VbQ3b7nq3v9V0bXj2pXn0mQ"
KEY_B = "Qk3zT0Yc2sR8wW5eL1aN6hJ9uI4oP7gF2dS5aZ8xC1v"
KEY_C = "m9N2b5V8c1X4z7L0k3J6h9G2f5D8s1A4q7W0e3R6t9Y"
START = 1_800_000_000
DAY = 24 * 3600


# -- a raw ASGI driver ------------------------------------------------------------------------------


@dataclass
class Result:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    messages: list[Message] = field(repr=False)

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def set_cookie(self) -> list[str]:
        return [v.decode("latin-1") for v in self.header(b"set-cookie")]

    def cookie_value(self, name: str = "session") -> str:
        (header,) = [c for c in self.set_cookie if c.startswith(name + "=")]
        return header.split(";", 1)[0].split("=", 1)[1]

    def max_age(self) -> int | None:
        (header,) = self.set_cookie
        for part in header.split(";"):
            key, _, value = part.strip().partition("=")
            if key.lower() == "max-age":
                return int(value)
        return None


async def call(
    app: ASGIApp,
    cookie: bytes | str | None = None,
    *,
    path: str = "/",
    method: str = "GET",
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> Result:
    """Send one HTTP request through ``app`` as an ASGI server would, and collect the response."""
    raw_headers = [(b"host", b"testserver"), *headers]
    if cookie is not None:
        raw_headers.append((b"cookie", cookie.encode("latin-1") if isinstance(cookie, str) else cookie))
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
    }
    messages: list[Message] = []
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect until the app is done
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: Message) -> None:
        messages.append(message)
        await asyncio.sleep(0)  # yield, so that gathered requests really interleave

    await app(scope, receive, send)
    start = messages[0]
    assert start["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return Result(start["status"], list(start.get("headers", [])), body, messages)


def cookie(value: str, name: str = "session") -> str:
    return f"{name}={value}"


# -- apps ---------------------------------------------------------------------------------------------


async def read(request: Request) -> Response:
    return JSONResponse(dict(request.session))


async def write(request: Request) -> Response:
    request.session["n"] = request.session.get("n", 0) + 1
    return JSONResponse(dict(request.session))


async def clear(request: Request) -> Response:
    request.session.clear()
    return JSONResponse({})


async def untouched(request: Request) -> Response:
    return PlainTextResponse("untouched")


def make_app(**options: Any) -> Starlette:
    options.setdefault("secret_key", KEY_A)
    return Starlette(
        routes=[
            Route("/", read),
            Route("/write", write),
            Route("/clear", clear),
            Route("/untouched", untouched),
        ],
        middleware=[Middleware(SessionMiddleware, **options)],
    )


def rejections(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sealed_sessions"]


# -- A: bad cookies through the stack ----------------------------------------------------------------

VALID = seal(KEY_A, {"user": 1})
SWAPPED = VALID[:40] + ("A" if VALID[40] != "A" else "B") + VALID[41:]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        pytest.param(b"session=", "malformed", id="a2-empty"),
        pytest.param(b"session=   ", "malformed", id="a2-spaces"),
        pytest.param(b"session=\t", "malformed", id="a2-tab"),
        pytest.param(b"session=\n", "malformed", id="a2-newline"),
        pytest.param(b"session= \r\n ", "malformed", id="a2-crlf"),
        pytest.param(b"session=invalid", "malformed", id="a3-invalid"),
        pytest.param(b"session=purejunk", "malformed", id="a3-purejunk"),
        pytest.param(b"session=" + b"A" * 100, None, id="a3-long-junk"),
        pytest.param(b"session=<!--", "malformed", id="a4-html-comment"),
        pytest.param(b"session=!@#", "malformed", id="a4-symbols"),
        pytest.param(
            b"session=" + VALID.replace("-", "+").replace("_", "/").encode() + b"+/", "malformed", id="a4-plus"
        ),
        pytest.param(b"session=" + VALID.encode() + b"=", "malformed", id="a4-padding"),
        pytest.param(b"session=" + VALID[:50].encode() + b"\xff" + VALID[51:].encode(), "malformed", id="a5-byte-ff"),
        pytest.param(b"session=\xc3\xa9\xc3\xa9\xc3\xa9", "malformed", id="a5-utf8-accents"),
        pytest.param(
            b"session=" + VALID[:60].encode() + b"\xc0\xaf" + VALID[62:].encode(), "malformed", id="a5-bad-utf8"
        ),
        pytest.param(b'session="' + VALID.encode() + b'"', "malformed", id="a6-quoted"),
        pytest.param(b"session=" + VALID[:30].encode() + b"\\" + VALID[30:].encode(), "malformed", id="a6-backslash"),
        pytest.param(b'session="\\"\\\\"', "malformed", id="a6-escapes"),
        pytest.param(b"session=" + b"A" * 4097, "too_large", id="a15-4097"),
        pytest.param(b"session=" + b"A" * 1_000_000, "too_large", id="a15-1mb"),
        pytest.param(b"session=" + SWAPPED.encode(), None, id="a11-bit-flip"),
        pytest.param(b"session=" + VALID[:-1].encode(), None, id="a9-truncated"),
        pytest.param(b"session=" + seal(KEY_C, {"user": 1}).encode(), "unknown_key", id="a13-unknown-key"),
        pytest.param(
            b"session=" + seal(KEY_A, {"user": 1}, session_cookie="other").encode(), "bad_mac", id="b5-other-name"
        ),
    ],
)
async def test_m1_m2_bad_cookie_gives_empty_session(
    header: bytes, reason: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad cookie gives an empty session, 200, no Set-Cookie, and one reason-coded log record without the value."""
    caplog.set_level(logging.DEBUG, logger="sealed_sessions")
    result = await call(make_app(), header)
    assert result.status == 200
    assert result.body == b"{}"
    assert result.set_cookie == []
    (record,) = rejections(caplog)
    assert record.levelno == logging.INFO
    assert getattr(record, "cookie_name", None) == "session"
    logged_reason = getattr(record, "reason", None)
    assert logged_reason in {"too_large", "malformed", "unknown_version", "unknown_key", "bad_mac"}
    if reason is not None:
        assert logged_reason == reason
    value = header.split(b"=", 1)[1].strip()
    text = record.getMessage() + repr(record.__dict__)
    assert KEY_A not in text  # M1: nor does the key
    if len(value) >= 8:  # M1: the value never reaches the log (short values would match by chance)
        assert value.decode("latin-1") not in text
        assert value[:16].decode("latin-1") not in text


async def test_a1_no_cookie(caplog: pytest.LogCaptureFixture) -> None:
    """No cookie at all: empty session, 200, no Set-Cookie and nothing logged."""
    caplog.set_level(logging.DEBUG, logger="sealed_sessions")
    for header in (None, b"other=1; sessionx=2"):
        result = await call(make_app(), header)
        assert (result.status, result.body, result.set_cookie) == (200, b"{}", [])
    assert rejections(caplog) == []


async def test_a3_valid_cookie_control() -> None:
    """Control for the A cases: the same valid cookie they are derived from does open."""
    result = await call(make_app(), cookie(VALID))
    assert result.body == b'{"user":1}'


async def test_a16_every_failure_looks_the_same() -> None:
    """Every kind of rejected cookie yields a byte-identical response (status, headers and body)."""
    app = make_app()  # the real clock, as VALID was sealed with it
    now = int(time.time())
    expired = seal(KEY_A, {"user": 1}, issued_at=now - 15 * DAY)
    future = seal(KEY_A, {"user": 1}, issued_at=now + 3600)
    not_json = Sealer(KEY_A).seal_json(b"{nope", issued_at=now, expires_at=now + DAY, now=now)
    wrong_version = "Ag" + VALID[2:]  # first byte 0x02
    values: list[bytes] = [
        b"session=invalid",
        b"session=" + b"A" * 4097,
        b"session=!@#",
        b"session=\xff\xfe",
        b'session="' + VALID.encode() + b'"',
        b"session=" + VALID[:-1].encode(),
        b"session=" + SWAPPED.encode(),
        b"session=" + wrong_version.encode(),
        b"session=" + seal(KEY_C, {"user": 1}).encode(),
        b"session=" + expired.encode(),
        b"session=" + future.encode(),
        b"session=" + not_json.encode(),
    ]
    baseline = await call(app, None)
    for value in values:
        result = await call(app, value)
        assert (result.status, result.headers, result.body) == (baseline.status, baseline.headers, baseline.body)
    assert (await call(app, cookie(VALID))).body != baseline.body  # the comparison can fail


async def test_a16_m2_failure_kinds_get_distinct_reasons(caplog: pytest.LogCaptureFixture) -> None:
    """Outwardly identical failures stay distinguishable in the log (M2): one reason code each."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    expired = seal(KEY_A, {"user": 1}, issued_at=int(time.time()) - 15 * DAY)
    app = make_app()
    for value in ["!@#", "A" * 5000, seal(KEY_C, {}), SWAPPED, expired, "Ag" + VALID[2:]]:
        await call(app, cookie(value))
    reasons = [getattr(r, "reason", None) for r in rejections(caplog)]
    assert reasons == ["malformed", "too_large", "unknown_key", "bad_mac", "expired", "unknown_version"]


# -- C: time, through the stack with an injected clock ------------------------------------------------


async def test_c1_absolute_lifetime_ends_an_active_session(caplog: pytest.LogCaptureFixture) -> None:
    """A session used every 30 s is still refused once ``max_age`` has passed since it began."""
    clock = Clock()
    app = make_app(max_age=100, idle_timeout=60, clock=clock)
    value = (await call(app, path="/write")).cookie_value()
    for _ in range(3):  # t = 30, 60, 90: writes keep renewing it
        clock.advance(30)
        result = await call(app, cookie(value), path="/write")
        assert result.status == 200
        assert result.body != b'{"n":1}' or result.set_cookie
        value = result.cookie_value()
    clock.advance(10)  # t = 100: the absolute limit
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    result = await call(app, cookie(value))
    assert result.body == b"{}"
    assert [getattr(r, "reason", None) for r in rejections(caplog)] == ["expired"]


async def test_c2_idle_window_exceeded(caplog: pytest.LogCaptureFixture) -> None:
    """A session unused for ``idle_timeout`` seconds is refused; one second less is accepted."""
    clock = Clock()
    app = make_app(idle_timeout=100, clock=clock)
    value = (await call(app, path="/write")).cookie_value()
    clock.advance(99)
    assert (await call(app, cookie(value))).body == b'{"n":1}'
    clock.advance(1)
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    assert (await call(app, cookie(value))).body == b"{}"
    assert [getattr(r, "reason", None) for r in rejections(caplog)] == ["idle"]


async def test_c3_renewal_never_extends_past_max_age() -> None:
    """Idle renewal moves last_active but keeps the sealed absolute expiry and shrinks Max-Age toward it."""
    clock = Clock()
    app = make_app(max_age=250, idle_timeout=100, clock=clock)
    value = (await call(app, path="/write")).cookie_value()
    for elapsed in (60, 120, 180, 240):
        clock.now = START + elapsed
        result = await call(app, cookie(value))
        assert result.body == b'{"n":1}'
        value = result.cookie_value()  # renewal due: 60 s >= 100 / 4
        opened = unseal(KEY_A, value)
        assert opened.expires_at == START + 250
        assert opened.last_active == START + elapsed
        assert result.max_age() == min(100, 250 - elapsed)
    clock.now = START + 250
    assert (await call(app, cookie(value))).body == b"{}"


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        pytest.param(-1, True, id="c4-exp-minus-1"),
        pytest.param(0, False, id="c4-exp"),
        pytest.param(1, False, id="c4-exp-plus-1"),
    ],
)
async def test_c4_expiry_boundary(offset: int, accepted: bool) -> None:
    """At expiry - 1 s the cookie opens; at expiry and expiry + 1 s it does not."""
    clock = Clock(START + 100 + offset)
    value = seal(KEY_A, {"user": 1}, max_age=100, issued_at=START)
    result = await call(make_app(max_age=100, clock=clock), cookie(value))
    assert (result.body == b'{"user":1}') is accepted


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        pytest.param(-1, True, id="c4-idle-minus-1"),
        pytest.param(0, False, id="c4-idle"),
        pytest.param(1, False, id="c4-idle-plus-1"),
    ],
)
async def test_c4_idle_boundary(offset: int, accepted: bool) -> None:
    """At last_active + idle_timeout - 1 s the cookie opens; at the limit and after it does not."""
    clock = Clock(START + 100 + offset)
    value = seal(KEY_A, {"user": 1}, issued_at=START - 50, last_active=START)
    result = await call(make_app(idle_timeout=100, clock=clock), cookie(value))
    assert (result.body == b'{"user":1}') is accepted


async def test_c7_replayed_cookie_after_max_age_refused(caplog: pytest.LogCaptureFixture) -> None:
    """A cookie kept past its Max-Age and sent by hand is refused from the sealed expiry."""
    clock = Clock()
    app = make_app(max_age=3600, clock=clock)
    issued = await call(app, path="/write")
    assert issued.max_age() == 3600
    clock.advance(3600 + 1)
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    result = await call(app, cookie(issued.cookie_value()))
    assert (result.body, result.set_cookie) == (b"{}", [])
    assert [getattr(r, "reason", None) for r in rejections(caplog)] == ["expired"]


async def test_c8_max_age_matches_sealed_expiry() -> None:
    """Max-Age always equals the sealed expiry minus now, also on later writes to the same session."""
    clock = Clock()
    app = make_app(max_age=1000, clock=clock)
    first = await call(app, path="/write")
    assert first.max_age() == 1000
    assert unseal(KEY_A, first.cookie_value()).expires_at == START + 1000
    clock.advance(300)
    second = await call(app, cookie(first.cookie_value()), path="/write")
    assert second.max_age() == 700
    assert unseal(KEY_A, second.cookie_value()).expires_at == START + 1000


async def test_c8_no_max_age_for_browser_session_cookie() -> None:
    """With ``max_age=None`` the cookie has no Max-Age and no sealed expiry."""
    result = await call(make_app(max_age=None, clock=Clock()), path="/write")
    assert result.max_age() is None
    assert "expires" not in result.set_cookie[0].lower()
    assert unseal(KEY_A, result.cookie_value()).expires_at is None


async def test_c8_no_max_age_for_browser_session_cookie_with_idle_timeout() -> None:
    """With ``max_age=None`` and an idle timeout the cookie still dies with the browser (no Max-Age)."""
    result = await call(make_app(max_age=None, idle_timeout=600, clock=Clock()), path="/write")
    assert result.max_age() is None


async def test_c8_max_age_capped_by_idle_timeout() -> None:
    """With an idle timeout shorter than what remains, Max-Age is the idle timeout."""
    result = await call(make_app(max_age=1000, idle_timeout=400, clock=Clock()), path="/write")
    assert result.max_age() == 400


async def test_idle_renewal_only_after_a_quarter_of_the_window() -> None:
    """Read-only requests send no Set-Cookie until idle_timeout / 4 has passed; then one renewal."""
    clock = Clock()
    app = make_app(idle_timeout=400, clock=clock)
    value = (await call(app, path="/write")).cookie_value()
    clock.advance(99)
    early = await call(app, cookie(value))
    assert (early.body, early.set_cookie) == (b'{"n":1}', [])
    clock.advance(1)
    due = await call(app, cookie(value))
    assert due.body == b'{"n":1}'
    renewed = due.cookie_value()
    assert unseal(KEY_A, renewed).last_active == START + 100
    assert unseal(KEY_A, renewed).issued_at == START
    clock.advance(99)
    assert (await call(app, cookie(renewed))).set_cookie == []
    # the renewal happens even if the route never reads the session
    clock.advance(1)
    assert len((await call(app, cookie(renewed), path="/untouched")).set_cookie) == 1


async def test_no_renewal_without_idle_timeout() -> None:
    """Without an idle timeout, reading a session days later sends no Set-Cookie."""
    clock = Clock()
    app = make_app(clock=clock)
    value = (await call(app, path="/write")).cookie_value()
    clock.advance(10 * DAY)
    result = await call(app, cookie(value))
    assert (result.body, result.set_cookie) == (b'{"n":1}', [])


# -- D: keys and rotation ----------------------------------------------------------------------------


async def test_d3_d4_old_key_cookie_opens_and_is_resealed_with_current_key() -> None:
    """A cookie sealed with an older key opens, and the response reseals it with the current key."""
    clock = Clock()
    old = seal(KEY_B, {"user": 7}, issued_at=START - 3600, max_age=DAY)
    app = make_app(secret_key=[KEY_A, KEY_B], max_age=DAY, clock=clock)
    for path in ("/", "/untouched"):
        result = await call(app, cookie(old), path=path)
        assert result.status == 200
        opened = unseal(KEY_A, result.cookie_value())  # only the current key: proves the reseal
        assert opened.data == {"user": 7}
        assert opened.sealed_with_current_key
        assert (opened.issued_at, opened.expires_at) == (START - 3600, START - 3600 + DAY)
    assert (await call(app, cookie(old))).body == b'{"user":7}'


async def test_d5_removed_key_gives_empty_session(caplog: pytest.LogCaptureFixture) -> None:
    """A cookie from a key dropped from the ring gives an empty session, 200 and no Set-Cookie."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    dropped = seal(KEY_C, {"user": 7})
    result = await call(make_app(secret_key=[KEY_A, KEY_B]), cookie(dropped))
    assert (result.status, result.body, result.set_cookie) == (200, b"{}", [])
    assert [getattr(r, "reason", None) for r in rejections(caplog)] == ["unknown_key"]


async def test_d6_new_cookies_use_the_current_key() -> None:
    """A freshly written session is sealed with the first key of the ring, not with any other."""
    app = make_app(secret_key=[KEY_B, KEY_A])
    value = (await call(app, path="/write")).cookie_value()
    assert unseal(KEY_B, value).sealed_with_current_key
    assert unseal([KEY_A, KEY_B], value).sealed_with_current_key is False
    current = seal(KEY_B, {"user": 1})
    assert (await call(app, cookie(current))).set_cookie == []  # current key: no reseal needed


async def test_i4_i5_concurrent_requests_with_mixed_keys() -> None:
    """1000 concurrent requests with old- and new-key cookies all see their own data; old ones are upgraded."""
    app = make_app(secret_key=[KEY_A, KEY_B])
    cookies = [seal(KEY_B if i % 2 else KEY_A, {"i": i}) for i in range(1000)]
    results = await asyncio.gather(*(call(app, cookie(value)) for value in cookies))
    for i, result in enumerate(results):
        assert result.body == f'{{"i":{i}}}'.encode()
        if i % 2:
            upgraded = unseal(KEY_A, result.cookie_value())
            assert upgraded.data == {"i": i}
        else:
            assert result.set_cookie == []


# -- H8: server errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("action", ["write", "clear", "old-key"])
async def test_h8_server_error_neither_reseals_nor_deletes(status: int, action: str) -> None:
    """A 5xx response carries no Set-Cookie, whatever the app did to the session."""

    async def endpoint(request: Request) -> Response:
        if action == "write":
            request.session["n"] = 99
        elif action == "clear":
            request.session.clear()
        return PlainTextResponse("failed", status_code=status)

    app = Starlette(
        routes=[Route("/", endpoint)],
        middleware=[Middleware(SessionMiddleware, secret_key=[KEY_A, KEY_B])],
    )
    value = seal(KEY_B if action == "old-key" else KEY_A, {"n": 1})
    result = await call(app, cookie(value))
    assert result.status == status
    assert result.set_cookie == []
    ok = await call(make_app(secret_key=[KEY_A, KEY_B]), cookie(value), path="/clear")
    assert ok.set_cookie  # the same change on a 200 would have sent a cookie


async def test_h8_app_exception_sends_no_cookie() -> None:
    """An exception after writing the session ends in a 500 without Set-Cookie."""

    async def endpoint(request: Request) -> Response:
        request.session["n"] = 1
        raise RuntimeError("boom")

    app = Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert "set-cookie" not in response.headers


# -- stacking --------------------------------------------------------------------------------------------


def stacked_app() -> Starlette:
    async def endpoint(request: Request) -> Response:
        admin = request.scope["admin_session"]
        if request.method == "POST":
            request.session["who"] = "user"
            admin["who"] = "admin"
        return JSONResponse({"user": dict(request.session), "admin": dict(admin)})

    return Starlette(
        routes=[Route("/", endpoint, methods=["GET", "POST"])],
        middleware=[
            Middleware(SessionMiddleware, secret_key=KEY_A, session_cookie="session"),
            Middleware(SessionMiddleware, secret_key=KEY_B, session_cookie="admin", scope_key="admin_session"),
        ],
    )


async def test_stacked_middlewares_keep_separate_sessions(client_factory: ClientFactory) -> None:
    """Two stacked instances with their own name, key and scope key both round-trip their session."""
    async with client_factory(stacked_app()) as client:
        response = await client.post("/")
        assert sorted(c.split("=", 1)[0] for c in response.headers.get_list("set-cookie")) == ["admin", "session"]
        assert response.headers.get_list("vary") == ["Cookie"]
        assert (await client.get("/")).json() == {"user": {"who": "user"}, "admin": {"who": "admin"}}
        user, admin = client.cookies["session"], client.cookies["admin"]
    assert unseal(KEY_A, user).data == {"who": "user"}
    assert unseal(KEY_B, admin, session_cookie="admin").data == {"who": "admin"}
    swapped = await call(stacked_app(), f"session={admin}; admin={user}".encode())
    assert swapped.body == b'{"user":{},"admin":{}}'


# -- J2, K6: hostile headers -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8 * 1024, 16 * 1024], ids=["j2-8kb", "j2-16kb"])
async def test_j2_huge_cookie_header(size: int) -> None:
    """Hundreds of cookies in an 8-16 KB header never give a 500, and ours is still found."""
    filler = [f"c{i}={'x' * 30}" for i in range(size // 35)]
    header = "; ".join(filler)
    assert len(header) >= size - 100
    alone = await call(make_app(), header)
    assert (alone.status, alone.body) == (200, b"{}")
    middle = len(filler) // 2
    mixed = "; ".join([*filler[:middle], cookie(VALID), *filler[middle:]])
    assert (await call(make_app(), mixed)).body == b'{"user":1}'
    many_ours = "; ".join([cookie("x" * 40)] * 300)
    assert (await call(make_app(), many_ours)).status == 200


COOKIE_BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.tuples(
            st.sampled_from([b"session", b"Session", b" session", b"other", b""]),
            st.one_of(
                st.binary(max_size=80),
                st.sampled_from([VALID.encode(), SWAPPED.encode(), VALID[:-3].encode()]),
            ),
        ),
        max_size=5,
    ).map(lambda pairs: b"; ".join(name + b"=" + value for name, value in pairs)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=COOKIE_BYTES)
def test_k6_arbitrary_cookie_headers_never_500(header: bytes) -> None:
    """Any Cookie header bytes through the whole stack give 200 and never a server error."""
    app = make_app()

    async def run() -> tuple[Result, Result]:
        return await call(app, header), await call(app, header, path="/write")

    read_result, write_result = asyncio.run(run())
    assert read_result.status == 200
    assert write_result.status == 200
    assert len(write_result.set_cookie) == 1


# -- F10, F11, F12: response shapes, lifespan, websockets, mounts -------------------------------------------


async def test_f10_streaming_response_cookie_only_in_start_message() -> None:
    """A streaming response gets Set-Cookie in its start message, and its body chunks pass unchanged."""

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"one ", b"two ", b"three"):
            yield part

    async def endpoint(request: Request) -> Response:
        request.session["streamed"] = True
        return StreamingResponse(chunks())

    app = Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    result = await call(app)
    assert result.body == b"one two three"
    assert unseal(KEY_A, result.cookie_value()).data == {"streamed": True}
    start, *rest = result.messages
    assert any(k == b"set-cookie" for k, _ in start["headers"])
    assert len(rest) >= 3
    assert all(m["type"] == "http.response.body" and set(m) <= {"type", "body", "more_body"} for m in rest)


async def test_raw_asgi_start_message_without_headers() -> None:
    """A raw ASGI app whose start message has no ``headers`` key still gets its cookie and Vary."""

    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["raw"] = 1
        scope["session"].mark_accessed()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    result = await call(SessionMiddleware(raw_app, secret_key=KEY_A))
    assert unseal(KEY_A, result.cookie_value()).data == {"raw": 1}
    assert result.header(b"vary") == [b"Cookie"]


async def test_f11_lifespan_passes_through() -> None:
    """Lifespan startup and shutdown events reach the app through the middleware."""
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(
        routes=[Route("/", read)], lifespan=lifespan, middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)]
    )
    async with LifespanManager(app):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


async def websocket_session(app: ASGIApp, header: bytes | None) -> list[Message]:
    """Open a WebSocket through ``app`` with ``header`` as its Cookie and collect what it sends."""
    headers = [(b"host", b"testserver")] + ([(b"cookie", header)] if header is not None else [])
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "wss",
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
        "subprotocols": [],
    }
    incoming: list[Message] = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def websocket_app() -> Starlette:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(dict(websocket.session))
        await websocket.close()

    return Starlette(
        routes=[WebSocketRoute("/ws", endpoint)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)]
    )


async def test_f11_websocket_handshake_sees_the_session() -> None:
    """A WebSocket endpoint reads the session from the handshake's cookie; a bad cookie reads as empty."""
    sent = await websocket_session(websocket_app(), cookie(VALID).encode())
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == '{"user":1}'
    assert all("set-cookie" not in dict(m.get("headers", [])) for m in sent)
    bad = await websocket_session(websocket_app(), b"session=invalid")
    assert bad[1]["text"] == "{}"


async def test_f12_mounted_sub_app_scopes_its_cookie(client_factory: ClientFactory) -> None:
    """A sub-app under /sub with path='/sub' sets a cookie the client returns only below /sub."""

    async def peek(request: Request) -> Response:
        return PlainTextResponse(request.headers.get("cookie", ""))

    sub = make_app(path="/sub")
    app = Starlette(routes=[Mount("/sub", app=sub), Route("/peek", peek)])
    async with client_factory(app) as client:
        response = await client.get("/sub/write")
        assert "path=/sub;" in response.headers["set-cookie"]
        assert (await client.get("/sub/")).json() == {"n": 1}
        assert (await client.get("/peek")).text == ""


async def test_replacing_the_scope_session_with_an_empty_dict_logs_out() -> None:
    """An app that logs out with ``scope["session"] = {}`` (as Starlette allows) gets a deletion cookie."""

    async def logout(request: Request) -> Response:
        request.scope["session"] = {}
        return PlainTextResponse("bye")

    app = Starlette(routes=[Route("/logout", logout)])
    app.add_middleware(SessionMiddleware, secret_key=KEY_A)
    cookie = seal(KEY_A, {"user": 7})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.get("/logout", headers={"cookie": f"session={cookie}"})
    assert response.headers["set-cookie"].startswith("session=; path=/; expires=Thu, 01 Jan 1970")


async def test_replacing_the_scope_session_with_data_seals_that_data() -> None:
    """A replacement dict's contents become the session, checked as JSON like any write."""

    async def swap(request: Request) -> Response:
        request.scope["session"] = {"user": 8, "role": "admin"}
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/swap", swap)])
    app.add_middleware(SessionMiddleware, secret_key=KEY_A)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.get("/swap")
    value = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    assert unseal(KEY_A, value).data == {"user": 8, "role": "admin"}


async def test_stacked_instances_sharing_a_scope_key_never_copy_data_between_cookies() -> None:
    """Two instances misconfigured with one scope_key: the outer cookie never receives the inner session's data."""

    async def write(request: Request) -> Response:
        request.session["inner_only"] = 1
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/write", write)])
    app.add_middleware(SessionMiddleware, secret_key=KEY_A, session_cookie="inner")
    app.add_middleware(SessionMiddleware, secret_key=KEY_B, session_cookie="outer")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.get("/write")
    names = [header.split("=", 1)[0] for header in response.headers.get_list("set-cookie")]
    assert names == ["inner"]
