"""The database: one async engine per application, a session per request, tables at startup.

With ``DEMO_READ_DATABASE_URL`` set, a second engine reads a streaming replica: :func:`get_read_db`
gives the session checks an ``AsyncSession`` there; everything else uses :func:`get_db`, the primary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from starlette.requests import HTTPConnection

from sealed_sessions.sqlalchemy import enable_sqlite_foreign_keys

from .models import Base

__all__ = ["Db", "ReadDb", "create_tables", "get_db", "get_read_db", "make_engine", "maybe_read_db"]

logger = logging.getLogger("examples.demo")


def make_engine(url: str) -> AsyncEngine:
    """An engine for ``url``. SQLite gets WAL mode and a busy timeout, so several processes can share one
    file, and foreign keys, so deleting a user deletes its devices (``ON DELETE CASCADE``)."""
    if not url.startswith("sqlite"):
        return create_async_engine(url, pool_size=10, max_overflow=5, pool_timeout=5)
    engine = create_async_engine(url, connect_args={"timeout": 15})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    enable_sqlite_foreign_keys(engine)
    return engine


async def create_tables(engine: AsyncEngine, attempts: int = 5) -> None:
    """``create_all``, retried: replicas starting together race to create the same tables."""
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            return
        except DBAPIError:
            if attempt == attempts:
                raise
            logger.info(
                "creating tables failed (attempt %d of %d); another replica may be creating them", attempt, attempts
            )
            await asyncio.sleep(0.2 * attempt)


async def get_db(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one ``AsyncSession`` per request, from the application's engine."""
    maker: async_sessionmaker[AsyncSession] = connection.app.state.sessionmaker
    async with maker() as db:
        yield db


Db = Annotated[AsyncSession, Depends(get_db)]
"""The request's ``AsyncSession`` on the primary: the one writes use (FastAPI caches ``get_db``)."""


async def get_read_db(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one ``AsyncSession`` per request on the read replica (configured or not, see
    :func:`maybe_read_db`)."""
    maker: async_sessionmaker[AsyncSession] = connection.app.state.read_sessionmaker
    async with maker() as db:
        yield db


async def maybe_read_db(connection: HTTPConnection) -> AsyncIterator[AsyncSession | None]:
    """The replica's ``AsyncSession`` when ``DEMO_READ_DATABASE_URL`` is set, else ``None`` (check on the primary)."""
    if connection.app.state.read_sessionmaker is None:
        yield None
        return
    async for db in get_read_db(connection):
        yield db


ReadDb = Annotated[AsyncSession | None, Depends(maybe_read_db)]
"""The request's ``AsyncSession`` on the read replica, or ``None`` without one: only the session check reads it."""
