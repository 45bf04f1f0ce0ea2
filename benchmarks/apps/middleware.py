"""One Starlette app behind each session middleware: served by uvicorn, and called in-process.

:func:`build_app` gives the app for a variant; the in-process ASGI group calls it directly, and
:func:`create_app` (uvicorn's ``--factory``) builds it from environment variables, read once:

- ``BENCH_VARIANT``: ``none``, ``starlette``, ``ours``, ``ours-idle`` (ours with an idle timeout,
  so an old cookie is resealed: renewal due) or ``starsessions`` (server-side, in Redis).
- ``BENCH_KEYS``: how many keys in our ring (default 1; the first one seals).
- ``BENCH_REDIS_URL`` and ``BENCH_REDIS_PREFIX``: for ``starsessions``.

Routes: ``/health``; ``/read`` reads one key; ``/cart`` reads the cart (a list: the session's data
is handed out, so ours compares its JSON at the end); ``/write`` increments a counter on every request;
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

from ..fixtures import EXTRA_KEYS, IDLE_TIMEOUT, KEY, SESSION_DATA, SESSION_LIFETIME, STARLETTE_SECRET

__all__ = ["build_app", "create_app", "starsessions_redis"]


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def read(request: Request) -> PlainTextResponse:
    if "session" in request.scope:
        return PlainTextResponse(str(request.session.get("user_id")))
    return PlainTextResponse(str(SESSION_DATA["user_id"]))


async def cart(request: Request) -> PlainTextResponse:
    if "session" in request.scope:
        return PlainTextResponse(str(len(request.session.get("cart", []))))
    return PlainTextResponse("0")


async def write(request: Request) -> PlainTextResponse:
    if "session" in request.scope:
        request.session["n"] = request.session.get("n", 0) + 1
    return PlainTextResponse("ok")


async def login(request: Request) -> PlainTextResponse:
    size = int(request.query_params.get("size", "0"))
    request.session["user_id"] = SESSION_DATA["user_id"]
    request.session["csrf"] = SESSION_DATA["csrf"]
    if size:
        request.session["pad"] = "x" * size
    return PlainTextResponse("ok")


ROUTES = [
    Route("/health", health),
    Route("/read", read),
    Route("/cart", cart),
    Route("/write", write),
    Route("/login", login),
]


def starsessions_redis(url: str, prefix: str) -> list[Middleware]:
    """starsessions keeping sessions in Redis under ``prefix``, loaded on every request."""
    from starsessions import SessionAutoloadMiddleware
    from starsessions import SessionMiddleware as StarSessionMiddleware
    from starsessions.stores.redis import RedisStore

    store = RedisStore(url, prefix=prefix)
    return [
        Middleware(StarSessionMiddleware, store=store, cookie_https_only=False, lifetime=SESSION_LIFETIME),
        Middleware(SessionAutoloadMiddleware),
    ]


def build_app(variant: str, *, keys: int = 1) -> Starlette:
    """The app behind the ``variant`` middleware (any but ``starsessions``), our ring of ``keys`` keys."""
    ring = [KEY, *EXTRA_KEYS][:keys]
    middleware = {
        "none": [],
        "starlette": [Middleware(StarletteSessionMiddleware, secret_key=STARLETTE_SECRET, https_only=False)],
        "ours": [Middleware(SessionMiddleware, secret_key=ring, https_only=False)],
        "ours-idle": [Middleware(SessionMiddleware, secret_key=ring, https_only=False, idle_timeout=IDLE_TIMEOUT)],
    }
    if variant not in middleware:
        raise SystemExit(f"unknown BENCH_VARIANT {variant!r}")
    return Starlette(routes=ROUTES, middleware=middleware[variant])


def create_app() -> Starlette:
    variant = os.environ.get("BENCH_VARIANT", "none")
    if variant == "starsessions":
        middleware = starsessions_redis(os.environ["BENCH_REDIS_URL"], os.environ.get("BENCH_REDIS_PREFIX", "bench."))
        return Starlette(routes=ROUTES, middleware=middleware)
    return build_app(variant, keys=int(os.environ.get("BENCH_KEYS", "1")))
