"""The revocation check: one ``SELECT`` that loads the session's user and proves its token current.

::

    SELECT ... FROM users WHERE users.id = :uid AND users.session_token = :tok [AND users.is_active]

Login copies the user's ``session_token`` (see :mod:`sealed_sessions.sqlalchemy`) into the sealed
session; :class:`RevocationCheck` runs the statement above on the request's own ``AsyncSession``
and answers with the user or ``None``. It knows SQLAlchemy, not HTTP:
:mod:`sealed_sessions.fastapi` turns its answers into 401, 503 and WebSocket closes.

Guaranteed:

* No user id in the session: ``None`` without touching the database.
* A user id or token of the wrong type or shape (only a session forged with the key can hold
  one): ``None`` without a query, logged as ``session_malformed``.
* No matching row (revoked, deleted, inactive, token ``NULL`` or empty in the database): ``None``,
  logged as ``session_revoked``.
* The database fails (refused, unreachable, pool exhausted, timeout, any SQLAlchemy error or
  ``OSError``): :class:`~sealed_sessions.fastapi.DatabaseUnavailable`, after one log record on the
  ``sealed_sessions`` logger naming only the exception classes (a warning for connection
  trouble, an error for anything else, such as a missing column). Never a user: the check never
  fails open.
* The token is compared by the database, never in Python. A database ``=`` on strings is not
  constant-time, but the row is selected by primary key first and the token is 256 random bits:
  timing cannot be turned into a guess of the token.

Not guaranteed: a revocation is seen at the next check, not in the middle of a request already
past its check.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeAlias, TypeGuard, TypeVar

from sqlalchemy import BigInteger, ColumnElement, Connection, Engine, Select, inspect, literal, select
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper

from ._errors import ConfigurationError, DatabaseUnavailable, UnsupportedModel
from .sqlalchemy import SESSION_TOKEN_MAX_LENGTH, SessionTokenMixin, primary_key_of

__all__ = ["TOKEN_KEY", "USER_ID_KEY", "RevocationCheck", "StatementFactory", "UserId"]

logger: logging.Logger = logging.getLogger("sealed_sessions")

UserT = TypeVar("UserT", bound=SessionTokenMixin)

UserId: TypeAlias = int | uuid.UUID | str
"""A user's primary key as the check binds it."""

StatementFactory: TypeAlias = Callable[[UserId, str], Select[Any]]
"""Builds the check's ``SELECT`` from a user id and a token (see :meth:`RevocationCheck.statement`)."""

USER_ID_KEY = "_auth_uid"
"""Default session key of the user's primary key (an int or a string)."""
TOKEN_KEY = "_auth_token"  # noqa: S105 -- the name of a session key, not a secret
"""Default session key of the revocation token copied at login."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_CONNECTIVITY_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, OSError)


class RevocationCheck(Generic[UserT]):
    """Whether a session's user still exists, is active and holds the token the session holds.

    ``user_model`` uses :class:`~sealed_sessions.sqlalchemy.SessionTokenMixin` and has one
    primary-key column (``int``, ``uuid.UUID`` or ``str``); anything else is an
    :class:`~sealed_sessions.fastapi.UnsupportedModel` at construction. ``active_attribute`` names a
    boolean column (or hybrid property) that must be true: the default ``"is_active"`` is used if
    the model maps it, a plain Python ``@property`` of that name is refused (SQL cannot evaluate
    it), any other name must exist, and ``None`` checks none. ``autocommit`` chooses how a check
    that is a unit of work of its own runs: see :meth:`uses_autocommit`. ``user_id_key`` and
    ``token_key`` are the session keys that login filled.
    """

    user_model: type[UserT]
    autocommit: bool | None
    user_id_key: str
    token_key: str

    def __init__(
        self,
        user_model: type[UserT],
        *,
        active_attribute: str | None = "is_active",
        autocommit: bool | None = None,
        user_id_key: str = USER_ID_KEY,
        token_key: str = TOKEN_KEY,
    ) -> None:
        if not (isinstance(user_model, type) and issubclass(user_model, SessionTokenMixin)):
            raise UnsupportedModel(f"{user_model!r} must be a mapped class using SessionTokenMixin")
        self._pk_name, pk_column = primary_key_of(user_model)
        self.user_model = user_model
        self.autocommit = autocommit
        self.user_id_key = user_id_key
        self.token_key = token_key
        self._pk_type = _python_type(pk_column)
        self._mapper: Mapper[UserT] = inspect(user_model)
        self._active = _active_condition(user_model, active_attribute)

    async def __call__(
        self, db: AsyncSession, session: Mapping[str, Any], *, statement: StatementFactory | None = None
    ) -> UserT | None:
        """The user ``session`` names if its token still matches, else ``None``.

        ``statement`` replaces :meth:`statement` (``SessionAuth`` passes its own, so a subclass
        overriding it is honoured). Raises :class:`~sealed_sessions.fastapi.DatabaseUnavailable` if the
        database fails.
        """
        raw_uid = session.get(self.user_id_key)
        if raw_uid is None:
            return None
        uid = self.parse_uid(raw_uid)
        token = session.get(self.token_key)
        if uid is None or not _plausible_token(token):
            _log_refused("malformed")
            return None
        build = statement or self.statement
        user = await self.load(db, build(uid, token))
        if user is None:
            _log_refused("revoked")
        return user

    def statement(self, uid: UserId, token: str) -> Select[Any]:
        """The one ``SELECT``: by primary key, token (and active flag) in the same ``WHERE``."""
        model = self.user_model
        key = getattr(model, self._pk_name)
        # An int id is sent as a 64-bit parameter: a forged id outside a 32-bit column's range then
        # matches no row, where asyncpg would refuse to encode it and the check would fail.
        conditions: list[ColumnElement[bool]] = [
            key == (literal(uid, BigInteger()) if self._pk_type is int else uid),
            model.session_token == token,
        ]
        if self._active is not None:
            conditions.append(self._active)
        return select(model).where(*conditions)

    def parse_uid(self, raw: object) -> UserId | None:
        """A session's user id as the primary key's Python type, or ``None`` if it cannot be one."""
        if self._pk_type is int:
            if isinstance(raw, int) and not isinstance(raw, bool) and _INT64_MIN <= raw <= _INT64_MAX:
                return raw
            return None
        if not isinstance(raw, str) or not 0 < len(raw) <= 255:
            return None
        if self._pk_type is uuid.UUID:
            try:
                return uuid.UUID(raw)
            except ValueError:
                return None
        return raw

    async def load(self, db: AsyncSession, statement: Select[Any]) -> UserT | None:
        """Run ``statement`` on ``db``: the row's user or ``None``; ``DatabaseUnavailable`` on failure.

        When ``db`` has begun nothing, the check is a unit of work of its own, committed (without
        expiring the user) before it returns, so the caller starts from the same state on every
        driver and may ``async with db.begin()``. Inside a transaction (begun by the application,
        or a session bound to an outside connection), it is one more statement in it.
        """
        try:
            bind = db.sync_session.get_bind(mapper=self._mapper)
            if _in_transaction(db, bind):
                found: UserT | None = (await db.execute(statement)).scalar_one_or_none()
                return found
            return await self._own_unit_of_work(db, bind, statement)
        except (SQLAlchemyError, OSError) as exc:  # TimeoutError and ConnectionError are OSErrors
            unavailable = _unavailable(exc)
        # Raised outside the except block, so no traceback chains the database's own message.
        if unavailable.connectivity:
            logger.warning("%s", unavailable, extra={"reason": "database_unavailable", "error": unavailable.error})
        else:
            logger.error("%s", unavailable, extra={"reason": "database_error", "error": unavailable.error})
        raise unavailable

    def uses_autocommit(self, bind: Engine | Connection) -> bool:
        """Whether a check that is its own unit of work runs in autocommit mode on ``bind``.

        ``autocommit`` decides when set; by default only asyncpg does, where it saves the
        ``BEGIN`` and ``COMMIT`` round trips.
        """
        if self.autocommit is not None:
            return self.autocommit
        return bind.dialect.driver == "asyncpg"

    async def _own_unit_of_work(
        self, db: AsyncSession, bind: Engine | Connection, statement: Select[Any]
    ) -> UserT | None:
        if self.uses_autocommit(bind):
            await db.connection(
                bind_arguments={"mapper": self._mapper}, execution_options={"isolation_level": "AUTOCOMMIT"}
            )
        user: UserT | None = (await db.execute(statement)).scalar_one_or_none()
        # Commit without expiring, so the loaded user stays usable. (A rollback would expire it.)
        sync_session = db.sync_session
        expire_on_commit = sync_session.expire_on_commit
        sync_session.expire_on_commit = False
        try:
            await db.commit()
        finally:
            sync_session.expire_on_commit = expire_on_commit
        return user


def _in_transaction(db: AsyncSession, bind: Engine | Connection) -> bool:
    """Whether the check joins work already under way (begun, pending, or an outside connection's)."""
    return bool(db.in_transaction() or db.new or db.dirty or db.deleted or isinstance(bind, Connection))


def _unavailable(exc: BaseException) -> DatabaseUnavailable:
    """The error for a failed check, by exception class only: SQLAlchemy's messages carry the
    parameters, the token among them. Connection trouble heals by itself; anything else (a
    missing table or column, a transaction in a bad state) will not."""
    names = type(exc).__name__
    dbapi = getattr(exc, "orig", None)
    if dbapi is not None and type(dbapi).__name__ != names:
        names += f" from {type(dbapi).__name__}"
    return DatabaseUnavailable(names, connectivity=isinstance(exc, _CONNECTIVITY_ERRORS))


def _log_refused(reason: str) -> None:
    logger.info("session refused: %s", reason, extra={"reason": f"session_{reason}"})


def _active_condition(model: type[Any], name: str | None) -> ColumnElement[bool] | None:
    """The SQL condition "this user may log in", or ``None`` for none.

    A Python ``@property`` cannot run inside the one query: refusing it at startup beats silently
    letting disabled users in.
    """
    if name is None:
        return None
    if name in inspect(model).all_orm_descriptors:  # a mapped column or a hybrid property
        condition: ColumnElement[bool] = getattr(model, name)
        return condition
    if hasattr(model, name):
        raise ConfigurationError(
            f"{model.__name__}.{name} is not a mapped column, so the one-query check cannot use it: map it "
            "(a Boolean column or a hybrid_property), name another with active_attribute=..., or pass "
            "active_attribute=None to let inactive users in"
        )
    if name != "is_active":
        raise ConfigurationError(f"{model.__name__} has no attribute {name!r} (active_attribute)")
    return None


def _plausible_token(token: object) -> TypeGuard[str]:
    """A token worth a query: a non-empty printable ASCII string no longer than the column.

    Anything else can only come from a session forged with the key; refusing it here keeps such
    values (a NUL byte, which PostgreSQL rejects as an error) from turning into a 503 loop.
    """
    return (
        isinstance(token, str)
        and 0 < len(token) <= SESSION_TOKEN_MAX_LENGTH
        and token.isascii()
        and token.isprintable()
    )


def _python_type(column: Any) -> type[Any] | None:
    try:
        python_type: type[Any] = column.type.python_type
    except NotImplementedError:
        return None
    return python_type
