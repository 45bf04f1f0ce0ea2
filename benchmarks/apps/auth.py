"""Scenario 3 and 4: an authenticated FastAPI request, four ways.

Configured by environment variables, read once by :func:`create_app` (uvicorn's ``--factory``):

- ``BENCH_AUTH``:
  ``ours``: ``SessionAuth.current_user``, one SELECT that loads the user and checks the token;
  ``by-id``: the same code path with the token condition removed (the cost of revocation);
  ``by-id-plain``: what an app without revocation would write, ``db.get(User, id)``;
  ``table``: a classic server-side session table: look up the session row, then the user;
  ``redis``: starsessions in Redis for the session, then the user by id.
- ``BENCH_DB_URL``: SQLAlchemy async URL; ``BENCH_SUFFIX``: suffix of the table names;
  ``BENCH_REDIS_URL``: for ``redis``.

Routes: ``/health``; ``/login?uid=N`` starts a session for user N; ``/me`` needs a user and
returns its name.
"""

# No ``from __future__ import annotations``: FastAPI resolves the endpoint annotations at runtime,
# and they name classes built inside create_app().

import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions import SessionMiddleware
from sealed_sessions.fastapi import SessionAuth
from sealed_sessions.sqlalchemy import SessionTokenMixin

from ..inprocess import KEY

__all__ = ["create_app", "make_models"]

USERS = 1000
TABLE_COOKIE = "sid"
TABLE_LIFETIME = 14 * 86400


def make_models(suffix: str) -> tuple[type[DeclarativeBase], type[Any], type[Any]]:
    """The user model and the server-side session table, with per-run table names."""

    class Base(DeclarativeBase):
        pass

    class User(SessionTokenMixin, Base):
        __tablename__ = f"bench_users_{suffix}"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(64))
        email: Mapped[str] = mapped_column(String(128))

    class SessionRow(Base):
        __tablename__ = f"bench_sessions_{suffix}"
        sid: Mapped[str] = mapped_column(String(64), primary_key=True)
        user_id: Mapped[int] = mapped_column(ForeignKey(f"bench_users_{suffix}.id"))
        expires_at: Mapped[int]

    return Base, User, SessionRow


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        return create_async_engine(url)
    return create_async_engine(url, pool_size=20, max_overflow=0)


async def setup(url: str, suffix: str) -> None:
    """Create the tables and USERS users. Run by the harness before starting the servers."""
    base, user_model, _ = make_models(suffix)
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
    base, _, _ = make_models(suffix)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.drop_all)
    finally:
        await engine.dispose()


def create_app() -> FastAPI:
    variant = os.environ["BENCH_AUTH"]
    _, User, SessionRow = make_models(os.environ["BENCH_SUFFIX"])
    engine = make_engine(os.environ["BENCH_DB_URL"])
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with sessions() as db:
            yield db

    DB = Annotated[AsyncSession, Depends(get_db)]
    app = FastAPI(openapi_url=None)

    @app.get("/health")
    async def health() -> str:
        return "ok"

    if variant in ("ours", "by-id", "by-id-plain"):
        app.add_middleware(SessionMiddleware, secret_key=KEY, https_only=False)
        auth = SessionAuth(User, get_db)
        if variant == "by-id":

            class ByIdAuth(SessionAuth[Any]):
                def statement(self, uid: Any, token: str) -> Any:
                    return select(User).where(User.id == uid)

            auth = ByIdAuth(User, get_db)

        @app.get("/login")
        async def login_ours(request: Request, db: DB, uid: int = 1) -> str:
            user = await db.get(User, uid)
            auth.login(request, user)
            return "ok"

        if variant == "by-id-plain":

            async def plain_user(request: Request, db: DB) -> Any:
                uid = request.session.get(auth.user_id_key)
                user = None if uid is None else await db.get(User, uid)
                if user is None:
                    raise HTTPException(401)
                return user

            @app.get("/me")
            async def me_plain(user: Annotated[Any, Depends(plain_user)]) -> str:
                return str(user.name)

        else:

            @app.get("/me")
            async def me(user: Annotated[Any, Depends(auth.current_user)]) -> str:
                return str(user.name)

    elif variant == "table":

        @app.get("/login")
        async def login_table(response: Response, db: DB, uid: int = 1) -> str:
            sid = secrets.token_urlsafe(32)
            db.add(SessionRow(sid=sid, user_id=uid, expires_at=int(time.time()) + TABLE_LIFETIME))
            await db.commit()
            response.set_cookie(TABLE_COOKIE, sid, httponly=True)
            return "ok"

        async def table_user(request: Request, db: DB) -> Any:
            sid = request.cookies.get(TABLE_COOKIE)
            if sid is None:
                raise HTTPException(401)
            uid = (
                await db.execute(
                    select(SessionRow.user_id).where(SessionRow.sid == sid, SessionRow.expires_at > int(time.time()))
                )
            ).scalar_one_or_none()
            user = None if uid is None else await db.get(User, uid)
            if user is None:
                raise HTTPException(401)
            return user

        @app.get("/me")
        async def me_table(user: Annotated[Any, Depends(table_user)]) -> str:
            return str(user.name)

    elif variant == "redis":
        from starsessions import SessionAutoloadMiddleware
        from starsessions import SessionMiddleware as StarSessionMiddleware
        from starsessions.stores.redis import RedisStore

        store = RedisStore(os.environ["BENCH_REDIS_URL"], prefix=os.environ.get("BENCH_REDIS_PREFIX", "bench."))
        app.add_middleware(SessionAutoloadMiddleware)
        app.add_middleware(StarSessionMiddleware, store=store, cookie_https_only=False, lifetime=TABLE_LIFETIME)

        @app.get("/login")
        async def login_redis(request: Request, uid: int = 1) -> str:
            request.session["uid"] = uid
            return "ok"

        async def redis_user(request: Request, db: DB) -> Any:
            uid = request.session.get("uid")
            user = None if uid is None else await db.get(User, uid)
            if user is None:
                raise HTTPException(401)
            return user

        @app.get("/me")
        async def me_redis(user: Annotated[Any, Depends(redis_user)]) -> str:
            return str(user.name)

    else:
        raise SystemExit(f"unknown BENCH_AUTH {variant!r}")
    return app
