"""What counts as use of the session: idle renewal only for requests that used it, passive routes, reads via the scope.

Catalogue C9 (renewal only by requests that used the session; ``Session.mark_passive()``) and F16
(a read through ``scope["session"]`` varies on Cookie). The renewal threshold itself is in
test_middleware_time.py.
"""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from sealed_sessions import Session, SessionMiddleware
from sealed_sessions.testing import seal, unseal
from tests.helpers import KEY_A, START, FakeClock, call, cookie

IDLE = 400  # renewal is due after IDLE / 4 = 100 s
LOGGED_IN = seal(KEY_A, {"user": 7}, issued_at=START)


async def _ping(request: Request) -> Response:
    return PlainTextResponse("pong")  # never looks at the session


async def _read(request: Request) -> Response:
    return PlainTextResponse(str(request.session.get("user")))


async def _poll(request: Request) -> Response:
    session = Session.of(request)
    session.mark_passive()
    return PlainTextResponse(str(session.get("user")))


async def _poll_and_write(request: Request) -> Response:
    session = Session.of(request)
    session.mark_passive()
    session["seen"] = True
    return PlainTextResponse("ok")


async def _raw_scope_read(scope: Scope, receive: Receive, send: Send) -> None:
    user = scope["session"].get("user")  # an ASGI app: no request.session, no mark_accessed()
    await PlainTextResponse(str(user))(scope, receive, send)


def activity_app(clock: FakeClock) -> Starlette:
    """Routes that ignore the session, read it, read it passively, write passively, or read it through the scope."""
    routes = [
        Route("/ping", _ping),
        Route("/read", _read),
        Route("/poll", _poll),
        Route("/poll-write", _poll_and_write),
        Mount("/raw", app=_raw_scope_read),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(SessionMiddleware, secret_key=KEY_A, idle_timeout=IDLE, clock=clock)]
    )


@pytest.mark.case("C9")
async def test_unread_requests_do_not_renew_the_idle_timeout(clock: FakeClock) -> None:
    """A request that never reads the session sends no Set-Cookie, Cache-Control or Vary, even when renewal is due."""
    clock.advance(150)
    result = await call(activity_app(clock), cookie(LOGGED_IN), path="/ping")
    assert result.body == b"pong"
    assert (result.set_cookie, result.header(b"cache-control"), result.header(b"vary")) == ([], [], [])


@pytest.mark.case("C9")
async def test_a_request_that_reads_the_session_renews_it_when_due(clock: FakeClock) -> None:
    """Reading the session after a quarter of the idle window reseals it with a fresh last-active time."""
    clock.advance(150)
    result = await call(activity_app(clock), cookie(LOGGED_IN), path="/read")
    assert result.body == b"7"
    assert unseal(KEY_A, result.cookie_value()).last_active == START + 150


@pytest.mark.case("C9")
async def test_passive_routes_read_without_renewing(clock: FakeClock) -> None:
    """A route marked passive (a poller) reads the session but does not keep it alive, and still varies on Cookie."""
    app = activity_app(clock)
    clock.advance(150)
    result = await call(app, cookie(LOGGED_IN), path="/poll")
    assert result.body == b"7"
    assert (result.set_cookie, result.header(b"vary")) == ([], [b"Cookie"])
    clock.advance(IDLE)  # only passive requests since: the session is now idle
    assert (await call(app, cookie(LOGGED_IN), path="/read")).body == b"None"


@pytest.mark.case("C9")
async def test_passive_routes_still_save_writes(clock: FakeClock) -> None:
    """A passive request that writes to the session still sends the new cookie with the new data."""
    clock.advance(10)
    result = await call(activity_app(clock), cookie(LOGGED_IN), path="/poll-write")
    assert unseal(KEY_A, result.cookie_value()).data == {"user": 7, "seen": True}


@pytest.mark.case("C9")
async def test_a_passive_write_does_not_move_last_active(clock: FakeClock) -> None:
    """A passive request's write keeps the sealed last-active time, and Max-Age counts the idle time already spent."""
    clock.advance(150)
    result = await call(activity_app(clock), cookie(LOGGED_IN), path="/poll-write")
    assert unseal(KEY_A, result.cookie_value()).last_active == START
    assert result.max_age() == IDLE - 150


@pytest.mark.case("F16")
async def test_a_read_through_the_scope_gets_vary_cookie(clock: FakeClock) -> None:
    """A raw ASGI app reading scope["session"] marks the session accessed: the response varies on Cookie."""
    result = await call(activity_app(clock), cookie(LOGGED_IN), path="/raw/")
    assert result.body == b"7"
    assert result.header(b"vary") == [b"Cookie"]


@pytest.mark.case("F16")
async def test_a_read_of_an_absent_session_through_the_scope_also_varies(clock: FakeClock) -> None:
    """Even an empty session read through the scope gets Vary: Cookie (the answer depended on having no cookie)."""
    result = await call(activity_app(clock), path="/raw/")
    assert result.body == b"None"
    assert result.header(b"vary") == [b"Cookie"]
