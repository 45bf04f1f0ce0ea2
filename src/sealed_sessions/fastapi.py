"""Instant revocation for FastAPI: load the user and check its revocation token in one query.

::

    auth = SessionAuth(User, get_db)
    CurrentUser = Annotated[User, Depends(auth.current_user)]

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]: ...

Login copies the user's ``session_token`` (see :mod:`sealed_sessions.sqlalchemy`) into the sealed
session; every authenticated request then runs exactly one statement on the request's own
``AsyncSession``. The check is a :class:`RevocationCheck` (SQLAlchemy, not HTTP; its module says
what the query guarantees); the dependencies :class:`SessionAuth` hands out turn its answers into
HTTP: the user; 401 (or ``None``, or a 1008 close), the session emptied, when there is none; 503
with ``Retry-After`` (or a 1013 close), the cookie untouched, when the database cannot say. In
device mode (``devices=``, see :mod:`._device_sessions`), the same statement also joins the
session's device row.

Not guaranteed: a cookie issued before a logout that did not revoke stays valid until it expires;
a session sees a revocation at its next request, not in the middle of one already past its check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeAlias

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.status import HTTP_401_UNAUTHORIZED, HTTP_503_SERVICE_UNAVAILABLE
from starlette.websockets import WebSocket

from ._auth_scheme import SessionCookie
from ._bearer import DEFAULT_BEARER_MAX_AGE, BearerLogin
from ._cookie import DEFAULT_NAME
from ._csrf_fastapi import CSRFProtect
from ._dependencies import (
    CurrentUserDependency,
    OpenDB,
    OptionalUserDependency,
    RouteUserDependency,
    WebSocketUserDependency,
    watching,
)
from ._device_model import DeviceInfo, DeviceSessionMixin
from ._device_sessions import DEFAULT_MAX_DEVICES, DeviceMode, device_store
from ._device_store import SEEN_INTERVAL
from ._errors import ConfigurationError, DatabaseUnavailable, UnsupportedModel, UnusableUser
from ._events import AuthEvents
from ._fresh import FreshLogin
from ._keys import KeyInput, KeyRing
from ._lifecycle import SessionLifecycle
from ._lifetime import check_seconds
from ._purpose_tokens import PurposeTokens
from ._revocation import REPLICA_RETRY, TOKEN_KEY, USER_ID_KEY, RevocationCheck, StatementFactory, UserId, UserT
from ._sealer import DEFAULT_MAX_AGE

__all__ = [
    "REPLICA_RETRY",
    "CSRFProtect",
    "CurrentUserDependency",
    "DatabaseUnavailable",
    "DeviceInfo",
    "GetDB",
    "OptionalUserDependency",
    "RevocationCheck",
    "RouteUserDependency",
    "SessionAuth",
    "SessionCookie",
    "UnsupportedModel",
    "UnusableUser",
    "WebSocketUserDependency",
]

GetDB: TypeAlias = Callable[..., AsyncIterator[AsyncSession] | Awaitable[AsyncSession] | AsyncSession]
"""The application's own dependency giving the request's ``AsyncSession``."""


class SessionAuth(
    SessionLifecycle[UserT], DeviceMode[UserT], PurposeTokens[UserT], FreshLogin[UserT], BearerLogin[UserT]
):
    """Session login, logout, revocation and the dependencies that check them.

    ``user_model`` is a mapped class using :class:`~sealed_sessions.sqlalchemy.SessionTokenMixin`
    with one primary-key column (``int``, ``uuid.UUID`` or ``str``); ``get_db`` is the
    application's dependency giving the request's ``AsyncSession``. FastAPI caches it per request,
    so the check and the endpoint share one ``AsyncSession`` (and the user object it loaded).

    Options, all keyword-only:

    - ``session_cookie``: must match the middleware's cookie name; it labels the OpenAPI scheme
      and the 401's ``WWW-Authenticate: Cookie name="..."``. The default, ``"__Host-session"``,
      is the middleware's default over HTTPS; the middleware's default is ``"session"`` when
      ``https_only=False``, a ``domain`` or a ``path`` other than ``/`` is set: pass that then.
    - ``scope_key``: must match the middleware's; where the dependencies find the session.
    - ``scheme_name``, ``description``: the OpenAPI security scheme's name (by default
      ``SessionCookie``) and description.
    - ``retry_after``: the 503's ``Retry-After``, in whole seconds (default 5).
    - ``active_attribute``: a boolean column or hybrid that must be true (``NULL`` refuses); the
      default ``"is_active"`` if mapped; ``None`` checks none (see :class:`RevocationCheck`).
    - ``autocommit_check``: how a check that is its own unit of work runs (see
      :mod:`sealed_sessions._unit_of_work`): ``None`` autocommits on asyncpg only.
    - ``clock``: gives the login time (default :func:`time.time`).
    - ``devices``: a model using :class:`~sealed_sessions.sqlalchemy.DeviceSessionMixin`
      switches on per-device sessions, with ``device_max_age``, ``max_devices``,
      ``device_idle_timeout``, ``seen_interval`` and ``record_ip``: see
      :mod:`sealed_sessions._device_sessions` and :meth:`login_device`.
    - ``secret_key`` (and ``context``): the keys that seal purpose-bound tokens and bearer tokens
      (:meth:`issue_token`, ``bearer=True``); give the middleware's. Each use has its own subkey,
      so neither opens as a session cookie, nor as the other.
    - ``bearer``: also accept the session in ``Authorization: Bearer ...`` (see :mod:`._bearer`),
      sealed for ``bearer_max_age`` seconds (14 days by default).
    - ``events``: the :class:`AuthEvents` hub for login, logout, revoke and refusal events; pass
      the middleware's (``SessionMiddleware(..., events=events)``) to get every event in one place.
      By default ``SessionAuth`` builds its own, :attr:`events`.
    - ``read_db``: a dependency giving an ``AsyncSession`` on a read replica. The check runs
      there; a miss is confirmed on the primary before the session is refused, a failing replica
      falls back to the primary, and every write goes to ``get_db``. :attr:`primary_user` checks
      on the primary only.

    Dependencies, for ``Depends(...)``: :attr:`current_user`, :attr:`optional_user`,
    :attr:`websocket_user`; per route, ``fresh_user(max_age)`` (a recent login, else a distinct
    401) and ``user(where=..., fresh=...)`` (conditions in the same statement, else 403), with
    ``confirm(request, user)`` to re-stamp the login time. The check they run is :attr:`check`.
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
    read_db: GetDB | None
    """The dependency giving an ``AsyncSession`` on a read replica, or ``None``."""
    current_user: CurrentUserDependency[UserT]
    primary_user: CurrentUserDependency[UserT]
    """As :attr:`current_user`, but always checked on the primary (``get_db``): for routes that
    must see a revocation at once, or that write to the user (with ``read_db``, ``current_user``'s
    user belongs to the replica's session)."""
    optional_user: OptionalUserDependency[UserT]
    websocket_user: WebSocketUserDependency[UserT]
    keys: KeyRing | None
    """The key ring of ``secret_key`` (purpose-bound and bearer tokens), or ``None``."""
    context: str
    """The application label bound into token subkeys (``context``)."""
    bearer: bool
    """Whether ``Authorization: Bearer`` is accepted (``bearer=True``)."""
    events: AuthEvents
    """Lifecycle events (login, logout, revoke, refusals of the check): ``auth.events.on(kind, callback)``."""

    def __init__(
        self,
        user_model: type[UserT],
        get_db: GetDB,
        *,
        session_cookie: str = DEFAULT_NAME,
        scope_key: str = "session",
        retry_after: int = 5,
        active_attribute: str | None = "is_active",
        autocommit_check: bool | None = None,
        scheme_name: str | None = None,
        description: str | None = "The sealed session cookie, set at login.",
        clock: Callable[[], float] = time.time,
        devices: type[DeviceSessionMixin] | None = None,
        device_max_age: int = DEFAULT_MAX_AGE,
        max_devices: int | None = DEFAULT_MAX_DEVICES,
        device_idle_timeout: int | None = None,
        seen_interval: int = SEEN_INTERVAL,
        record_ip: bool = False,
        read_db: GetDB | None = None,
        secret_key: KeyInput | None = None,
        context: str = "",
        bearer: bool = False,
        bearer_max_age: int = DEFAULT_BEARER_MAX_AGE,
        events: AuthEvents | None = None,
    ) -> None:
        self.check = RevocationCheck(  # first: it refuses an unusable user model
            user_model,
            active_attribute=active_attribute,
            autocommit=autocommit_check,
            user_id_key=self.user_id_key,
            token_key=self.token_key,
            seen_interval=seen_interval,
            clock=clock,
        )
        store = device_store(
            devices,
            user_model,
            device_max_age=device_max_age,
            max_devices=max_devices,
            device_idle_timeout=device_idle_timeout,
            seen_interval=seen_interval,
            record_ip=record_ip,
        )
        self.check.devices = store
        self.device_store = store
        self.record_ip = record_ip
        check_seconds("retry_after", retry_after, allow_none=False, positive=False)
        if retry_after < 0:
            raise ConfigurationError(f"retry_after must be a whole number of seconds >= 0, got {retry_after!r}")
        self.keys = None if secret_key is None else KeyRing(secret_key)
        self.context = context
        self.bearer = bearer
        self.events = AuthEvents() if events is None else events
        self.check.refusals.listener = self.events.emit  # session_revoked, session_malformed
        self.user_model = user_model
        self.get_db = get_db
        self.read_db = read_db
        self.retry_after = retry_after
        self.clock = clock
        self.scheme = SessionCookie(
            name=session_cookie, scheme_name=scheme_name, description=description, scope_key=scope_key
        )
        self.bearer_max_age = bearer_max_age
        self._init_bearer()  # before any route reads the scheme's signature
        if self.scheme.bearer is not None:
            self.scheme.bearer.refusals.listener = self.events.emit
        self.openapi_responses = {
            HTTP_401_UNAUTHORIZED: {"description": "Not authenticated, or the session was revoked"},
            HTTP_503_SERVICE_UNAVAILABLE: {"description": "The session could not be checked; retry later"},
        }
        self.current_user = CurrentUserDependency(self)
        self.primary_user = CurrentUserDependency(self, on_primary=True)
        self.optional_user = OptionalUserDependency(self)
        self.websocket_user = WebSocketUserDependency(self)

    def watching(
        self,
        websocket: WebSocket,
        open_db: OpenDB,
        *,
        every: float,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> AbstractAsyncContextManager[None]:
        """While the ``async with`` block runs, re-check ``websocket``'s session every ``every`` seconds
        (one statement each, on ``open_db()``) and close the socket with 1008 once it is revoked."""
        return watching(self, websocket, open_db, every=every, sleep=sleep)

    @property
    def autocommit_check(self) -> bool | None:
        """The ``autocommit_check`` option, as the :attr:`check` holds it."""
        return self.check.autocommit

    @property
    def statement_override(self) -> StatementFactory | None:
        """:meth:`statement` when it is overridden (the check then builds it per request),
        else ``None``: the check's own statement, built once, with values bound per request."""
        statement = self.statement
        return None if getattr(statement, "__func__", None) is SessionAuth.statement else statement

    def statement(self, uid: UserId, token: str) -> Select[Any]:
        """The check's one ``SELECT`` (see :meth:`RevocationCheck.statement`); a subclass may override it."""
        return self.check.statement(uid, token)
