"""The dependencies :class:`~sealed_sessions.fastapi.SessionAuth` hands out: the check's answers as HTTP.

Each one runs its auth's :class:`~sealed_sessions._revocation.RevocationCheck` on the request's
session and ``AsyncSession`` and translates the answer: the user; 401, ``None`` or a 1008 close
when there is none; 503 or a 1013 close when the database cannot say. :class:`RouteUserDependency`
adds a route's own conditions to the same statement (403 when they fail) and a fresh-login test on
the sealed login time (a distinct 401 when it is too old).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from inspect import Parameter, Signature
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeAlias

from fastapi import Depends, HTTPException, Request, WebSocket, WebSocketException
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.status import WS_1008_POLICY_VIOLATION, WS_1011_INTERNAL_ERROR
from starlette.websockets import WebSocketState

from ._conditions import RouteCondition, Where
from ._errors import ConfigurationError, DatabaseUnavailable
from ._lifetime import check_seconds
from ._revocation import AnyRow, UserT

if TYPE_CHECKING:
    from .fastapi import SessionAuth

__all__ = [
    "CurrentUserDependency",
    "OpenDB",
    "OptionalUserDependency",
    "RouteUserDependency",
    "WebSocketUserDependency",
    "watch_websocket",
    "watching",
]

logger: logging.Logger = logging.getLogger("sealed_sessions")

WS_1013_TRY_AGAIN_LATER = 1013
"""WebSocket close code for a temporary server condition (RFC 6455 registry): the database outage."""

_SessionMapping: TypeAlias = MutableMapping[str, Any]
_POSITIONAL = Parameter.POSITIONAL_OR_KEYWORD


class _UserDependency(Generic[UserT]):
    """What the dependencies share: a FastAPI signature naming their ``SessionAuth``'s scheme and
    ``get_db``, and the one call to the check, which turns a database failure into "try again later"."""

    _leading: ClassVar[tuple[Parameter, ...]] = ()
    auth: SessionAuth[UserT]
    __signature__: Signature

    def __init__(self, auth: SessionAuth[UserT], *, on_primary: bool = False) -> None:
        self.auth = auth
        # FastAPI reads a dependency's parameters with inspect.signature, which returns
        # __signature__ when an object has one: this instance depends on this auth's scheme and
        # get_db (and read_db, unless it must check on the primary).
        session = Parameter("session", _POSITIONAL, annotation=Annotated[_SessionMapping, Depends(auth.scheme)])
        db = Parameter("db", _POSITIONAL, annotation=Annotated[AsyncSession, Depends(auth.get_db)])
        parameters = [*self._leading, session, db]
        if auth.read_db is not None and not on_primary:
            parameters.append(
                Parameter("read_db", _POSITIONAL, annotation=Annotated[AsyncSession, Depends(auth.read_db)])
            )
        self.__signature__ = Signature(parameters)

    async def _user(
        self, session: _SessionMapping, db: AsyncSession, read_db: AsyncSession | None, *, clear: bool
    ) -> UserT | None:
        """The session's user or ``None``; a dead session is emptied when ``clear`` is true."""
        row = await self._row(session, db, read_db, clear=clear)
        return None if row is None else row[0]

    async def _row(
        self,
        session: _SessionMapping,
        db: AsyncSession,
        read_db: AsyncSession | None,
        *,
        clear: bool,
        extend: Callable[[Select[Any]], Select[Any]] | None = None,
    ) -> AnyRow | None:
        """The check's row (the user, then ``extend``'s columns) or ``None``, emptying a dead session if ``clear``."""
        check = self.auth.check
        try:
            row = await check.row(db, session, statement=self.auth.statement_override, read_db=read_db, extend=extend)
        except DatabaseUnavailable:
            raise self._unavailable() from None
        if row is None and clear and session.get(check.user_id_key) is not None:
            session.clear()  # the middleware answers with a deletion cookie
        return row

    def _unavailable(self) -> HTTPException | WebSocketException:
        return self.auth.scheme.make_unavailable_error(self.auth.retry_after)


class CurrentUserDependency(_UserDependency[UserT]):
    """``Depends(auth.current_user)``: the logged-in user; 401 if there is none, 503 if the database cannot say."""

    async def __call__(self, session: _SessionMapping, db: AsyncSession, read_db: AsyncSession | None = None) -> UserT:
        user = await self._user(session, db, read_db, clear=True)
        if user is None:
            raise self.auth.scheme.make_not_authenticated_error()
        return user


class RouteUserDependency(_UserDependency[UserT]):
    """``Depends(auth.user(where=..., fresh=...))`` and ``Depends(auth.fresh_user(max_age))``: the
    logged-in user, if the route's conditions hold for it and it logged in recently enough.

    Still one statement: the conditions are a column of the check's ``SELECT`` (see
    :mod:`._conditions`). No live session: 401 and the session emptied, as ``current_user``. The
    conditions false or ``NULL``: 403, the session kept. A login older than ``fresh`` seconds (the
    time sealed at login or at ``auth.confirm``): a 401 asking for a new login, the session kept.
    503 when the database cannot say. Build it once, at import time: each call of ``auth.user``
    builds the statement's extension anew.
    """

    where: RouteCondition | None
    """The route's conditions, or ``None``."""
    __signature__: Signature
    """FastAPI's view of the parameters: ``request`` too when a condition reads it."""
    fresh: int | None
    """Seconds a login stays fresh for this route, or ``None``: no freshness required."""

    def __init__(
        self,
        auth: SessionAuth[UserT],
        *,
        where: Where | None = None,
        fresh: int | None = None,
        on_primary: bool = False,
    ) -> None:
        super().__init__(auth, on_primary=on_primary)
        self.where = None if where is None else RouteCondition(where)
        self.fresh = check_seconds("fresh", fresh, allow_none=True, positive=True)
        if self.where is not None and self.where.uses_request:  # FastAPI passes the request to a where= callable
            request = Parameter("request", _POSITIONAL, annotation=Request)
            self.__signature__ = self.__signature__.replace(
                parameters=[request, *self.__signature__.parameters.values()]
            )

    async def __call__(
        self,
        session: _SessionMapping,
        db: AsyncSession,
        read_db: AsyncSession | None = None,
        request: Request | None = None,
    ) -> UserT:
        where = self.where
        extend = None if where is None else (lambda query: where.extend(query, request))
        row = await self._row(session, db, read_db, clear=True, extend=extend)
        if row is None:
            raise self.auth.scheme.make_not_authenticated_error()
        if where is not None and not row[-1]:  # the condition is always the last column
            raise self.auth.make_forbidden_error()
        if self.fresh is not None and not self.auth.login_is_fresh(session, self.fresh):
            raise self.auth.make_stale_login_error(self.fresh)
        user: UserT = row[0]
        return user


class OptionalUserDependency(_UserDependency[UserT]):
    """``Depends(auth.optional_user)``: the logged-in user or ``None``; 503 if the database cannot say."""

    async def __call__(
        self, session: _SessionMapping, db: AsyncSession, read_db: AsyncSession | None = None
    ) -> UserT | None:
        return await self._user(session, db, read_db, clear=True)


class WebSocketUserDependency(_UserDependency[UserT]):
    """``Depends(auth.websocket_user)``: the handshake's user; a close with 1008 if there is none, 1013
    if the database cannot say. The session is left as it is: a handshake cannot set cookies."""

    _leading = (Parameter("websocket", _POSITIONAL, annotation=WebSocket),)

    async def __call__(
        self, websocket: WebSocket, session: _SessionMapping, db: AsyncSession, read_db: AsyncSession | None = None
    ) -> UserT:
        user = await self._user(session, db, read_db, clear=False)
        if user is None:
            raise WebSocketException(WS_1008_POLICY_VIOLATION, "Not authenticated")
        return user

    def _unavailable(self) -> WebSocketException:
        return WebSocketException(WS_1013_TRY_AGAIN_LATER, "Service temporarily unavailable")


OpenDB: TypeAlias = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Opens a fresh ``AsyncSession`` per check, such as an ``async_sessionmaker``."""


async def watch_websocket(
    auth: SessionAuth[Any],
    websocket: WebSocket,
    open_db: OpenDB,
    *,
    every: float,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Re-check ``websocket``'s session every ``every`` seconds; close it with 1008 once revoked.

    Each check is the same one statement as a request's, on a fresh ``AsyncSession`` (the
    handshake's is long gone). A database outage keeps the socket open: the next check decides.
    Any other failure closes the socket with 1011 (fail closed: an unwatched socket would outlive
    a revocation). Returns after closing the socket, or when the socket is closed by either side.
    """
    session = auth.scheme.session_of(websocket)
    while _connected(websocket):
        await sleep(every)
        if not _connected(websocket):
            return
        try:
            async with open_db() as db:
                user = await auth.check(db, session, statement=auth.statement_override)
        except DatabaseUnavailable:
            continue
        except Exception as exc:  # a broken open_db, say: never leave the socket unwatched
            logger.error("WebSocket re-check failed (%s): closing the socket", type(exc).__name__)
            await _close(websocket, WS_1011_INTERNAL_ERROR, "Session check failed")
            return
        if user is None:
            await _close(websocket, WS_1008_POLICY_VIOLATION, "Session revoked")
            return


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close ``websocket`` unless the endpoint closed it meanwhile (a close race is not an error)."""
    with contextlib.suppress(RuntimeError):
        if _connected(websocket):
            await websocket.close(code=code, reason=reason)


def _connected(websocket: WebSocket) -> bool:
    return websocket.application_state == WebSocketState.CONNECTED


@asynccontextmanager
async def watching(
    auth: SessionAuth[Any],
    websocket: WebSocket,
    open_db: OpenDB,
    *,
    every: float,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> AsyncIterator[None]:
    """Run :func:`watch_websocket` in the background for the duration of the ``async with`` block."""
    if not every > 0:
        raise ConfigurationError(f"every must be a positive number of seconds, got {every!r}")
    task = asyncio.create_task(watch_websocket(auth, websocket, open_db, every=every, sleep=sleep))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
