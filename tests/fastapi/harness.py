"""A FastAPI app using ``SessionAuth``, built fresh per test on SQLite, PostgreSQL or MariaDB.

Plain names for the tests of this folder to import (conftest.py holds only the fixtures built on
them). Each harness gets its own table (``users_<random>``) so engineers sharing one server never
collide; the ``make_harness`` fixture drops it afterwards. PostgreSQL and MariaDB run only when
their URL variables are set, and only on a loopback address.
"""

# No `from __future__ import annotations`: FastAPI resolves the route signatures built in build_app.

import asyncio
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, WebSocket
from sqlalchemy import String, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.types import ASGIApp, Message

from sealed_sessions import SessionMiddleware
from sealed_sessions.fastapi import SessionAuth
from sealed_sessions.sqlalchemy import SessionTokenMixin, new_session_token
from sealed_sessions.testing import unseal
from tests.helpers import COOKIE, KEY_A, FakeClock, cookie, loopback_url

POSTGRES_URL = loopback_url("SEALED_TEST_POSTGRES_URL")
MARIADB_URL = loopback_url("SEALED_TEST_MARIADB_URL")


def _server(mark: pytest.MarkDecorator, url: str | None, env: str) -> list[pytest.MarkDecorator]:
    """A database server parameter's marks: H10, the server's own marker, and a skip while ``env`` is unset."""
    return [pytest.mark.case("H10"), mark, pytest.mark.skipif(not url, reason=f"{env} is not set")]


DATABASES = [
    pytest.param("sqlite", id="sqlite", marks=pytest.mark.case("H10")),
    pytest.param(
        "postgres", id="postgres", marks=_server(pytest.mark.postgres, POSTGRES_URL, "SEALED_TEST_POSTGRES_URL")
    ),
    pytest.param("mariadb", id="mariadb", marks=_server(pytest.mark.mariadb, MARIADB_URL, "SEALED_TEST_MARIADB_URL")),
]
"""The database kinds for ``db_kind``: the same suite on each (catalogue row H10)."""


def database_url(kind: str, tmp_path: Path) -> str:
    """The URL of a database kind: a SQLite file under ``tmp_path``, or the configured server."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    url = POSTGRES_URL if kind == "postgres" else MARIADB_URL
    assert url is not None
    return url


def make_user_model(pk: str, table: str, *, nullable_token: bool = False) -> tuple[type[DeclarativeBase], Any]:
    """A fresh declarative base and a user model with an int, UUID or str primary key.

    ``nullable_token`` mimics a legacy schema whose ``session_token`` column allows NULL.
    """

    class Base(DeclarativeBase):
        pass

    class Fields(SessionTokenMixin):
        name: Mapped[str] = mapped_column(String(64), unique=True)
        password: Mapped[str] = mapped_column(String(64), default="initial")
        is_active: Mapped[bool] = mapped_column(default=True)

    if nullable_token:

        class LegacyFields(Fields):
            session_token: Mapped[str] = mapped_column(String(64), nullable=True, default=new_session_token)

        Fields = LegacyFields  # type: ignore[misc]

    user: Any
    if pk == "int":

        class IntUser(Fields, Base):
            __tablename__ = table
            id: Mapped[int] = mapped_column(primary_key=True)

        user = IntUser
    elif pk == "uuid":

        class UuidUser(Fields, Base):
            __tablename__ = table
            id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)

        user = UuidUser
    else:

        class StrUser(Fields, Base):
            __tablename__ = table
            id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: secrets.token_hex(8))

        user = StrUser
    return Base, user


@dataclass
class Harness:
    """One app, its engine and helpers to read and change the user table behind its back."""

    app: FastAPI
    auth: SessionAuth[Any]
    User: Any
    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    clock: FakeClock
    statements: list[str] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def create_user(self, name: str, **values: Any) -> Any:
        async with self.maker() as db:
            user = self.User(name=name, **values)
            db.add(user)
            await db.commit()
            return user.id

    async def token(self, pk: Any) -> str | None:
        async with self.maker() as db:
            value: str | None = await db.scalar(select(self.User.session_token).where(self.User.id == pk))
            return value

    async def set_columns(self, pk: Any, **values: Any) -> None:
        async with self.maker() as db:
            await db.execute(update(self.User).where(self.User.id == pk).values(**values))
            await db.commit()

    async def delete(self, pk: Any) -> None:
        async with self.maker() as db:
            user = await db.get(self.User, pk)
            await db.delete(user)
            await db.commit()


HarnessFactory = Callable[..., Awaitable[Harness]]
"""The type of the ``make_harness`` fixture: ``await make_harness(kind, pk="int", **auth_options)``."""


def build_app(engine: AsyncEngine, User: Any, clock: FakeClock, **auth_options: Any) -> Harness:
    """The test application: login, logout, revoke, password change, WebSocket, shared-db routes."""
    maker = async_sessionmaker(engine, expire_on_commit=False)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with maker() as db:
            yield db

    auth: SessionAuth[Any] = SessionAuth(User, get_db, clock=clock, **auth_options)
    current_user = Annotated[Any, Depends(auth.current_user)]
    optional_user = Annotated[Any, Depends(auth.optional_user)]
    database = Annotated[AsyncSession, Depends(get_db)]
    app = FastAPI(responses=auth.openapi_responses)
    app.add_middleware(SessionMiddleware, secret_key=KEY_A, clock=clock)
    harness = Harness(app, auth, User, engine, maker, clock)

    @app.post("/cart")
    async def add_to_cart(request: Request) -> dict[str, str]:
        request.session["cart"] = ["book"]
        request.session["is_admin"] = True  # pre-login data an attacker might plant
        return {"ok": "yes"}

    @app.post("/login/{name}")
    async def login(name: str, request: Request, db: database) -> dict[str, str]:
        user = (await db.execute(select(User).where(User.name == name))).scalar_one()
        auth.login(request, user)
        return {"id": str(user.id)}

    @app.get("/me")
    async def me(user: current_user, request: Request) -> dict[str, Any]:
        return {"id": str(user.id), "name": user.name, "session": sorted(request.session)}

    @app.get("/maybe")
    async def maybe(user: optional_user) -> dict[str, str | None]:
        return {"name": None if user is None else user.name}

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/me/count")
    async def me_and_db(user: current_user, db: database) -> dict[str, Any]:
        count = await db.scalar(select(func.count()).select_from(User))
        return {"name": user.name, "users": count, "same_session": db.in_transaction()}

    @app.post("/me/rename/{name}")
    async def rename(name: str, user: current_user, db: database) -> dict[str, str]:
        user.name = name
        await db.commit()
        return {"name": user.name}

    @app.get("/slow")
    async def slow(user: current_user) -> dict[str, str]:
        harness.entered.set()
        await harness.gate.wait()
        return {"name": user.name}

    @app.post("/logout")
    async def logout(request: Request) -> dict[str, str]:
        auth.logout(request)
        return {"ok": "yes"}

    @app.post("/logout-revoke")
    async def logout_revoke(request: Request, user: current_user, db: database) -> dict[str, str]:
        await auth.revoke(db, user)
        auth.logout(request)
        return {"ok": "yes"}

    @app.post("/logout-everywhere")
    async def logout_everywhere(user: current_user, db: database) -> dict[str, str]:
        await auth.revoke(db, user)
        return {"ok": "yes"}

    @app.post("/logout-others")
    async def logout_others(request: Request, user: current_user, db: database) -> dict[str, str]:
        await auth.revoke(db, user, keep=request)
        return {"ok": "yes"}

    @app.post("/password/{new}")
    async def change_password(new: str, request: Request, user: current_user, db: database) -> dict[str, str]:
        user.password = new
        await auth.revoke(db, user, keep=request)  # password and token commit together
        return {"ok": "yes"}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, user: Annotated[Any, Depends(auth.websocket_user)]) -> None:
        await websocket.accept()
        await websocket.send_text(user.name)
        await websocket.close()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        harness.statements.append(statement)

    return harness


def session_of(client: httpx.AsyncClient) -> dict[str, Any]:
    """The data sealed in a client's session cookie (opened with the test key)."""
    return unseal(KEY_A, client.cookies[COOKIE]).data


async def run_websocket(app: ASGIApp, value: str | None) -> list[Message]:
    """Drive one WebSocket handshake to ``/ws``, with the session cookie ``value`` if any; return what the app sent."""
    headers = [(b"host", b"testserver")]
    if value is not None:
        headers.append((b"cookie", cookie(value).encode()))
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "wss",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
        "subprotocols": [],
        "state": {},
    }
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def settle_aiosqlite_threads() -> None:
    """Let aiosqlite worker threads finish while the loop still runs.

    When ``aiosqlite.connect`` fails (missing directory), aiosqlite stops its worker thread by
    queueing a future; if the test's loop closes first, the thread raises "Event loop is closed".
    """
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 5)
