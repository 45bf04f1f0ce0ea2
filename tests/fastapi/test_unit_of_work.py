"""How the check meets the app's own transactions: the same behaviour on every driver."""

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from sqlalchemy import String, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions import ConfigurationError, SessionMiddleware
from sealed_sessions.fastapi import SessionAuth
from sealed_sessions.sqlalchemy import SessionTokenMixin, new_session_token
from tests.helpers import KEY_A, ClientFactory

from .harness import POSTGRES_URL, HarnessFactory, database_url, make_user_model


async def test_endpoint_may_begin_its_own_transaction_after_the_check(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """After the check, ``async with db.begin()`` works in the endpoint on SQLite, PostgreSQL and MariaDB alike."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    current_user = Annotated[Any, Depends(h.auth.current_user)]
    database = Annotated[AsyncSession, Depends(h.auth.get_db)]

    @h.app.post("/rename-in-transaction")
    async def rename(name: str, user: current_user, db: database) -> dict[str, str]:
        async with db.begin():
            user.name = name
        return {"name": user.name}

    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        response = await client.post("/rename-in-transaction", params={"name": "ada2"})
    assert response.status_code == 200, response.text
    async with h.maker() as db:
        assert (await db.scalars(select(h.User.name))).all() == ["ada2"]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_check_joins_an_outside_transaction(kind: str, tmp_path: Path, client_factory: ClientFactory) -> None:
    """A session bound to a connection already in a transaction (the test-suite pattern) is checked inside it."""
    if kind == "postgres" and not POSTGRES_URL:
        pytest.skip("SEALED_TEST_POSTGRES_URL is not set")
    engine = create_async_engine(database_url(kind, tmp_path))
    base, user_model = make_user_model("int", f"users_{secrets.token_hex(4)}")
    async with engine.begin() as conn:
        await conn.run_sync(base.metadata.create_all)
    try:
        async with engine.connect() as outer:
            await outer.begin()  # everything below is rolled back at the end, as in a test suite
            await outer.execute(insert(user_model).values(name="ada", session_token=new_session_token()))

            async def get_db() -> AsyncIterator[AsyncSession]:
                # One session per request, joined to the outer connection's transaction.
                async with AsyncSession(bind=outer, join_transaction_mode="create_savepoint") as db:
                    yield db

            auth: SessionAuth[Any] = SessionAuth(user_model, get_db)
            app = FastAPI()
            app.add_middleware(SessionMiddleware, secret_key=KEY_A)

            @app.post("/login")
            async def login(request: Request, db: Annotated[AsyncSession, Depends(get_db)]) -> dict[str, int]:
                found = (await db.scalars(select(user_model))).one()
                auth.login(request, found)
                return {"id": found.id}

            @app.get("/me")
            async def me(current: Annotated[Any, Depends(auth.current_user)]) -> dict[str, str]:
                return {"name": current.name}

            async with client_factory(app) as client:
                assert (await client.post("/login")).status_code == 200
                response = await client.get("/me")
            assert response.status_code == 200, response.text
            assert response.json() == {"name": "ada"}
            await outer.rollback()
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.drop_all)
        await engine.dispose()


def test_python_property_as_active_flag_is_refused_at_startup() -> None:
    """An ``is_active`` that SQL cannot evaluate (a plain @property) is a ConfigurationError, not silently skipped."""

    class Base(DeclarativeBase):
        pass

    class User(SessionTokenMixin, Base):
        __tablename__ = "users_property_flag"
        id: Mapped[int] = mapped_column(primary_key=True)
        status: Mapped[str] = mapped_column(String(10), default="active")

        @property
        def is_active(self) -> bool:
            return self.status == "active"

    async def get_db() -> AsyncIterator[AsyncSession]:
        yield AsyncSession()  # pragma: no cover - never called

    with pytest.raises(ConfigurationError, match="is_active is not a mapped column"):
        SessionAuth(User, get_db)
    SessionAuth(User, get_db, active_attribute=None)  # the explicit opt-out is allowed
