"""``create_app(settings)``: the demo as a FastAPI application (a factory, so tests build their own)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealed_sessions import AuthEvents, CSRFError, KeyRing, SessionMiddleware
from sealed_sessions.fastapi import DatabaseUnavailable

from . import api, pages
from .accounts import Accounts
from .auth import get_auth, make_auth
from .db import create_tables, make_engine
from .links import redact_access_log
from .passwords import PasswordHasher
from .purge import PURGE_INTERVAL, purge_expired_devices, purging
from .settings import Settings
from .throttle import LoginThrottle

__all__ = ["SESSION_CONTEXT", "SESSION_IDLE_TIMEOUT", "SESSION_MAX_AGE", "NoStore", "create_app", "database_failed"]

logger = logging.getLogger("examples.demo")

SESSION_MAX_AGE = 7 * 24 * 60 * 60
"""Absolute session lifetime: a week from login, whatever the activity."""
SESSION_IDLE_TIMEOUT = 24 * 60 * 60
"""A session unused for a day ends; use renews it (at most up to the absolute lifetime)."""
SESSION_CONTEXT = "sealed-sessions-demo"
"""Binds the demo's cookies to this application: another app sharing the key cannot open them."""


class NoStore:
    """``Cache-Control: no-store`` on every response under ``prefix``, errors included.

    For the JSON API, whose answers carry personal data: no browser history, back-forward cache
    or proxy may keep a copy. (The HTML pages set it themselves, with their other headers.)
    """

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_no_store)


def database_failed(request: Request, exc: Exception) -> Response:
    """The demo's own queries (the password check, registration) meet the same outage as the session
    check, and answer the same 503 with ``Retry-After``, not a 500.

    Logged by exception class only: SQLAlchemy's messages carry the statement's parameters (an
    e-mail address, a password hash).
    """
    logger.error("database request failed (%s)", type(exc).__name__, extra={"reason": "database_unavailable"})
    return get_auth(request).database_unavailable_response(request, exc)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    purge_every: float = PURGE_INTERVAL,
) -> FastAPI:
    """Build the demo. Without ``settings``, read them from the environment (:meth:`Settings.from_env`).

    ``clock`` (seconds since the epoch) drives session expiry, login times, device expiry and login
    throttling; tests pass a clock they move by hand. ``purge_every`` is the seconds between two
    purges of expired device rows (see :mod:`.purge`).
    """
    settings = settings if settings is not None else Settings.from_env()
    keys = KeyRing(settings.session_keys())  # a weak or malformed key fails here, before serving
    engine = make_engine(settings.database_url)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    read_engine = make_engine(settings.read_database_url) if settings.read_database_url else None
    read_maker = async_sessionmaker(read_engine, expire_on_commit=False) if read_engine is not None else None
    events = AuthEvents()  # one hub for the middleware and SessionAuth: logins, refusals, key usage
    auth = make_auth(settings, clock, max_age=SESSION_MAX_AGE, keys=keys, context=SESSION_CONTEXT, events=events)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await create_tables(engine)
        try:
            async with purging(lambda: purge_expired_devices(auth, maker), every=purge_every) as task:
                app.state.purge_task = task
                yield
        finally:
            await engine.dispose()
            if read_engine is not None:
                await read_engine.dispose()

    docs = settings.docs  # the interactive docs map the whole API for anyone: development only
    app = FastAPI(
        title="sealed-sessions demo",
        summary="Encrypted cookie sessions with instant revocation",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = maker
    app.state.read_sessionmaker = read_maker
    app.state.auth = auth
    app.state.events = events
    app.state.accounts = Accounts(PasswordHasher(settings.scrypt_n), LoginThrottle(clock=clock))

    settings.warn_if_insecure_transport()
    redact_access_log()  # links carry their token in the query string
    app.add_middleware(NoStore, prefix="/api/")
    app.add_middleware(  # the cookie name is the middleware's default: __Host-session over HTTPS
        SessionMiddleware,
        secret_key=keys,
        https_only=settings.https_only,
        max_age=SESSION_MAX_AGE,
        idle_timeout=SESSION_IDLE_TIMEOUT,
        context=SESSION_CONTEXT,
        clock=clock,
        events=events,
    )
    app.add_exception_handler(CSRFError, pages.csrf_failed_page)
    # Device login, logout and listing raise DatabaseUnavailable when the database fails: a 503.
    app.add_exception_handler(DatabaseUnavailable, auth.database_unavailable_response)
    for error in (SQLAlchemyError, OSError):  # what the library's check counts as a database failure
        app.add_exception_handler(error, database_failed)
    app.include_router(pages.router)
    app.include_router(api.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness for the load balancer and the tests: the process answers (no database call)."""
        return {"status": "ok", "instance": settings.instance_name}

    return app
