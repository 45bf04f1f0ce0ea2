"""How the check's statement runs on the request's ``AsyncSession``, and what a database failure becomes.

The check must leave the request's ``AsyncSession`` as it found it, on every driver, so the
endpoint may begin its own transaction. When nothing has begun, the check is a unit of work of
its own, ended before it returns without expiring the loaded objects; on asyncpg it runs in
autocommit mode, which saves the ``BEGIN`` and ``COMMIT`` round trips. Where committing does
nothing (a ``SELECT`` in autocommit mode, or on SQLite, which begins no transaction for one) and
no ``before_commit``/``after_commit`` listener of the session waits for it, the unit ends by
handing its connection back (one ``ROLLBACK`` on SQLite, nothing sent on asyncpg; the pool skips
its reset) instead of a ``COMMIT`` followed by the pool's reset; any other statement, and any
other driver, is committed. Engine-level ``commit`` listeners therefore see a rollback for such a
check, and the unit runs on the ``AsyncSession``'s synchronous ``Session`` (a subclass overriding
``AsyncSession.execute`` is not called for it). Inside work already under way (a transaction
begun by the application, pending changes, or a session bound to an outside connection), it is
one more statement in it.

Any database failure (a SQLAlchemy error or an ``OSError``: refused, unreachable, pool exhausted,
timeout, a missing column) becomes :class:`DatabaseUnavailable`, logged on the ``sealed_sessions``
logger (rate-limited, so an outage does not flood the log) with the exception classes only:
SQLAlchemy's messages carry the statement's parameters, a revocation token among them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, Select
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, Session

from ._errors import DatabaseUnavailable

__all__ = ["guarded", "load_row", "uses_autocommit", "write_one"]

logger: logging.Logger = logging.getLogger("sealed_sessions")

T = TypeVar("T")

_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}

_CONNECTIVITY_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, OSError)


def uses_autocommit(choice: bool | None, bind: Engine | Connection) -> bool:
    """Whether a check that is its own unit of work runs in autocommit mode: ``choice`` when set,
    else on asyncpg only."""
    if choice is not None:
        return choice
    return bind.dialect.driver == "asyncpg"


async def load_row(
    db: AsyncSession,
    statement: Select[Any],
    params: dict[str, Any] | None = None,
    *,
    mapper: Mapper[Any],
    autocommit: bool | None,
) -> Row[Any] | None:
    """The one row ``statement`` selects, or ``None``. Database errors propagate (wrap the call in
    :func:`guarded`), after rolling back a unit of work of its own so ``db`` stays usable.

    The whole unit (connection, statement, commit) runs in one hop to SQLAlchemy's synchronous
    side (``run_sync``) instead of one per step: the same calls, a third of the switching.
    """
    return await db.run_sync(_load_row_sync, statement, params, mapper, autocommit)


def _load_row_sync(
    session: Session,
    statement: Select[Any],
    params: dict[str, Any] | None,
    mapper: Mapper[Any],
    autocommit: bool | None,
) -> Row[Any] | None:
    bind = session.get_bind(mapper=mapper)
    if _in_work(session, bind):
        return session.execute(statement, params).one_or_none()
    try:
        autocommitting = uses_autocommit(autocommit, bind)
        if autocommitting:
            session.connection(bind_arguments={"mapper": mapper}, execution_options=_AUTOCOMMIT)
        row = session.execute(statement, params).one_or_none()
        read_only = isinstance(statement, Select)  # a caller's UPDATE ... RETURNING must be committed
        if read_only and (autocommitting or bind.dialect.name == "sqlite") and not _commit_listened(session):
            _close_unit(session, mapper)
        else:
            _commit_keeping_objects_sync(session)
    except BaseException:
        with contextlib.suppress(Exception):  # the connection may be gone; the original error matters
            session.rollback()
        raise
    return row


def _commit_listened(session: Session) -> bool:
    """Whether ``before_commit`` or ``after_commit`` listeners expect to see the check's commit."""
    return bool(session.dispatch.before_commit or session.dispatch.after_commit)


def _close_unit(session: Session, mapper: Mapper[Any]) -> None:
    """End a read-only unit without a ``COMMIT``, the loaded objects kept (neither expired nor expunged).

    Only where ending a ``SELECT`` is a no-op either way: in autocommit mode, and on SQLite (no
    transaction begins before a ``SELECT``). Closing the connection first ends its transaction and
    returns it to the pool in one step: aiosqlite's thread is crossed once (the ``ROLLBACK``), not
    twice (``COMMIT``, then the pool's reset); asyncpg sends nothing. The session's transaction,
    its connection gone, then closes with no further call to the driver.
    """
    session.connection(bind_arguments={"mapper": mapper}).close()
    transaction = session.get_transaction()
    if transaction is not None:
        transaction.close()


def _commit_keeping_objects_sync(session: Session) -> None:
    """Commit without expiring, so a loaded user stays usable. (A rollback would expire it.)"""
    expire_on_commit = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire_on_commit


async def write_one(
    db: AsyncSession, mapper: Mapper[Any], autocommit: bool | None, write: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    """Run ``write`` as a unit of work of its own on ``db`` (autocommit as for a check), or as more
    work in one under way."""
    await _unit(db, mapper, autocommit, lambda: write(db))


async def _unit(db: AsyncSession, mapper: Mapper[Any], autocommit: bool | None, work: Callable[[], Awaitable[T]]) -> T:
    """``work()`` inside the work under way on ``db``, or as a unit of its own: committed, or rolled
    back if it fails (a failed transaction left open would fail the endpoint's next statement)."""
    bind = db.sync_session.get_bind(mapper=mapper)
    if _in_work(db, bind):
        return await work()
    try:
        if uses_autocommit(autocommit, bind):
            await db.connection(bind_arguments={"mapper": mapper}, execution_options=_AUTOCOMMIT)
        result = await work()
        await _commit_keeping_objects(db)
    except BaseException:
        with contextlib.suppress(Exception):  # the connection may be gone; the original error matters
            await db.rollback()
        raise
    return result


def _in_work(db: AsyncSession | Session, bind: Engine | Connection) -> bool:
    """Whether ``db`` has work under way: a transaction begun, pending changes, or an outside connection's."""
    return bool(db.in_transaction() or db.new or db.dirty or db.deleted or isinstance(bind, Connection))


async def _commit_keeping_objects(db: AsyncSession) -> None:
    """Commit without expiring, so a loaded user stays usable. (A rollback would expire it.)"""
    sync_session = db.sync_session
    expire_on_commit = sync_session.expire_on_commit
    sync_session.expire_on_commit = False
    try:
        await db.commit()
    finally:
        sync_session.expire_on_commit = expire_on_commit


async def guarded(operation: Awaitable[T], what: str = "session check") -> T:
    """``await operation``, with any database failure turned into a logged :class:`DatabaseUnavailable`.

    ``what`` names the operation in the error and the log (``"session check"``, ``"device login"``).
    """
    try:
        return await operation
    except (SQLAlchemyError, OSError) as exc:  # TimeoutError and ConnectionError are OSErrors
        unavailable = _unavailable(exc, what)
    # Raised outside the except block, so no traceback chains the database's own message.
    _OUTAGE_LOG(unavailable)
    raise unavailable


class _OutageLog:
    """Logs database failures without flooding the log during an outage.

    Per minute, the first ``BURST`` failures of each kind (``database_unavailable``, a warning;
    ``database_error``, an error) are logged one by one, the rest counted; the first failure of
    the next minute logs one summary with the count. ``clock`` is replaceable for tests.
    """

    BURST = 10
    WINDOW = 60

    def __init__(self) -> None:
        self.clock: Callable[[], float] = time.time
        self._lock = threading.Lock()
        self._window_start = 0.0
        self._logged: Counter[str] = Counter()
        self._suppressed: Counter[str] = Counter()

    def __call__(self, unavailable: DatabaseUnavailable) -> None:
        reason = "database_unavailable" if unavailable.connectivity else "database_error"
        level = logging.WARNING if unavailable.connectivity else logging.ERROR
        now = self.clock()
        with self._lock:
            if now - self._window_start >= self.WINDOW:
                suppressed, self._suppressed = dict(self._suppressed), Counter()
                self._logged.clear()
                self._window_start = now
            else:
                suppressed = {}
            quiet = self._logged[reason] >= self.BURST
            if quiet:
                self._suppressed[reason] += 1
            else:
                self._logged[reason] += 1
        if suppressed:
            logger.warning(
                "%d more database failures in the last minute were not logged one by one: %s",
                sum(suppressed.values()),
                ", ".join(f"{k} {v}" for k, v in sorted(suppressed.items())),
                extra={"reason": "suppressed", "suppressed": suppressed},
            )
        if not quiet:
            logger.log(level, "%s", unavailable, extra={"reason": reason, "error": unavailable.error})


_OUTAGE_LOG = _OutageLog()


def _unavailable(exc: BaseException, what: str) -> DatabaseUnavailable:
    """The error for a failed operation, by exception class only. Connection trouble heals by
    itself; anything else (a missing table or column, a transaction in a bad state) will not."""
    names = type(exc).__name__
    dbapi = getattr(exc, "orig", None)
    if dbapi is not None and type(dbapi).__name__ != names:
        names += f" from {type(dbapi).__name__}"
    return DatabaseUnavailable(names, connectivity=isinstance(exc, _CONNECTIVITY_ERRORS), operation=what)
