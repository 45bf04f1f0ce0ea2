"""The app the read-replica tests drive, built once for the SQLite stand-ins (test_read_replica.py) and
the real streaming pair (tests/replica/test_read_db.py): its check reads ``replica`` and writes ``primary``.

Routes: ``POST /login/{name}`` (device login in device mode), ``GET /me`` (``current_user``, on the
replica), ``GET /settings`` and ``POST /revoke`` (``primary_user``), ``POST /rename/{name}`` (a
route's own write), ``POST /logout`` (device mode). Database failures answer 503 with ``Retry-After``.
"""

# No `from __future__ import annotations`: FastAPI resolves the route signatures built here.

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sealed_sessions import SessionMiddleware
from sealed_sessions.fastapi import DatabaseUnavailable, SessionAuth
from tests.helpers import KEY_A, FakeClock


def sessions_on(engine: Callable[[], AsyncEngine]) -> Callable[[], AsyncIterator[AsyncSession]]:
    """A ``get_db``-style dependency yielding a session on whatever ``engine()`` gives at request time."""

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(engine(), expire_on_commit=False) as db:
            yield db

    return get_db


def replica_app(
    user: Any,
    primary: Callable[[], AsyncEngine],
    replica: Callable[[], AsyncEngine],
    *,
    device: Any = None,
) -> tuple[FastAPI, SessionAuth[Any]]:
    """The app and its ``SessionAuth(read_db=...)``; ``primary()`` and ``replica()`` pick each request's engines."""
    get_db, get_read_db = sessions_on(primary), sessions_on(replica)
    clock = FakeClock()
    auth: SessionAuth[Any] = SessionAuth(
        user, get_db, read_db=get_read_db, session_cookie="session", clock=clock, devices=device
    )
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=KEY_A, clock=clock, https_only=False)
    app.add_exception_handler(DatabaseUnavailable, auth.database_unavailable_response)

    async def write_failed(request: Request, exc: Exception) -> JSONResponse:
        """A route's own write that the primary could not take: 503, as the dependencies answer."""
        return JSONResponse({"detail": "Service temporarily unavailable"}, 503, {"Retry-After": "5"})

    app.add_exception_handler(SQLAlchemyError, write_failed)
    app.add_exception_handler(OSError, write_failed)  # asyncpg's refused connection is a bare OSError
    Current = Annotated[Any, Depends(auth.current_user)]
    Primary = Annotated[Any, Depends(auth.primary_user)]
    DB = Annotated[AsyncSession, Depends(get_db)]

    @app.post("/login/{name}")
    async def login(name: str, request: Request, db: DB) -> dict[str, str]:
        found = (await db.execute(select(user).where(user.name == name))).scalar_one()
        if device is not None:
            await auth.login_device(db, request, found)
        else:
            auth.login(request, found)
        return {"ok": "yes"}

    @app.get("/me")
    async def me(current: Current) -> dict[str, str]:
        return {"name": current.name}

    @app.get("/settings")
    async def settings(current: Primary) -> dict[str, str]:
        return {"name": current.name}

    @app.post("/revoke")
    async def revoke(current: Primary, db: DB) -> dict[str, str]:
        await auth.revoke(db, current)
        return {"ok": "yes"}

    @app.post("/rename/{name}")
    async def rename(name: str, current: Current, db: DB) -> dict[str, str]:
        await db.execute(update(user).where(user.id == current.id).values(name=name))
        await db.commit()
        return {"ok": "yes"}

    @app.post("/logout")
    async def logout(request: Request, db: DB, current: Current) -> dict[str, str]:
        await auth.logout_device(db, request)
        return {"ok": "yes"}

    return app, auth
