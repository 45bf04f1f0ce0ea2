"""Scenario 1 and 5: the same Starlette app behind each session middleware.

Configured by environment variables, read once by :func:`create_app` (uvicorn's ``--factory``):

- ``BENCH_VARIANT``: ``none``, ``starlette``, ``ours``, ``ours-idle`` (ours with an idle timeout,
  so an old cookie is resealed: renewal due) or ``starsessions`` (server-side, in Redis).
- ``BENCH_KEYS``: how many keys in our ring (default 1; the first one seals).
- ``BENCH_REDIS_URL``: for ``starsessions``.

Routes: ``/health``; ``/read`` reads one key; ``/write`` increments a counter on every request;
``/login?size=N`` stores a user id and about N bytes of padding, to get a cookie to replay.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sealed_sessions import SessionMiddleware

from ..inprocess import IDLE_TIMEOUT, KEY, STARLETTE_SECRET

__all__ = ["EXTRA_KEYS", "create_app"]

EXTRA_KEYS = [f"benchmark-only-extra-key-number-{i:02d}-abcdefghijklmnop" for i in range(1, 16)]
"""Fifteen more text secrets (32+ characters, stretched) for the 16-key ring."""


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def read(request: Request) -> PlainTextResponse:
    if "session" in request.scope:
        return PlainTextResponse(str(request.session.get("user_id")))
    return PlainTextResponse("123456")


async def write(request: Request) -> PlainTextResponse:
    if "session" in request.scope:
        request.session["n"] = request.session.get("n", 0) + 1
    return PlainTextResponse("ok")


async def login(request: Request) -> PlainTextResponse:
    size = int(request.query_params.get("size", "0"))
    request.session["user_id"] = 123456
    request.session["csrf"] = "q3Jd7Zk1vYx2Lw9Pm4Nc8Rt6"
    if size:
        request.session["pad"] = "x" * size
    return PlainTextResponse("ok")


def create_app() -> Starlette:
    variant = os.environ.get("BENCH_VARIANT", "none")
    keys = [KEY, *EXTRA_KEYS][: int(os.environ.get("BENCH_KEYS", "1"))]
    middleware: list[Middleware] = []
    if variant == "starlette":
        middleware = [Middleware(StarletteSessionMiddleware, secret_key=STARLETTE_SECRET, https_only=False)]
    elif variant == "ours":
        middleware = [Middleware(SessionMiddleware, secret_key=keys, https_only=False)]
    elif variant == "ours-idle":
        middleware = [Middleware(SessionMiddleware, secret_key=keys, https_only=False, idle_timeout=IDLE_TIMEOUT)]
    elif variant == "starsessions":
        from starsessions import SessionAutoloadMiddleware
        from starsessions import SessionMiddleware as StarSessionMiddleware
        from starsessions.stores.redis import RedisStore

        store = RedisStore(os.environ["BENCH_REDIS_URL"], prefix=os.environ.get("BENCH_REDIS_PREFIX", "bench."))
        middleware = [
            Middleware(StarSessionMiddleware, store=store, cookie_https_only=False, lifetime=3600),
            Middleware(SessionAutoloadMiddleware),
        ]
    elif variant != "none":
        raise SystemExit(f"unknown BENCH_VARIANT {variant!r}")
    routes = [Route("/health", health), Route("/read", read), Route("/write", write), Route("/login", login)]
    return Starlette(routes=routes, middleware=middleware)
