"""The public API's types as a user's model sees them (checked by mypy --strict, run by pytest)."""

import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, assert_type, get_args

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions import ConfigurationError, SealedSessionsError
from sealed_sessions.fastapi import (
    CurrentUserDependency,
    OptionalUserDependency,
    RevocationCheck,
    SessionAuth,
    UnsupportedModel,
    UnusableUser,
    WebSocketUserDependency,
)
from sealed_sessions.sqlalchemy import SessionTokenMixin, primary_key_of, rotate_session_token


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
    assert_type(auth.current_user, CurrentUserDependency[Member])
    assert_type(auth.optional_user, OptionalUserDependency[Member])
    assert_type(auth.websocket_user, WebSocketUserDependency[Member])
    assert_type(auth.check, RevocationCheck[Member])
    column = Member.__table__.c.session_token
    assert not column.nullable
    assert column.type.length == 64  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", [NoMixin, TwoKeys])
def test_unusable_models_are_refused_at_startup(model: type[object]) -> None:
    """A model without the mixin, or with a composite primary key, is a ConfigurationError at once."""
    with pytest.raises(ConfigurationError):
        SessionAuth(model, get_db)  # type: ignore[type-var]


def test_dependencies_declare_this_auths_scheme_and_database() -> None:
    """Each dependency's FastAPI signature depends on its own SessionAuth's scheme and get_db, under fixed names."""
    auth = SessionAuth(Member, get_db)
    dependencies: list[Any] = [auth.current_user, auth.optional_user, auth.websocket_user]
    for dependency in dependencies:
        parameters = inspect.signature(dependency).parameters
        assert list(parameters)[-2:] == ["session", "db"]
        assert get_args(parameters["session"].annotation)[1].dependency is auth.scheme
        assert get_args(parameters["db"].annotation)[1].dependency is get_db
    assert list(inspect.signature(auth.websocket_user).parameters) == ["websocket", "session", "db"]
    other = SessionAuth(Member, get_db, session_cookie="other")
    assert (
        get_args(inspect.signature(other.current_user).parameters["session"].annotation)[1].dependency is other.scheme
    )


def test_retry_after_must_be_whole_seconds() -> None:
    """A negative or non-integer Retry-After is refused at startup; zero is allowed."""
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigurationError):
            SessionAuth(Member, get_db, retry_after=bad)  # type: ignore[arg-type]
    assert SessionAuth(Member, get_db, retry_after=0).retry_after == 0


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


async def test_misuse_raises_errors_under_the_library_root() -> None:
    """Unusable models and users raise the library's own errors, still a TypeError and a ValueError as before."""
    from starlette.requests import Request

    from sealed_sessions import Session

    with pytest.raises(UnsupportedModel) as model_error:
        primary_key_of(TwoKeys)
    assert isinstance(model_error.value, TypeError)
    auth = SessionAuth(Member, get_db)
    session = Session()
    session[auth.user_id_key] = str(uuid.uuid4())
    request = Request({"type": "http", "session": session, "headers": []})
    async with maker() as db:  # neither call reaches the database
        with pytest.raises(UnusableUser, match="flush") as user_error:
            await rotate_session_token(db, Member(session_token="t" * 43))
        with pytest.raises(UnusableUser, match="keep="):
            await auth.revoke(db, Member(session_token="t" * 43), keep=request)
    assert isinstance(user_error.value, ValueError)
    assert isinstance(user_error.value, SealedSessionsError)
