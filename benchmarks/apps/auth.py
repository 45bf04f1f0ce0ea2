"""An authenticated FastAPI request, ten ways: the session, then the user from the database.

Configured by environment variables, read once by :func:`create_app` (uvicorn's ``--factory``):

- ``BENCH_AUTH``:
  ``ours``: ``SessionAuth.current_user``, one SELECT that loads the user and checks the token;
  ``ours+replica``: the same with ``read_db``: the check on a read replica, a miss confirmed on
  the primary;
  ``devices``: the same in per-device mode, one SELECT joining the user and its device row;
  ``fresh``: ``SessionAuth.fresh_user(max_age=...)``: ``ours``'s SELECT, then the sealed login time;
  ``where``: ``SessionAuth.user(where=User.role == "member")``: ``ours``'s SELECT with the route's
  condition as a selected column;
  ``by-id``: the same code path with the token condition removed (the cost of revocation);
  ``by-id-plain``: what an app without revocation would write, ``db.get(User, id)``;
  ``table``: a classic server-side session table: look up the session row, then the user;
  ``redis``: starsessions in Redis for the session, then the user by id, as ``by-id-plain``;
  ``raw-asyncpg`` (PostgreSQL only): ``ours``'s SELECT by id and token from the sealed session,
  sent by raw asyncpg from its own pool, no ORM: the floor of what the check's statement costs.
- ``BENCH_DB_URL``: SQLAlchemy async URL; ``BENCH_SUFFIX``: suffix of the table names;
  ``BENCH_READ_DB_URL``: the replica's URL, for ``ours+replica``;
  ``BENCH_REDIS_URL`` and ``BENCH_REDIS_PREFIX``: for ``redis``.

Routes: ``/health``; ``/login?uid=N`` starts a session for user N; ``/me`` needs a user and
returns its name.
"""

# No ``from __future__ import annotations``: FastAPI resolves the endpoint annotations at runtime,
# and they name classes built inside create_app().

import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg  # type: ignore[import-untyped]
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from sqlalchemy import ForeignKey, String, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.middleware import Middleware

from sealed_sessions import SessionMiddleware
from sealed_sessions.fastapi import SessionAuth
from sealed_sessions.sqlalchemy import DeviceSessionMixin, SessionTokenMixin

from ..fixtures import KEY, SESSION_LIFETIME
from .middleware import starsessions_redis

__all__ = ["create_app", "make_models", "setup", "teardown"]

USERS = 1000
TABLE_COOKIE = "sid"
UID = SessionAuth.user_id_key
"""Where every session-keeping variant stores the user id: ours writes it there, so all do."""
POOL_SIZE = 8
"""Connections per variant: ten variants side by side against one server (see :func:`make_engine`)."""


def make_models(suffix: str) -> tuple[type[DeclarativeBase], type[Any], type[Any], type[Any]]:
    """The user model, the server-side session table and the device table, with per-run table names."""

    class Base(DeclarativeBase):
        pass

    class User(SessionTokenMixin, Base):
        __tablename__ = f"bench_users_{suffix}"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(64))
        email: Mapped[str] = mapped_column(String(128))
        role: Mapped[str] = mapped_column(String(16), default="member")

    class SessionRow(Base):
        __tablename__ = f"bench_sessions_{suffix}"
        sid: Mapped[str] = mapped_column(String(64), primary_key=True)
        user_id: Mapped[int] = mapped_column(ForeignKey(f"bench_users_{suffix}.id"))
        expires_at: Mapped[int]

    class Device(DeviceSessionMixin, Base):
        __tablename__ = f"bench_devices_{suffix}"
        user_id: Mapped[int] = mapped_column(ForeignKey(f"bench_users_{suffix}.id", ondelete="CASCADE"), index=True)

    return Base, User, SessionRow, Device


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        return create_async_engine(url)
    # Up to nine variants run side by side against one server, and raw-asyncpg opens its own pool
    # of as many: 9 x 8 + 8 = 80 (+ raw-asyncpg's one login connection) stays under PostgreSQL's
    # default max_connections of 100, leaving room for the harness, the tests and anything else.
    return create_async_engine(url, pool_size=POOL_SIZE, max_overflow=0)


async def setup(url: str, suffix: str) -> None:
    """Create the tables and USERS users. Run by the harness before starting the servers."""
    base, user_model, _, _ = make_models(suffix)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.create_all)
        async with async_sessionmaker(engine)() as db:
            db.add_all(user_model(id=i, name=f"user{i}", email=f"user{i}@example.com") for i in range(1, USERS + 1))
            await db.commit()
    finally:
        await engine.dispose()


async def teardown(url: str, suffix: str) -> None:
    """Drop the tables :func:`setup` created."""
    base, _, _, _ = make_models(suffix)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.drop_all)
    finally:
        await engine.dispose()


def create_app() -> FastAPI:
    variant = os.environ["BENCH_AUTH"]
    _, User, SessionRow, Device = make_models(os.environ["BENCH_SUFFIX"])
    sessions = async_sessionmaker(make_engine(os.environ["BENCH_DB_URL"]), expire_on_commit=False)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with sessions() as db:
            yield db

    DB = Annotated[AsyncSession, Depends(get_db)]

    async def user_by_id(db: AsyncSession, uid: Any) -> Any:
        user = None if uid is None else await db.get(User, uid)
        if user is None:
            raise HTTPException(401)
        return user

    async def session_user(request: Request, db: DB) -> Any:
        return await user_by_id(db, request.session.get(UID))

    async def table_user(request: Request, db: DB) -> Any:
        sid = request.cookies.get(TABLE_COOKIE)
        query = select(SessionRow.user_id).where(SessionRow.sid == sid, SessionRow.expires_at > int(time.time()))
        uid = None if sid is None else (await db.execute(query)).scalar_one_or_none()
        return await user_by_id(db, uid)

    class ByIdAuth(SessionAuth[Any]):
        def statement(self, uid: Any, token: str) -> Any:
            return select(User).where(User.id == uid)

    if variant == "devices":
        auth = SessionAuth(User, get_db, devices=Device, max_devices=None)
    elif variant == "ours+replica":
        replica = async_sessionmaker(make_engine(os.environ["BENCH_READ_DB_URL"]), expire_on_commit=False)

        async def get_read_db() -> AsyncIterator[AsyncSession]:
            async with replica() as db:
                yield db

        auth = SessionAuth(User, get_db, read_db=get_read_db)
    else:
        auth = (ByIdAuth if variant == "by-id" else SessionAuth)(User, get_db)

    async def login_sealed(request: Request, db: DB, uid: int = 1) -> str:
        auth.login(request, await db.get(User, uid))
        return "ok"

    async def login_device(request: Request, db: DB, uid: int = 1) -> str:
        await auth.login_device(db, request, await db.get(User, uid))
        return "ok"

    async def login_table(response: Response, db: DB, uid: int = 1) -> str:
        sid = secrets.token_urlsafe(32)
        db.add(SessionRow(sid=sid, user_id=uid, expires_at=int(time.time()) + SESSION_LIFETIME))
        await db.commit()
        response.set_cookie(TABLE_COOKIE, sid, httponly=True)
        return "ok"

    async def login_redis(request: Request, uid: int = 1) -> str:
        request.session[UID] = uid
        return "ok"

    pg_pool: list[Any] = []  # raw-asyncpg's pool, opened by the lifespan
    raw_sql = (
        f"SELECT id, session_token, name, email, role FROM {User.__tablename__}"  # noqa: S608 -- our table name
        " WHERE id = $1 AND session_token = $2"
    )

    async def raw_user(request: Request) -> Any:
        uid, token = request.session.get(UID), request.session.get(SessionAuth.token_key)
        if not isinstance(uid, int) or not isinstance(token, str):
            raise HTTPException(401)
        row = await pg_pool[0].fetchrow(raw_sql, uid, token)
        if row is None:
            raise HTTPException(401)
        return row

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if variant != "raw-asyncpg":
            yield
            return
        dsn = make_url(os.environ["BENCH_DB_URL"]).set(drivername="postgresql").render_as_string(hide_password=False)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=POOL_SIZE)
        pg_pool.append(pool)
        try:
            yield
        finally:
            await pool.close()

    sealed = [Middleware(SessionMiddleware, secret_key=KEY, https_only=False)]
    # Per variant: the session middleware, the login endpoint, and the dependency that finds the user.
    plans: dict[str, tuple[list[Middleware], Callable[..., Awaitable[str]], Callable[..., Awaitable[Any]]]] = {
        "ours": (sealed, login_sealed, auth.current_user),
        "ours+replica": (sealed, login_sealed, auth.current_user),
        "devices": (sealed, login_device, auth.current_user),
        "fresh": (sealed, login_sealed, auth.fresh_user(max_age=SESSION_LIFETIME)),
        "where": (sealed, login_sealed, auth.user(where=User.role == "member")),
        "by-id": (sealed, login_sealed, auth.current_user),
        "by-id-plain": (sealed, login_sealed, session_user),
        "table": ([], login_table, table_user),
        "raw-asyncpg": (sealed, login_sealed, raw_user),
    }
    if variant == "redis":
        redis = starsessions_redis(os.environ["BENCH_REDIS_URL"], os.environ.get("BENCH_REDIS_PREFIX", "bench."))
        plans["redis"] = (redis, login_redis, session_user)
    if variant not in plans:
        raise SystemExit(f"unknown BENCH_AUTH {variant!r}")
    middleware, login, current_user = plans[variant]

    app = FastAPI(openapi_url=None, middleware=middleware, lifespan=lifespan)

    @app.get("/health")
    async def health() -> str:
        return "ok"

    app.get("/login")(login)

    @app.get("/me")
    async def me(user: Annotated[Any, Depends(current_user)]) -> str:
        return str(user["name"] if variant == "raw-asyncpg" else user.name)

    return app
