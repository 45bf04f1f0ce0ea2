"""One GET straight into the ASGI app, through no middleware, Starlette's and ours: no sockets.

Every stack is :func:`benchmarks.apps.middleware.build_app`, the app the real servers serve; each
is checked once to answer 200 and to send (or not) ``Set-Cookie`` as its row says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Scope

from ..apps.middleware import build_app
from ..fixtures import RICH_SESSION_DATA, SESSION_DATA, ours_cookie, starlette_cookie
from .runner import Case, Group, GroupResult, timed_async

__all__ = ["asgi_group", "overhead_ratios", "request_runner"]


def _scope(path: str, cookie: str | None) -> Scope:
    headers = [(b"host", b"testserver"), (b"user-agent", b"bench"), (b"accept", b"*/*")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
        "state": {},
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def request_runner(
    loop: asyncio.AbstractEventLoop, app: ASGIApp, path: str, cookie: str | None, expect_set_cookie: bool
) -> Callable[[int], float]:
    """A batch of requests straight into the ASGI app; checks once that the stack behaves as named."""
    base = _scope(path, cookie)
    seen: list[Message] = []

    async def record(message: Message) -> None:
        seen.append(message)

    async def check() -> None:
        await app(dict(base), _receive, record)
        start = seen[0]
        assert start["status"] == 200, start
        has_cookie = any(k == b"set-cookie" for k, _ in start.get("headers", []))
        assert has_cookie == expect_set_cookie, (path, cookie, start)

    loop.run_until_complete(check())

    async def send(message: Message) -> None:
        return None

    async def one() -> None:
        await app(dict(base), _receive, send)

    return timed_async(loop, one)


def asgi_group(loop: asyncio.AbstractEventLoop) -> Group:
    bare, starlette, ours, ours_idle = (build_app(v) for v in ("none", "starlette", "ours", "ours-idle"))
    s_cookie = starlette_cookie(SESSION_DATA)
    o_cookie = ours_cookie(SESSION_DATA)
    s_rich, o_rich = starlette_cookie(RICH_SESSION_DATA), ours_cookie(RICH_SESSION_DATA)
    # Last sealed 1000 s ago with a one-hour idle timeout: past a quarter of the window, so due.
    o_stale = ours_cookie(SESSION_DATA, last_active_ago=1000)
    # name, detail, app, path, cookie, whether it answers with Set-Cookie
    rows: list[tuple[str, str, ASGIApp, str, str | None, bool]] = [
        ("none read", "Starlette app, no session middleware, /read", bare, "/read", None, False),
        (
            "starlette read",
            "Starlette's SessionMiddleware, valid cookie, endpoint reads one key",
            starlette,
            "/read",
            s_cookie,
            False,
        ),
        (
            "ours read",
            "sealed_sessions.SessionMiddleware, valid cookie, endpoint reads one key",
            ours,
            "/read",
            o_cookie,
            False,
        ),
        (
            "starlette read rich",
            "Starlette's, a session with a cart list, flash list and prefs dict, endpoint reads one key",
            starlette,
            "/read",
            s_rich,
            False,
        ),
        ("ours read rich", "ours, the same session, endpoint reads one key", ours, "/read", o_rich, False),
        (
            "starlette read cart",
            "Starlette's, the same session, endpoint reads the cart (a list)",
            starlette,
            "/cart",
            s_rich,
            False,
        ),
        (
            "ours read cart",
            "ours, the same session, endpoint reads the cart: a list handed out, so its JSON is compared",
            ours,
            "/cart",
            o_rich,
            False,
        ),
        (
            "ours renewal due",
            "ours with idle_timeout, cookie past 1/4 of the idle window: reseals",
            ours_idle,
            "/read",
            o_stale,
            True,
        ),
        ("none write", "Starlette app, no session middleware, /write", bare, "/write", None, False),
        (
            "starlette write",
            "Starlette's SessionMiddleware, valid cookie, endpoint writes a counter",
            starlette,
            "/write",
            s_cookie,
            True,
        ),
        (
            "ours write",
            "ours, valid cookie, endpoint writes a counter on every request",
            ours,
            "/write",
            o_cookie,
            True,
        ),
    ]
    return Group(
        "asgi",
        "One GET through the ASGI stack, called directly (no sockets, no HTTP parsing)",
        "none read",
        [
            Case(name, detail, request_runner(loop, app, path, cookie, sets))
            for name, detail, app, path, cookie, sets in rows
        ],
    )


def overhead_ratios(result: GroupResult, ours: str, theirs: str, bare: str) -> list[float]:
    """Per round: (ours - bare) / (theirs - bare), the share of Starlette's added cost that ours adds."""
    s = result.samples
    out = []
    for o, t, b in zip(s[ours], s[theirs], s[bare], strict=True):
        if t - b > 0:
            out.append((o - b) / (t - b))
    return out
