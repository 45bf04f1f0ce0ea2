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
The check is a :class:`RevocationCheck` (which knows SQLAlchemy, not HTTP, and states what the
query guarantees); this module declares the dependencies and turns its answers into HTTP.

Guaranteed:

* No user in the session: 401 (or ``None``) without touching the database.
* No matching row (revoked, deleted, inactive, token ``NULL`` or empty in the database), or a
  malformed user id or token: 401 (or ``None``) and the session is emptied, so the middleware
  sends a deletion cookie. A WebSocket handshake is closed with 1008 instead.
* The database fails (refused, unreachable, pool exhausted, timeout, any SQLAlchemy error or
  ``OSError``): 503 with ``Retry-After``, a generic body, the cookie untouched and one log
  record naming only the exception classes. A WebSocket handshake is closed with 1013 (try
  again later). The check never fails open.

Not guaranteed: a cookie issued before a logout that did not revoke stays valid until it expires
(call :meth:`SessionAuth.revoke` at logout to end it); a session sees a revocation at its next
request, not in the middle of one already past its check.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from inspect import Parameter, Signature
from typing import Annotated, Any, ClassVar, Generic, TypeAlias, TypeVar

from fastapi import Depends, HTTPException, WebSocket, WebSocketException
from sqlalchemy import Select, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.status import HTTP_401_UNAUTHORIZED, HTTP_503_SERVICE_UNAVAILABLE, WS_1008_POLICY_VIOLATION

from ._auth_scheme import SessionCookie
from ._errors import ConfigurationError, DatabaseUnavailable, UnsupportedModel, UnusableUser
from ._lifetime import check_seconds
from ._revocation import TOKEN_KEY, USER_ID_KEY, RevocationCheck, UserId
from .sqlalchemy import SessionTokenMixin, _identity, rotate_session_token

__all__ = [
    "CurrentUserDependency",
    "DatabaseUnavailable",
    "GetDB",
    "OptionalUserDependency",
    "RevocationCheck",
    "SessionAuth",
    "SessionCookie",
    "UnsupportedModel",
    "UnusableUser",
    "WebSocketUserDependency",
]

UserT = TypeVar("UserT", bound=SessionTokenMixin)

WS_1013_TRY_AGAIN_LATER = 1013
"""WebSocket close code for a temporary server condition (RFC 6455 registry): the database outage."""

GetDB: TypeAlias = Callable[..., AsyncIterator[AsyncSession] | Awaitable[AsyncSession] | AsyncSession]
"""The application's own dependency giving the request's ``AsyncSession``."""

_SessionMapping: TypeAlias = MutableMapping[str, Any]
_POSITIONAL = Parameter.POSITIONAL_OR_KEYWORD


class _UserDependency(Generic[UserT]):
    """What the dependencies share: a FastAPI signature naming their ``SessionAuth``'s scheme and
    ``get_db``, and the one call to the check, which turns a database failure into "try again later"."""

    _leading: ClassVar[tuple[Parameter, ...]] = ()
    auth: SessionAuth[UserT]
    __signature__: Signature

    def __init__(self, auth: SessionAuth[UserT]) -> None:
        self.auth = auth
        # FastAPI reads a dependency's parameters with inspect.signature, which returns
        # __signature__ when an object has one: this instance depends on this auth's scheme and get_db.
        session = Parameter("session", _POSITIONAL, annotation=Annotated[_SessionMapping, Depends(auth.scheme)])
        db = Parameter("db", _POSITIONAL, annotation=Annotated[AsyncSession, Depends(auth.get_db)])
        self.__signature__ = Signature([*self._leading, session, db])

    async def _user(self, session: _SessionMapping, db: AsyncSession, *, clear: bool) -> UserT | None:
        """The session's user or ``None``; a dead session is emptied when ``clear`` is true."""
        check = self.auth.check
        try:
            user = await check(db, session, statement=self.auth.statement)
        except DatabaseUnavailable:
            raise self._unavailable() from None
        if user is None and clear and session.get(check.user_id_key) is not None:
            session.clear()  # the middleware answers with a deletion cookie
        return user

    def _unavailable(self) -> HTTPException | WebSocketException:
        return self.auth.scheme.make_unavailable_error(self.auth.retry_after)


class CurrentUserDependency(_UserDependency[UserT]):
    """``Depends(auth.current_user)``: the logged-in user; 401 if there is none, 503 if the database cannot say."""

    async def __call__(self, session: _SessionMapping, db: AsyncSession) -> UserT:
        user = await self._user(session, db, clear=True)
        if user is None:
            raise self.auth.scheme.make_not_authenticated_error()
        return user


class OptionalUserDependency(_UserDependency[UserT]):
    """``Depends(auth.optional_user)``: the logged-in user or ``None``; 503 if the database cannot say."""

    async def __call__(self, session: _SessionMapping, db: AsyncSession) -> UserT | None:
        return await self._user(session, db, clear=True)


class WebSocketUserDependency(_UserDependency[UserT]):
    """``Depends(auth.websocket_user)``: the handshake's user; a close with 1008 if there is none, 1013
    if the database cannot say. The session is left as it is: a handshake cannot set cookies."""

    _leading = (Parameter("websocket", _POSITIONAL, annotation=WebSocket),)

    async def __call__(self, websocket: WebSocket, session: _SessionMapping, db: AsyncSession) -> UserT:
        user = await self._user(session, db, clear=False)
        if user is None:
            raise WebSocketException(WS_1008_POLICY_VIOLATION, "Not authenticated")
        return user

    def _unavailable(self) -> WebSocketException:
        return WebSocketException(WS_1013_TRY_AGAIN_LATER, "Service temporarily unavailable")


class SessionAuth(Generic[UserT]):
    """Session login, logout, revocation and the dependencies that check them.

    ``user_model`` is a mapped class using :class:`~sealed_sessions.sqlalchemy.SessionTokenMixin`
    with one primary-key column (``int``, ``uuid.UUID`` or ``str``); ``get_db`` is the
    application's dependency giving the request's ``AsyncSession``. FastAPI caches it per request,
    so the check and the endpoint share one ``AsyncSession`` (and the user object it loaded).

    Options, all keyword-only:

    - ``session_cookie``, ``scope_key``: must match the ``SessionMiddleware``; they only label
      the OpenAPI scheme and find the session.
    - ``scheme_name``, ``description``: the OpenAPI security scheme's name (by default
      ``SessionCookie``) and description.
    - ``retry_after``: the 503's ``Retry-After``, in whole seconds (default 5).
    - ``active_attribute``: a boolean column (or hybrid property) that must be true; a ``NULL``
      there refuses, like false. The default ``"is_active"`` is used if the model maps it, and a
      plain Python ``@property`` of that name is refused at startup, since SQL cannot evaluate
      it; any other name must exist; ``None`` never checks one.
    - ``autocommit_check``: when the request's ``AsyncSession`` has begun nothing, the check is
      a unit of work of its own, committed before the endpoint runs (see
      :meth:`RevocationCheck.load`). ``True`` runs it in autocommit mode, ``False`` in a
      transaction; ``None`` (the default) autocommits on asyncpg only, where that saves the
      ``BEGIN`` and ``COMMIT`` round trips (see the README).
    - ``clock``: gives the login time (default :func:`time.time`).

    Dependencies, for ``Depends(...)``: :attr:`current_user`, :attr:`optional_user`,
    :attr:`websocket_user`. The check they run is :attr:`check`.
    """

    user_id_key: str = USER_ID_KEY
    """Session key of the user's primary key (an int or a string)."""
    token_key: str = TOKEN_KEY
    """Session key of the revocation token copied at login."""
    login_time_key: str = "_auth_at"
    """Session key of the login time, in seconds since the epoch."""

    user_model: type[UserT]
    get_db: GetDB
    retry_after: int
    clock: Callable[[], float]
    scheme: SessionCookie
    """The OpenAPI security scheme, and how the dependencies find the session."""
    check: RevocationCheck[UserT]
    """The one-query check the dependencies run."""
    openapi_responses: dict[int | str, dict[str, Any]]
    """For ``APIRouter(responses=auth.openapi_responses)``: documents the 401 and 503 in OpenAPI."""
    current_user: CurrentUserDependency[UserT]
    optional_user: OptionalUserDependency[UserT]
    websocket_user: WebSocketUserDependency[UserT]

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
        self.check = RevocationCheck(
            user_model,
            active_attribute=active_attribute,
            autocommit=autocommit_check,
            user_id_key=self.user_id_key,
            token_key=self.token_key,
        )
        check_seconds("retry_after", retry_after, allow_none=False, positive=False)
        if retry_after < 0:
            raise ConfigurationError(f"retry_after must be a whole number of seconds >= 0, got {retry_after!r}")
        self.user_model = user_model
        self.get_db = get_db
        self.retry_after = retry_after
        self.clock = clock
        self.scheme = SessionCookie(
            name=session_cookie, scheme_name=scheme_name, description=description, scope_key=scope_key
        )
        self.openapi_responses = {
            HTTP_401_UNAUTHORIZED: {"description": "Not authenticated, or the session was revoked"},
            HTTP_503_SERVICE_UNAVAILABLE: {"description": "The session could not be checked; retry later"},
        }
        self.current_user = CurrentUserDependency(self)
        self.optional_user = OptionalUserDependency(self)
        self.websocket_user = WebSocketUserDependency(self)

    @property
    def autocommit_check(self) -> bool | None:
        """The ``autocommit_check`` option, as the :attr:`check` holds it."""
        return self.check.autocommit

    def statement(self, uid: UserId, token: str) -> Select[Any]:
        """The check's one ``SELECT`` (see :meth:`RevocationCheck.statement`); a subclass may override it."""
        return self.check.statement(uid, token)

    # -- login, logout, revoke ------------------------------------------------------------------

    def session_data(self, user: UserT) -> dict[str, Any]:
        """What :meth:`login` stores for ``user``: for tests that seal a logged-in cookie directly."""
        token = inspect(user).dict.get("session_token")
        if not isinstance(token, str) or not token:
            raise UnusableUser(
                f"this {type(user).__name__}'s session_token is not loaded (expired by a commit?): "
                "use async_sessionmaker(..., expire_on_commit=False) or `await db.refresh(user)` first"
            )
        pk = _identity(user)
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
        session = self.scheme.session_of(request)
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
        self.scheme.session_of(request).clear()

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
            session = self.scheme.session_of(keep)
            pk = inspect(user).identity
            if pk is None or self.check.parse_uid(session.get(self.user_id_key)) != pk[0]:
                raise UnusableUser("keep= must be a request whose session belongs to the user being revoked")
        token = await rotate_session_token(db, user)
        if commit:
            await db.commit()
        if session is not None:
            session[self.token_key] = token
