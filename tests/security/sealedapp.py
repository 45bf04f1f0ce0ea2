"""A small FastAPI application on SessionAuth, for the fault, load, soak and state-machine suites.

Each call of :func:`build_app` makes its own declarative base and user table (a unique name per
run, since several engineers share the database servers). Routes:

=================  ==========================================================================
``GET /ping``      no session, no database
``POST /login/N``  log in as user N (loads the row, ``auth.login``); 404 if no such user
``GET /me``        the current user (``auth.current_user``) and the session's ``note``
``POST /note/V``   authenticated write: ``session["note"] = V``
``POST /logout``   ``auth.logout`` (empties the session; does not revoke)
``POST /revoke``   ``auth.revoke``; ``?keep=1`` keeps this device
=================  ==========================================================================

Run as a server (the soak) with ``uvicorn --factory sealedapp:app_from_env --app-dir tests/security``
and the environment variables named in :func:`app_from_env`. Only absolute imports here, so the
module loads both inside pytest and as uvicorn's top-level module.
"""

# No ``from __future__ import annotations``: FastAPI resolves the route signatures, which name
# aliases local to build_app, at runtime.

import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy import String, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions import SessionMiddleware
from sealed_sessions.fastapi import SessionAuth
from sealed_sessions.sqlalchemy import SessionTokenMixin

__all__ = ["TestApp", "app_from_env", "build_app", "create_users", "drop_table"]


@dataclass
class TestApp:
    """The application and the handles tests need to inspect it."""

    __test__ = False  # not a pytest test class

    app: FastAPI
    engine: AsyncEngine
    user_model: type[Any]
    auth: SessionAuth[Any]
    metadata: Any


def build_app(
    database_url: str,
    table: str,
    *,
    keys: Sequence[str],
    clock: Callable[[], float] = time.time,
    engine: AsyncEngine | None = None,
    engine_kwargs: dict[str, Any] | None = None,
    idle_timeout: int | None = None,
    max_age: int = 14 * 24 * 3600,
    retry_after: int = 2,
    create_tables_on_startup: bool = False,
    session_middleware: bool = True,
) -> TestApp:
    """Build the app on ``database_url`` with user table ``table``; ``keys`` newest first.

    ``session_middleware=False`` leaves the SessionMiddleware out, for a test that wraps the app
    itself (to change the key ring between requests).
    """

    class Base(DeclarativeBase):
        pass

    class User(SessionTokenMixin, Base):
        __tablename__ = table
        id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        name: Mapped[str] = mapped_column(String(64))

    if engine is None:
        engine = create_async_engine(database_url, **(engine_kwargs or {}))
    maker = async_sessionmaker(engine, expire_on_commit=False)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with maker() as db:
            yield db

    auth: SessionAuth[User] = SessionAuth(User, get_db, clock=clock, retry_after=retry_after)
    CurrentUser = Annotated[User, Depends(auth.current_user)]
    DB = Annotated[AsyncSession, Depends(get_db)]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if create_tables_on_startup:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan if create_tables_on_startup else None)

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/login/{uid}")
    async def login(uid: int, request: Request, db: DB) -> dict[str, int]:
        try:
            user = await db.get(User, uid)
        except (SQLAlchemyError, OSError):  # the app's own query: its outage answer is its business
            raise HTTPException(503, "Service temporarily unavailable", headers={"Retry-After": "2"}) from None
        if user is None:
            raise HTTPException(404, "no such user")
        auth.login(request, user)
        return {"user": uid}

    @app.get("/me")
    async def me(user: CurrentUser, request: Request) -> dict[str, Any]:
        return {"user": user.id, "name": user.name, "note": request.session.get("note")}

    @app.post("/note/{value}")
    async def note(value: str, user: CurrentUser, request: Request) -> dict[str, Any]:
        request.session["note"] = value
        return {"user": user.id, "note": value}

    @app.post("/logout")
    async def logout(request: Request) -> dict[str, bool]:
        auth.logout(request)
        return {"ok": True}

    @app.post("/revoke")
    async def revoke(user: CurrentUser, request: Request, db: DB, keep: bool = False) -> dict[str, bool]:
        try:
            await auth.revoke(db, user, keep=request if keep else None)
        except (SQLAlchemyError, OSError):
            raise HTTPException(503, "Service temporarily unavailable", headers={"Retry-After": "2"}) from None
        return {"kept": keep}

    if session_middleware:
        app.add_middleware(
            SessionMiddleware,
            secret_key=list(keys),
            max_age=max_age,
            idle_timeout=idle_timeout,
            clock=clock,
        )
    return TestApp(app, engine, User, auth, Base.metadata)


async def create_users(engine: AsyncEngine, test_app: TestApp, count: int) -> None:
    """Create the table and users 1..count (each with a fresh token from the mixin's default)."""
    async with engine.begin() as conn:
        await conn.run_sync(test_app.metadata.create_all)
        table = test_app.user_model.__table__
        await conn.execute(insert(table), [{"id": i, "name": f"user{i}"} for i in range(1, count + 1)])


async def drop_table(engine: AsyncEngine, test_app: TestApp) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(test_app.metadata.drop_all)


def app_from_env() -> FastAPI:
    """The soak server: ``SEALED_SOAK_DATABASE_URL``, ``SEALED_SOAK_TABLE``, ``SEALED_SOAK_KEYS`` (comma-separated)."""
    built = build_app(
        os.environ["SEALED_SOAK_DATABASE_URL"],
        os.environ["SEALED_SOAK_TABLE"],
        keys=os.environ["SEALED_SOAK_KEYS"].split(","),
        engine_kwargs={"pool_size": int(os.environ.get("SEALED_SOAK_POOL", "5")), "max_overflow": 0, "pool_timeout": 5},
    )
    return built.app
