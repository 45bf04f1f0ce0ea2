"""Quick start: the smallest complete FastAPI app with sealed sessions and instant revocation.

This is the README's FastAPI example, verbatim from the imports down (tests/test_readme.py keeps
the two identical), and tests/fastapi/test_readme_example.py runs it: two devices log in, then
"log out everywhere else" leaves the first one logged in and the second one out.

Serve it with ``SESSION_KEY=$(python -m sealed_sessions keygen) uvicorn examples.quickstart:app``.
``DATABASE_URL`` names the database (default: SQLite in memory, which starts with no users).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions import SessionMiddleware
from sealed_sessions.fastapi import SessionAuth
from sealed_sessions.sqlalchemy import SessionTokenMixin


class Base(DeclarativeBase):
    pass


class User(SessionTokenMixin, Base):  # adds session_token: Mapped[str], random, NOT NULL
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)


engine = create_async_engine(os.environ.get("DATABASE_URL", "sqlite+aiosqlite://"))
Database = async_sessionmaker(engine, expire_on_commit=False)


async def get_db() -> AsyncIterator[AsyncSession]:
    async with Database() as db:
        yield db


auth = SessionAuth(User, get_db)
CurrentUser = Annotated[User, Depends(auth.current_user)]
DB = Annotated[AsyncSession, Depends(get_db)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield


app = FastAPI(lifespan=lifespan, responses=auth.openapi_responses)
app.add_middleware(SessionMiddleware, secret_key=os.environ["SESSION_KEY"])


@app.post("/login")
async def login(email: str, request: Request, db: DB) -> dict[str, int]:
    user = (await db.scalars(select(User).where(User.email == email))).one()  # check a password here
    auth.login(request, user)
    return {"id": user.id}


@app.get("/me")
async def me(user: CurrentUser) -> dict[str, str]:
    return {"email": user.email}


@app.post("/logout-everywhere-else")
async def logout_everywhere_else(request: Request, user: CurrentUser, db: DB) -> dict[str, bool]:
    await auth.revoke(db, user, keep=request)  # one UPDATE; other devices get 401 from now on
    return {"ok": True}
