"""The revocation token on the user row: a SQLAlchemy 2 mixin and the one-``UPDATE`` rotation.

Each user row holds a random ``session_token``. Login copies it into the sealed session; every
authenticated request checks it in the same ``SELECT`` that loads the user
(:class:`sealed_sessions.fastapi.SessionAuth`); rotating it ends every session of that user at its
next request.

Guaranteed: tokens come from :mod:`secrets` (256 bits, URL-safe text), never from a counter. With
a counter, restoring a backup and rotating again would count back up to values that cookies issued
(and revoked) after the backup still hold; a random token is never issued twice. A restore does
bring back the tokens of the backup, and with them the sessions that held those: rotate every
token after a restore if that matters. Rotation is a single ``UPDATE ... WHERE pk = :pk``.

Not guaranteed: anything about a session token that the application writes itself; an empty or
``NULL`` token is always refused by the check, so writing one locks that user out (fail closed).

Per-device sessions add a table: :class:`DeviceSessionMixin` (see :mod:`sealed_sessions._device_model`
for what a row holds and guarantees). On SQLite, :func:`enable_sqlite_foreign_keys` makes its
``ON DELETE CASCADE`` work.

Errors: a model the check cannot use raises :class:`UnsupportedModel` (a ``ConfigurationError``
and a ``TypeError``); a user not flushed yet raises :class:`UnusableUser` (a ``ValueError``).
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Engine, event, inspect, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, Mapper, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from ._columns import exact_string
from ._device_model import DeviceSessionMixin
from ._errors import UnsupportedModel, UnusableUser

__all__ = [
    "SESSION_TOKEN_BYTES",
    "SESSION_TOKEN_MAX_LENGTH",
    "DeviceSessionMixin",
    "SessionTokenMixin",
    "UnsupportedModel",
    "UnusableUser",
    "enable_sqlite_foreign_keys",
    "new_session_token",
    "primary_key_of",
    "rotate_session_token",
]

SESSION_TOKEN_BYTES = 32
"""Random bytes in a fresh token: 256 bits, twice the 128-bit floor."""

SESSION_TOKEN_MAX_LENGTH = 64
"""Width of the ``session_token`` column (a fresh token is 43 characters of base64url)."""


def new_session_token() -> str:
    """A fresh revocation token: 32 bytes from the OS CSPRNG as unpadded base64url (43 characters)."""
    return secrets.token_urlsafe(SESSION_TOKEN_BYTES)


class SessionTokenMixin:
    """Adds a ``session_token`` column to a declarative user model.

    ::

        class User(SessionTokenMixin, Base):
            __tablename__ = "users"
            id: Mapped[int] = mapped_column(primary_key=True)

    The column is ``VARCHAR(64) NOT NULL`` and gets a fresh :func:`new_session_token` on INSERT
    (a Python-side default, so it is set when the row is flushed, not when the object is built).
    It needs no index of its own: the check looks the row up by primary key and compares the
    token in the same ``WHERE``. The model needs exactly one primary-key column (integer, UUID
    or string). An optional boolean ``is_active`` attribute makes the check refuse inactive
    users in the same query.
    """

    session_token: Mapped[str] = mapped_column(
        exact_string(SESSION_TOKEN_MAX_LENGTH), nullable=False, default=new_session_token
    )


def _mapper(model: type[Any]) -> Mapper[Any]:
    mapper = inspect(model, raiseerr=False)
    if not isinstance(mapper, Mapper):
        raise UnsupportedModel(f"{model!r} is not a mapped SQLAlchemy class")
    return mapper


def primary_key_of(model: type[Any]) -> tuple[str, Any]:
    """The attribute name and column of ``model``'s single primary key; :class:`UnsupportedModel` otherwise."""
    mapper = _mapper(model)
    if len(mapper.primary_key) != 1:
        raise UnsupportedModel(f"{model.__name__} needs exactly one primary-key column, has {len(mapper.primary_key)}")
    column = mapper.primary_key[0]
    return mapper.get_property_by_column(column).key, column


def _identity(user: object) -> Any:
    """The primary-key value of a persistent (flushed) ``user``, read without a lazy load."""
    state = inspect(user)
    if state.identity is None:
        raise UnusableUser(
            f"this {type(user).__name__} has no primary key yet: add it and flush or commit before login or revoke"
        )
    return state.identity[0]


async def rotate_session_token(db: AsyncSession, user: SessionTokenMixin) -> str:
    """Give ``user`` a fresh token with one ``UPDATE ... WHERE pk = :pk``; return the new token.

    Does not commit: the caller (or :meth:`SessionAuth.revoke`) does. Every session holding the
    old token is refused from the moment the transaction commits. The in-memory ``user`` gets the
    new value without a second statement.
    """
    model = type(user)
    pk_name, _ = primary_key_of(model)
    pk = _identity(user)
    token = new_session_token()
    statement = (
        update(model)
        .where(getattr(model, pk_name) == pk)
        .values(session_token=token)
        .execution_options(synchronize_session=False)
    )
    await db.execute(statement)
    set_committed_value(user, "session_token", token)
    return token


def enable_sqlite_foreign_keys(engine: AsyncEngine | Engine) -> None:
    """Turn on foreign keys for every new connection of a SQLite ``engine``; other databases: nothing.

    SQLite ignores ``FOREIGN KEY`` (and so ``ON DELETE CASCADE``) unless each connection says
    ``PRAGMA foreign_keys=ON``. Without it, deleting a user leaves its device rows behind (they
    never match the check, which joins the user, but they stay in the table).
    """
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    if sync_engine.dialect.name != "sqlite":
        return

    @event.listens_for(sync_engine, "connect")
    def _foreign_keys_on(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
