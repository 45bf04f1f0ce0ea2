"""The public API's types as a user's model sees them (checked by mypy --strict, run by pytest)."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import assert_type

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions import ConfigurationError
from sealed_sessions.fastapi import SessionAuth
from sealed_sessions.sqlalchemy import SessionTokenMixin


class Base(DeclarativeBase):
    pass


class Member(SessionTokenMixin, Base):
    __tablename__ = "typing_members"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class NoMixin(Base):
    __tablename__ = "typing_plain"
    id: Mapped[int] = mapped_column(primary_key=True)


class TwoKeys(SessionTokenMixin, Base):
    __tablename__ = "typing_two_keys"
    a: Mapped[int] = mapped_column(primary_key=True)
    b: Mapped[int] = mapped_column(primary_key=True)


engine = create_async_engine("sqlite+aiosqlite://")
maker = async_sessionmaker(engine)


async def get_db() -> AsyncIterator[AsyncSession]:
    async with maker() as db:
        yield db


def test_mixin_and_dependencies_are_typed() -> None:
    """The token column is a str attribute and the dependencies return the user model's type."""
    member = Member(session_token="x")
    assert_type(member.session_token, str)
    auth = SessionAuth(Member, get_db)
    assert_type(auth, SessionAuth[Member])
    current: Callable[..., Awaitable[Member]] = auth.current_user
    optional: Callable[..., Awaitable[Member | None]] = auth.optional_user
    assert current is not optional
    column = Member.__table__.c.session_token
    assert not column.nullable
    assert column.type.length == 64  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", [NoMixin, TwoKeys])
def test_unusable_models_are_refused_at_startup(model: type[object]) -> None:
    """A model without the mixin, or with a composite primary key, is a ConfigurationError at once."""
    with pytest.raises(ConfigurationError):
        SessionAuth(model, get_db)  # type: ignore[type-var]


def test_retry_after_must_be_whole_seconds() -> None:
    """A negative or non-integer Retry-After is refused at startup."""
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigurationError):
            SessionAuth(Member, get_db, retry_after=bad)  # type: ignore[arg-type]


def test_named_active_attribute_must_exist() -> None:
    """Naming an active flag the model lacks is a startup error, not a check silently skipped."""
    with pytest.raises(ConfigurationError):
        SessionAuth(Member, get_db, active_attribute="enabled")
    sql = str(SessionAuth(Member, get_db).statement(uuid.uuid4(), "t"))  # no flag on this model: none checked
    assert "session_token =" in sql
    assert "is_active" not in sql


async def test_login_refuses_unflushed_or_expired_users() -> None:
    """login() explains an unflushed user or an expired token instead of storing nothing or None."""
    from starlette.requests import Request

    from sealed_sessions import Session

    auth = SessionAuth(Member, get_db)
    request = Request({"type": "http", "session": Session(), "headers": []})
    with pytest.raises(ValueError, match="flush"):
        auth.login(request, Member(session_token="t" * 43))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all, tables=[Member.__table__])  # type: ignore[list-item]
    async with maker() as db:  # expire_on_commit=True, SQLAlchemy's default
        member = Member()
        db.add(member)
        await db.commit()
        with pytest.raises(ValueError, match="expire_on_commit"):
            auth.login(request, member)
        await db.refresh(member)
        auth.login(request, member)
    assert request.session[auth.token_key] == member.session_token
    assert request.session[auth.user_id_key] == str(member.id)
    await engine.dispose()
