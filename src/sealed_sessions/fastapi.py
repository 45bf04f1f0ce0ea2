"""Instant revocation for FastAPI: load the user and check its revocation token in one query.

::

    auth = SessionAuth(User, get_db)
    CurrentUser = Annotated[User, Depends(auth.current_user)]

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]: ...

Login copies the user's ``session_token`` (see :mod:`sealed_sessions.sqlalchemy`) into the sealed
session. Every authenticated request then runs exactly one statement,
``SELECT ... FROM users WHERE users.id = :uid AND users.session_token = :tok [AND users.is_active]``,
on the request's own ``AsyncSession`` (the one ``get_db`` yields, shared with the endpoint).
Rotating the token (:meth:`SessionAuth.revoke`) ends every session of that user at its next request.

Guaranteed:

* No user in the session: 401 (or ``None``) without touching the database.
* No matching row (revoked, deleted, inactive, token ``NULL`` or empty in the database): 401 and
  the session is emptied, so the middleware sends a deletion cookie.
* The database fails (refused, unreachable, pool exhausted, timeout, any SQLAlchemy error or
  ``OSError``): 503 with ``Retry-After``, a generic body, one log record on the
  ``sealed_sessions`` logger naming only the exception classes (a warning for connection
  trouble, an error for anything else, such as a missing column), and the cookie untouched.
  The check never fails open.
* The token is compared by the database, never in Python. A database ``=`` on strings is not
  constant-time, but the row is selected by primary key first and the token is 256 random bits:
  timing cannot be turned into a guess of the token.

Not guaranteed: a cookie issued before a logout that did not revoke stays valid until it expires
(call :meth:`SessionAuth.revoke` at logout to end it); a session sees a revocation at its next
request, not in the middle of one already past its check.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependency signatures built in
# ``_dependencies`` at runtime, and they name objects local to a ``SessionAuth`` instance.

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from typing import Annotated, Any, Generic, TypeGuard, TypeVar

from fastapi import Depends, WebSocket, WebSocketException
from sqlalchemy import BigInteger, Connection, Select, inspect, literal, select
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.status import HTTP_401_UNAUTHORIZED, HTTP_503_SERVICE_UNAVAILABLE, WS_1008_POLICY_VIOLATION

from ._auth_scheme import SessionCookie
from ._errors import ConfigurationError
from .sqlalchemy import SESSION_TOKEN_MAX_LENGTH, SessionTokenMixin, primary_key_of, rotate_session_token

__all__ = ["SessionAuth", "SessionCookie"]

logger = logging.getLogger("sealed_sessions")

UserT = TypeVar("UserT", bound=SessionTokenMixin)

WS_1013_TRY_AGAIN_LATER = 1013
"""WebSocket close code for a temporary server condition (RFC 6455 registry): the database outage."""

GetDB = Callable[..., AsyncIterator[AsyncSession] | Awaitable[AsyncSession] | AsyncSession]
"""The application's own dependency giving the request's ``AsyncSession``."""


class _Unavailable(Exception):
    """The database could not answer the check."""


class SessionAuth(Generic[UserT]):
    """Session login, logout, revocation and the dependencies that check them.

    ``user_model`` is a mapped class using :class:`~sealed_sessions.sqlalchemy.SessionTokenMixin`
    with one primary-key column (``int``, ``uuid.UUID`` or ``str``); ``get_db`` is the
    application's dependency giving the request's ``AsyncSession``. FastAPI caches it per request,
    so the check and the endpoint share one ``AsyncSession`` (and the user object it loaded). Where
    the check ran in autocommit mode (asyncpg, see below), its connection goes back to the pool
    right after the ``SELECT`` and the endpoint's first statement checks one out again.

    Options: ``session_cookie`` and ``scope_key`` must match the ``SessionMiddleware`` (they only
    label the OpenAPI scheme and find the session); ``retry_after`` is the 503's ``Retry-After``;
    ``active_attribute`` names a boolean column (or hybrid property) that must be true: the
    default ``"is_active"`` is used if the model maps it, and a plain Python ``@property`` of
    that name is refused at startup, since SQL cannot evaluate it; any other name must exist;
    ``None`` never checks one; a ``NULL`` there refuses, like false.

    When the request's ``AsyncSession`` has not begun a transaction, the check is a unit of work
    of its own, committed (without expiring the user) before the endpoint runs, on every driver:
    the endpoint may then ``async with db.begin()``. ``autocommit_check`` runs that unit in
    autocommit mode: ``None`` (the default) does so on asyncpg only, where it saves the ``BEGIN``
    and ``ROLLBACK`` round trips (see the README). When ``get_db`` has begun a transaction (or
    the session is bound to an outside connection), the check is one more statement in it.
    ``clock`` gives the login time.

    Dependencies (attributes, for ``Depends``): :attr:`current_user`, :attr:`optional_user`,
    :attr:`websocket_user`.
    """

    user_id_key = "_auth_uid"
    """Session key of the user's primary key (an int or a string)."""
    token_key = "_auth_token"  # noqa: S105 -- the name of a session key, not a secret
    """Session key of the revocation token copied at login."""
    login_time_key = "_auth_at"
    """Session key of the login time, in seconds since the epoch."""

    def __init__(
        self,
        user_model: type[UserT],
        get_db: GetDB,
        *,
        session_cookie: str = "session",
        scope_key: str = "session",
        retry_after: int = 5,
        active_attribute: str | None = "is_active",
        autocommit_check: bool | None = None,
        scheme_name: str | None = None,
        description: str | None = "The sealed session cookie, set at login.",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(user_model, type) and issubclass(user_model, SessionTokenMixin)):
            raise ConfigurationError(f"{user_model!r} must be a mapped class using SessionTokenMixin")
        try:
            self._pk_name, pk_column = primary_key_of(user_model)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from None
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            raise ConfigurationError(f"retry_after must be a whole number of seconds >= 0, got {retry_after!r}")
        self.user_model = user_model
        self.get_db = get_db
        self.retry_after = retry_after
        self.autocommit_check = autocommit_check
        self.clock = clock
        self.scheme = SessionCookie(
            name=session_cookie, scheme_name=scheme_name, description=description, scope_key=scope_key
        )
        self._pk_type = _python_type(pk_column)
        self._mapper = inspect(user_model)
        self._active = _active_condition(user_model, active_attribute)
        self.openapi_responses: dict[int | str, dict[str, Any]] = {
            HTTP_401_UNAUTHORIZED: {"description": "Not authenticated, or the session was revoked"},
            HTTP_503_SERVICE_UNAVAILABLE: {"description": "The session could not be checked; retry later"},
        }
        """For ``APIRouter(responses=auth.openapi_responses)``: documents the 401 and 503 in OpenAPI."""
        self.current_user, self.optional_user, self.websocket_user = self._dependencies()

    # -- the dependencies -----------------------------------------------------------------------

    def _dependencies(
        self,
    ) -> tuple[
        Callable[..., Awaitable[UserT]],
        Callable[..., Awaitable[UserT | None]],
        Callable[..., Awaitable[UserT]],
    ]:
        get_db, scheme = self.get_db, self.scheme

        async def current_user(
            session: Annotated[MutableMapping[str, Any], Depends(scheme)],
            db: Annotated[AsyncSession, Depends(get_db)],
        ) -> UserT:
            """The logged-in user; 401 if there is none, 503 if the database cannot say."""
            try:
                user = await self._check(session, db, clear=True)
            except _Unavailable:
                raise scheme.make_unavailable_error(self.retry_after) from None
            if user is None:
                raise scheme.make_not_authenticated_error()
            return user

        async def optional_user(
            session: Annotated[MutableMapping[str, Any], Depends(scheme)],
            db: Annotated[AsyncSession, Depends(get_db)],
        ) -> UserT | None:
            """The logged-in user or ``None``; 503 if the database cannot say."""
            try:
                return await self._check(session, db, clear=True)
            except _Unavailable:
                raise scheme.make_unavailable_error(self.retry_after) from None

        async def websocket_user(
            websocket: WebSocket,
            session: Annotated[MutableMapping[str, Any], Depends(scheme)],
            db: Annotated[AsyncSession, Depends(get_db)],
        ) -> UserT:
            """The user behind a WebSocket handshake; closes with 1008 if none, 1013 on an outage."""
            try:
                user = await self._check(session, db, clear=False)  # a handshake cannot set cookies
            except _Unavailable:
                raise WebSocketException(WS_1013_TRY_AGAIN_LATER, "Service temporarily unavailable") from None
            if user is None:
                raise WebSocketException(WS_1008_POLICY_VIOLATION, "Not authenticated")
            return user

        return current_user, optional_user, websocket_user

    # -- the check ------------------------------------------------------------------------------

    async def _check(self, session: MutableMapping[str, Any], db: AsyncSession, *, clear: bool) -> UserT | None:
        """The user the session names if its token still matches, else ``None``.

        A session naming a user with a malformed id or token, or whose row no longer matches, is
        emptied when ``clear`` is true. Raises ``_Unavailable`` (and logs) if the database fails.
        """
        raw_uid = session.get(self.user_id_key)
        if raw_uid is None:
            return None
        uid = self._parse_uid(raw_uid)
        token = session.get(self.token_key)
        if uid is None or not _plausible_token(token):
            self._dead(session, clear, "malformed")
            return None
        try:
            user = await self._load(db, self.statement(uid, token))
        except (SQLAlchemyError, OSError) as exc:  # TimeoutError and ConnectionError are OSErrors
            _log_unavailable(exc)
            raise _Unavailable from None
        if user is None:
            self._dead(session, clear, "revoked")
            return None
        return user

    def statement(self, uid: Any, token: str) -> Select[Any]:
        """The one ``SELECT``: by primary key, token (and active flag) in the same ``WHERE``."""
        model = self.user_model
        key = getattr(model, self._pk_name)
        # An int id is sent as a 64-bit parameter: a forged id outside a 32-bit column's range then
        # matches no row, where asyncpg would refuse to encode it and the check would answer 503.
        conditions = [
            key == (literal(uid, BigInteger()) if self._pk_type is int else uid),
            model.session_token == token,
        ]
        if self._active is not None:
            conditions.append(self._active)
        return select(model).where(*conditions)

    async def _load(self, db: AsyncSession, statement: Select[Any]) -> UserT | None:
        bind = db.sync_session.get_bind(mapper=self._mapper)
        if db.in_transaction() or db.new or db.dirty or db.deleted or isinstance(bind, Connection):
            # Inside the app's transaction (begun by get_db, or a session joined to an outside
            # connection's transaction): the check is one more statement in it.
            found: UserT | None = (await db.execute(statement)).scalar_one_or_none()
            return found
        # Nothing begun: the check is a unit of work of its own, ended before the endpoint runs, so
        # the endpoint starts from the same state on every driver (it may `async with db.begin()`).
        # On asyncpg it runs in autocommit mode, which saves the BEGIN and ROLLBACK round trips.
        if self.autocommit_check if self.autocommit_check is not None else bind.dialect.driver == "asyncpg":
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

    def _parse_uid(self, raw: object) -> Any:
        """The session's user id as the primary key's Python type, or ``None`` if it cannot be one."""
        if self._pk_type is int:
            ok = isinstance(raw, int) and not isinstance(raw, bool) and _INT64_MIN <= raw <= _INT64_MAX
            return raw if ok else None
        if not isinstance(raw, str) or not 0 < len(raw) <= 255:
            return None
        if self._pk_type is uuid.UUID:
            try:
                return uuid.UUID(raw)
            except ValueError:
                return None
        return raw

    def _dead(self, session: MutableMapping[str, Any], clear: bool, reason: str) -> None:
        logger.info("session refused: %s", reason, extra={"reason": f"session_{reason}"})
        if clear:
            session.clear()  # the middleware answers with a deletion cookie

    # -- login, logout, revoke ------------------------------------------------------------------

    def session_data(self, user: UserT) -> dict[str, Any]:
        """What :meth:`login` stores for ``user``: for tests that seal a logged-in cookie directly."""
        state = inspect(user)
        token = state.dict.get("session_token")
        if not isinstance(token, str) or not token:
            raise ValueError(
                f"this {type(user).__name__}'s session_token is not loaded (expired by a commit?): "
                "use async_sessionmaker(..., expire_on_commit=False) or `await db.refresh(user)` first"
            )
        if state.identity is None:
            raise ValueError(f"this {type(user).__name__} has no primary key yet: flush or commit it before login")
        pk = state.identity[0]
        return {
            self.user_id_key: str(pk) if isinstance(pk, uuid.UUID) else pk,
            self.token_key: token,
            self.login_time_key: int(self.clock()),
        }

    def login(self, request: HTTPConnection, user: UserT, *, keep: Iterable[str] = ()) -> None:
        """Start a new session for ``user``: drop everything but ``keep``, new lifetime, store id and token.

        The cookie that arrives after login shares nothing with the one before but the kept keys
        (session fixation cannot carry over). ``user`` must be flushed and its token loaded.
        """
        data = self.session_data(user)
        session = self._session(request)
        reset = getattr(session, "reset", None)
        if reset is not None:
            reset(keep=keep)
        else:  # another SessionMiddleware: at least empty it
            kept = {k: session[k] for k in keep if k in session}
            session.clear()
            session.update(kept)
        session.update(data)

    def logout(self, request: HTTPConnection) -> None:
        """Empty the session (the browser gets a deletion cookie).

        This does not revoke: a copy of the cookie taken before logout stays valid until it
        expires. To end it too, ``await auth.revoke(db, user)`` before logging out.
        """
        self._session(request).clear()

    async def revoke(
        self, db: AsyncSession, user: UserT, *, keep: HTTPConnection | None = None, commit: bool = True
    ) -> None:
        """Rotate ``user``'s token (one ``UPDATE``): every session of that user ends at its next request.

        With ``keep=request``, that request's session (which must belong to ``user``) receives
        the new token, so this device stays logged in ("log out all other devices", password
        change). The transaction is committed unless ``commit=False``, in which case sessions
        die when the caller commits; with ``keep``, the new token is stored in the session only
        after a successful commit, or at once with ``commit=False``. Other pending changes in
        ``db`` (a new password hash, say) commit in the same transaction.
        """
        session = None
        if keep is not None:
            session = self._session(keep)
            pk = inspect(user).identity
            if pk is None or self._parse_uid(session.get(self.user_id_key)) != pk[0]:
                raise ValueError("keep= must be a request whose session belongs to the user being revoked")
        token = await rotate_session_token(db, user)
        if commit:
            await db.commit()
        if session is not None:
            session[self.token_key] = token

    def _session(self, conn: HTTPConnection) -> MutableMapping[str, Any]:
        return self.scheme.session_of(conn)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_CONNECTIVITY_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, OSError)


def _log_unavailable(exc: BaseException) -> None:
    """Log a failed check by exception class only: SQLAlchemy's messages carry the parameters,
    the token among them. Connection trouble is a warning; anything else (a missing table or
    column, a transaction in a bad state) is an error that will not heal by itself."""
    dbapi = getattr(exc, "orig", None)
    names = type(exc).__name__
    if dbapi is not None and type(dbapi).__name__ != names:
        names += f" from {type(dbapi).__name__}"
    connectivity = isinstance(exc, _CONNECTIVITY_ERRORS)
    logger.log(
        logging.WARNING if connectivity else logging.ERROR,
        "session check failed: %s (%s)",
        "database unavailable" if connectivity else "database error, not a connectivity problem: check the schema",
        names,
        extra={"reason": "database_unavailable" if connectivity else "database_error", "error": names},
    )


def _active_condition(model: type[Any], name: str | None) -> Any:
    """The SQL condition "this user may log in", or ``None`` for none.

    A Python ``@property`` cannot run inside the one query: refusing it at startup beats silently
    letting disabled users in.
    """
    if name is None:
        return None
    if name in inspect(model).all_orm_descriptors:  # a mapped column or a hybrid property
        return getattr(model, name)
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
