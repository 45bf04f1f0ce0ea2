"""The session toolkit on the read path when a request does not use it: does it cost anything?

Every row serves the same GET, a valid one-cookie session whose endpoint reads one key, through
our SessionMiddleware with one toolkit option switched on that this request does not exercise:
a legacy reader (our cookie is present, so it is never consulted), chunking (the session fits
one cookie), compression (a small session is not compressed), the CSRF middleware (a GET is
safe) and an endpoint that asks for flash messages when none wait. Ratios are against the
middleware with every option off, measured in the same rounds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sealed_sessions import CSRFMiddleware, SessionMiddleware, StarletteCookie, get_flashed_messages

from ..apps.middleware import ROUTES
from ..fixtures import KEY, SESSION_DATA, STARLETTE_SECRET, ours_cookie
from .asgi import request_runner
from .runner import Case, Group

__all__ = ["TOOLKIT_ROWS", "toolkit_group"]

TOOLKIT_ROWS = ["legacy reader", "max_chunks=4", "compress", "csrf middleware", "flash, none waiting"]
"""The rows held to "within 5% of 'all off'" by the benchmark targets."""


async def _read_with_flash(request: Request) -> PlainTextResponse:
    messages = get_flashed_messages(request)
    return PlainTextResponse(f"{request.session.get('user_id')} {len(messages)}")


def _app(*extra: Middleware, routes: list[Route] | None = None, **options: Any) -> Starlette:
    session = Middleware(SessionMiddleware, secret_key=KEY, https_only=False, **options)
    return Starlette(routes=routes or ROUTES, middleware=[session, *extra])


def toolkit_group(loop: asyncio.AbstractEventLoop) -> Group:
    cookie = ours_cookie(SESSION_DATA)
    flash_routes = [Route("/read", _read_with_flash)]
    rows = [
        ("all off", "SessionMiddleware with every toolkit option off (the baseline)", _app()),
        (
            "legacy reader",
            "legacy=StarletteCookie(...): our cookie is present, so the reader never runs",
            _app(legacy=StarletteCookie(STARLETTE_SECRET)),
        ),
        ("max_chunks=4", "chunking on; the session fits one cookie", _app(max_chunks=4)),
        ("compress", "compression on; an 80-byte session is never compressed", _app(compress=True)),
        ("csrf middleware", "CSRFMiddleware inside ours; a GET passes", _app(Middleware(CSRFMiddleware))),
        (
            "flash, none waiting",
            "the endpoint also calls get_flashed_messages(request); nothing waits",
            _app(routes=flash_routes),
        ),
    ]
    return Group(
        "toolkit",
        "The session toolkit switched on but unused by the request: GET, valid cookie, read one key",
        "all off",
        [Case(name, detail, request_runner(loop, app, "/read", cookie, False)) for name, detail, app in rows],
    )
