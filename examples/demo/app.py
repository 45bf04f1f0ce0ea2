"""``create_app(settings)``: the demo as a FastAPI application (a factory, so tests build their own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from sealed_sessions import KeyRing, SessionMiddleware

from . import api, pages
from .db import create_tables, make_engine
from .settings import Settings

__all__ = ["SESSION_MAX_AGE", "create_app"]

SESSION_MAX_AGE = 7 * 24 * 60 * 60
"""Absolute session lifetime: a week from login, whatever the activity."""
SESSION_IDLE_TIMEOUT = 24 * 60 * 60
"""A session unused for a day ends; use renews it (at most up to the absolute lifetime)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the demo. Without ``settings``, read them from the environment (:meth:`Settings.from_env`)."""
    settings = settings if settings is not None else Settings.from_env()
    keys = KeyRing(settings.session_keys())  # a weak or malformed key fails here, before serving
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await create_tables(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="sealed-sessions demo",
        summary="Encrypted cookie sessions with instant revocation",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)

    settings.warn_if_insecure_transport()
    app.add_middleware(
        SessionMiddleware,
        secret_key=keys,
        https_only=settings.https_only,
        max_age=SESSION_MAX_AGE,
        idle_timeout=SESSION_IDLE_TIMEOUT,
    )
    app.add_exception_handler(pages.CsrfFailed, pages.csrf_failed_page)
    app.include_router(pages.router)
    app.include_router(api.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness for the load balancer and the tests: the process answers (no database call)."""
        return {"status": "ok", "instance": settings.instance_name}

    return app
