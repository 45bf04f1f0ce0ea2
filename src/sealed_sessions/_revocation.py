"""The revocation check: one ``SELECT`` that loads the session's user and proves its token current.

::

    SELECT ... FROM users WHERE users.id = :uid AND users.session_token = :tok [AND users.is_active]

Login copies the user's ``session_token`` into the sealed session; :class:`RevocationCheck` runs
the statement on the request's own ``AsyncSession`` and answers with the user or ``None``. It
knows SQLAlchemy, not HTTP: :mod:`sealed_sessions.fastapi` turns answers into 401, 503, closes.

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

Not guaranteed: a revocation is seen at the next check, not by a request already past its own.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Generic, TypeAlias, TypeVar

from sqlalchemy import BigInteger, Connection, Engine, Row, Select, bindparam, inspect, literal
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper

from ._conditions import check_statement, refuse_uncompilable
from ._credentials import parse_user_id, plausible_token
from ._device_store import SEEN_INTERVAL, SEEN_KEY, DeviceStore, device_proof
from ._errors import DatabaseUnavailable, UnsupportedModel
from ._model_checks import active_condition, python_type
from ._rejections import RejectionLog
from ._unit_of_work import guarded, load_row, uses_autocommit, write_one
from .sqlalchemy import SessionTokenMixin, primary_key_of

__all__ = ["REPLICA_RETRY", "TOKEN_KEY", "USER_ID_KEY", "AnyRow", "RevocationCheck", "StatementFactory", "UserId"]

logger: logging.Logger = logging.getLogger("sealed_sessions")

UserT = TypeVar("UserT", bound=SessionTokenMixin)

UserId: TypeAlias = int | uuid.UUID | str
"""A user's primary key as the check binds it."""

AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A row of the check: the user, then any column a route's conditions added."""
StatementFactory: TypeAlias = Callable[[UserId, str], Select[Any]]
"""Builds the check's ``SELECT`` from a user id and a token (see :meth:`RevocationCheck.statement`)."""

USER_ID_KEY = "_auth_uid"
"""Default session key of the user's primary key (an int or a string)."""
TOKEN_KEY = "_auth_token"  # noqa: S105 -- the name of a session key, not a secret
"""Default session key of the revocation token copied at login."""

REPLICA_RETRY = 5
"""Seconds the check stays on the primary after the replica failed, before trying it again."""


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
    devices: DeviceStore[Any] | None
    """Per-device mode: the device table joined into the same ``SELECT``; ``None`` in user-token mode."""
    seen_interval: int
    """Device mode: seconds between two ``last_seen_at`` writes for one device."""
    clock: Callable[[], float]
    refusals: RejectionLog
    """Refused sessions (``session_malformed``, ``session_revoked``): rate-limited logging and counts."""

    def __init__(
        self,
        user_model: type[UserT],
        *,
        active_attribute: str | None = "is_active",
        autocommit: bool | None = None,
        user_id_key: str = USER_ID_KEY,
        token_key: str = TOKEN_KEY,
        devices: DeviceStore[Any] | None = None,
        seen_interval: int = SEEN_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(user_model, type) and issubclass(user_model, SessionTokenMixin)):
            raise UnsupportedModel(f"{user_model!r} must be a mapped class using SessionTokenMixin")
        self._pk_name, pk_column = primary_key_of(user_model)
        self.user_model = user_model
        self.autocommit = autocommit
        self.user_id_key = user_id_key
        self.token_key = token_key
        self.devices = devices
        self.seen_interval = seen_interval
        self.clock = clock
        self._replica_resumes_at = 0.0
        self._prepared_query: Select[Any] | None = None
        self._prepared_for: DeviceStore[Any] | None = None
        self.refusals = RejectionLog(
            "the session check", clock, reason_prefix="session_", template="%s refused a session: %s"
        )
        self._pk_type = python_type(pk_column)
        self._mapper: Mapper[UserT] = inspect(user_model)
        self._active = active_condition(user_model, active_attribute)
        sample: UserId = 1 if self._pk_type is int else "1"
        refuse_uncompilable(lambda: self.statement(sample, "token"), user_model, active_attribute)

    async def __call__(
        self,
        db: AsyncSession,
        session: MutableMapping[str, Any],
        *,
        statement: StatementFactory | None = None,
        read_db: AsyncSession | None = None,
    ) -> UserT | None:
        """The user ``session`` names if its token (and, in device mode, its device) still matches, else ``None``.

        ``statement`` replaces :meth:`statement` (``SessionAuth`` passes its own, so a subclass
        overriding it is honoured). In device mode, a device not seen for ``seen_interval``
        seconds gets its ``last_seen_at`` written in the same unit of work, and the session notes
        when (one cookie update). With ``read_db`` (a read replica), see :meth:`_on_replica`.
        Raises :class:`~sealed_sessions.fastapi.DatabaseUnavailable` if the database fails.
        """
        row = await self.row(db, session, statement=statement, read_db=read_db)
        return None if row is None else row[0]

    async def row(
        self,
        db: AsyncSession,
        session: MutableMapping[str, Any],
        *,
        statement: StatementFactory | None = None,
        read_db: AsyncSession | None = None,
        extend: Callable[[Select[Any]], Select[Any]] | None = None,
    ) -> AnyRow | None:
        """As calling the check, but the whole row: the user, then the columns ``extend`` adds to the
        statement (a route's conditions, see :mod:`._conditions`; on a replica, a false one is a doubt)."""
        raw_uid = session.get(self.user_id_key)
        if raw_uid is None:
            return None
        uid = self.parse_uid(raw_uid)
        token = session.get(self.token_key)
        if uid is None or not plausible_token(token):
            self.refusals("malformed")
            return None
        if statement is None:  # the usual case: one statement built once, values bound per request
            query, params = self._prepared(), {"uid": uid, "token": token}
        else:
            query, params = statement(uid, token), {}
        touch: Callable[[AsyncSession], Awaitable[None]] | None = None
        if self.devices is not None:
            proof = device_proof(session)
            if proof is None:
                self.refusals("malformed")
                return None
            now = int(self.clock())
            if statement is not None:
                query = self.devices.join(query, getattr(self.user_model, self._pk_name))
            params.update(self.devices.parameters(proof, now))
            if self._seen_due(session, now):
                devices = self.devices

                async def touch(db: AsyncSession) -> None:
                    await devices.touch(db, uid, proof.id, now)

        if extend is not None:
            query = extend(query)
        if read_db is None:
            row = await self._load_row(db, query, params)
        else:
            row = await self._on_replica(read_db, db, query, params)
        if row is None:
            self.refusals("revoked")
        elif touch is not None and await self._touch(db, touch):
            session[SEEN_KEY] = int(self.clock())
        return row

    async def _touch(self, db: AsyncSession, touch: Callable[[AsyncSession], Awaitable[None]]) -> bool:
        """The last-seen write, on the primary, as a unit of work of its own after the check. Best
        effort: a failure is logged and the request goes on (the write is tried again next time)."""
        try:
            await guarded(write_one(db, self._mapper, self.autocommit, touch), "last-seen write")
        except DatabaseUnavailable:  # logged by guarded()
            return False
        return True

    async def _on_replica(
        self, read_db: AsyncSession, db: AsyncSession, query: Select[Any], params: dict[str, Any]
    ) -> AnyRow | None:
        """The check on a read replica, with the primary as the judge of every doubt.

        A hit on the replica is trusted (a revocation is seen once the replica has replayed it). A
        miss, or a route's condition found false, is confirmed on the primary before the session is
        refused, so replication lag never logs out a user who just logged in, or kept this device
        while revoking the others, nor forbids a role granted just now. A
        replica that fails is skipped for the primary (logged) for ``REPLICA_RETRY`` seconds, so a
        replica that hangs costs one request its connect timeout, not every request.
        """
        now = self.clock()
        if now < self._replica_resumes_at:  # a replica that just failed is not tried on every request
            return await self._load_row(db, query, params)
        try:
            row = await self._load_row(read_db, query, params, what="session check on the replica")
        except DatabaseUnavailable:
            self._replica_resumes_at = now + REPLICA_RETRY
            logger.warning(
                "replica unavailable: checking on the primary for %d s",
                REPLICA_RETRY,
                extra={"reason": "replica_fallback"},
            )
            return await self._load_row(db, query, params)
        if row is None or not all(row[1:]):
            return await self._load_row(db, query, params)
        return row

    def _seen_due(self, session: Mapping[str, Any], now: int) -> bool:
        seen = session.get(SEEN_KEY)
        return not isinstance(seen, int) or isinstance(seen, bool) or now - seen >= self.seen_interval

    def _prepared(self) -> Select[Any]:
        """The check's statement with the user id, token (and device) as bound parameters, built once.

        Building a ``Select`` costs more than running it on a local database: the request path
        only binds values. Rebuilt if ``devices`` was set after the first call.
        """
        if self._prepared_for is not self.devices or self._prepared_query is None:
            key = getattr(self.user_model, self._pk_name)
            uid = bindparam("uid", type_=BigInteger()) if self._pk_type is int else bindparam("uid")
            query = check_statement(self.user_model, key, uid, bindparam("token"), self._active)
            if self.devices is not None:
                query = self.devices.join(query, key)
            self._prepared_query, self._prepared_for = query, self.devices
        return self._prepared_query

    def statement(self, uid: UserId, token: str) -> Select[Any]:
        """The one ``SELECT``: by primary key, token (and active flag) in the same ``WHERE``."""
        # An int id is sent as a 64-bit parameter: a forged id outside a 32-bit column's range then
        # matches no row, where asyncpg would refuse to encode it and the check would fail.
        key = getattr(self.user_model, self._pk_name)
        value = literal(uid, BigInteger()) if self._pk_type is int else uid
        return check_statement(self.user_model, key, value, token, self._active)

    def parse_uid(self, raw: object) -> UserId | None:
        """A session's user id as the primary key's Python type, or ``None`` if it cannot be one."""
        return parse_user_id(raw, self._pk_type)

    async def load(
        self,
        db: AsyncSession,
        statement: Select[Any],
        params: dict[str, Any] | None = None,
        *,
        what: str = "session check",
    ) -> UserT | None:
        """Run ``statement`` as the check's unit of work (see :mod:`._unit_of_work`): the row's user
        or ``None``. Raises ``DatabaseUnavailable``, logged, if the database fails."""
        row = await self._load_row(db, statement, params, what=what)
        return None if row is None else row[0]

    def uses_autocommit(self, bind: Engine | Connection) -> bool:
        """Whether a check that is its own unit of work runs in autocommit mode on ``bind``."""
        return uses_autocommit(self.autocommit, bind)

    async def _load_row(
        self, db: AsyncSession, statement: Select[Any], params: dict[str, Any] | None, *, what: str = "session check"
    ) -> AnyRow | None:
        """As :meth:`load`, but the whole row (the user, then any route condition's column)."""
        row: AnyRow | None = await guarded(
            load_row(db, statement, params, mapper=self._mapper, autocommit=self.autocommit), what
        )
        return row
