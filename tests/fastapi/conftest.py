"""A FastAPI app using ``SessionAuth``, built fresh per test on SQLite, PostgreSQL or MariaDB.

Each harness creates its own table (``users_<random>``) so engineers sharing one server never
collide, and drops it afterwards. PostgreSQL and MariaDB run only when their URL variables are set.
"""

# No `from __future__ import annotations`: FastAPI resolves the route signatures built in build_app.

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request, WebSocket
from sqlalchemy import String, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions import SessionMiddleware
from sealed_sessions.fastapi import SessionAuth
from sealed_sessions.sqlalchemy import SessionTokenMixin, new_session_token

KEY_A = "v0dJ8jL4q4fZ3-1xq8r8VbQ3b7nq3v9V0bXj2pXn0mQ"  # same value as tests/conftest.py
START = 1_800_000_000

POSTGRES_URL = os.environ.get("SEALED_TEST_POSTGRES_URL")
MARIADB_URL = os.environ.get("SEALED_TEST_MARIADB_URL")

DATABASES = [
    pytest.param("sqlite", id="h10-sqlite"),
    pytest.param(
        "postgres",
        id="h10-postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not POSTGRES_URL, reason="SEALED_TEST_POSTGRES_URL is not set"),
        ],
    ),
    pytest.param(
        "mariadb",
        id="h10-mariadb",
        marks=[
            pytest.mark.mariadb,
            pytest.mark.skipif(not MARIADB_URL, reason="SEALED_TEST_MARIADB_URL is not set"),
        ],
    ),
]


class Clock:
    """A hand-moved clock shared by the middleware and SessionAuth."""

    def __init__(self) -> None:
        self.now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def database_url(kind: str, tmp_path: Path) -> str:
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
    clock: Clock
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


def build_app(engine: AsyncEngine, User: Any, clock: Clock, **auth_options: Any) -> Harness:
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


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """Build harnesses on a database kind (``sqlite``/``postgres``/``mariadb``); drop their tables after."""
    created: list[tuple[AsyncEngine, type[DeclarativeBase]]] = []

    async def factory(
        kind: str,
        pk: str = "int",
        *,
        url: str | None = None,
        engine_options: dict[str, Any] | None = None,
        nullable_token: bool = False,
        **auth: Any,
    ) -> Harness:
        engine = create_async_engine(url or database_url(kind, tmp_path), **(engine_options or {}))
        base, user = make_user_model(pk, f"users_{secrets.token_hex(4)}", nullable_token=nullable_token)
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.create_all)
        created.append((engine, base))
        return build_app(engine, user, Clock(), **auth)

    yield factory
    for engine, base in created:
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.drop_all)
        await engine.dispose()


@pytest.fixture(params=DATABASES)
def db_kind(request: pytest.FixtureRequest) -> str:
    """The database under test: SQLite always, PostgreSQL and MariaDB when their URLs are set (H10)."""
    kind: str = request.param
    return kind
