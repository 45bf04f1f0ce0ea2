"""The session as FastAPI security schemes: where the dependencies get the session, and what
``/openapi.json`` and the 401 say.

One session, two transports. :class:`SessionCookie` is the single place a ``SessionAuth``
dependency gets its session from::

    Authorization: Bearer <v>  -> SessionBearer opens v under its own subkey -> a plain dict
                                  (the cookie is never read: no Vary: Cookie, no Set-Cookie)
    no bearer header           -> the middleware's session, scope[scope_key], marked accessed

The bearer branch exists only with ``SessionAuth(bearer=True)``. A bearer header that does not
open (malformed, forged, truncated, sealed for the cookie, expired) is a 401 with
``WWW-Authenticate: Bearer error="invalid_token"`` (a 1008 close on a WebSocket), logged with a
``bearer_`` reason code and never the token; it never falls back to the cookie. An
``Authorization`` header of another scheme (``Basic``) is not ours: the cookie decides, as
without ``bearer=True``.

Kept apart from :mod:`sealed_sessions.fastapi` so that module reads as the check itself.
"""

# No `from __future__ import annotations`: FastAPI resolves the annotations of SessionCookie's signature.

import time
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar
from inspect import Parameter, Signature
from typing import Annotated, Any

from fastapi import Depends, HTTPException, WebSocketException
from fastapi.openapi.models import APIKey, APIKeyIn, HTTPBearer
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection
from starlette.status import HTTP_401_UNAUTHORIZED, HTTP_503_SERVICE_UNAVAILABLE, WS_1008_POLICY_VIOLATION

from ._cookie import DEFAULT_NAME
from ._device_store import DEVICE_ID_KEY, SEEN_KEY
from ._errors import ConfigurationError, InvalidCookie, Reason
from ._keys import KeyInput
from ._lifetime import check_seconds, expiry
from ._rejections import RejectionLog
from ._sealer import DEFAULT_MAX_AGE, Sealer

__all__ = ["BEARER_LABEL", "DEFAULT_BEARER_MAX_AGE", "BearerSession", "SessionBearer", "SessionCookie"]

BEARER_LABEL = "sealed-sessions/bearer"
"""What bearer tokens are sealed for, in place of a cookie name: their subkey is derived from it.
A ``/`` can never be in a cookie name (RFC 9110 token), so no cookie shares this subkey: a cookie
never opens as a bearer token, nor a bearer token as a cookie, whatever the cookie is called."""
DEFAULT_BEARER_MAX_AGE = DEFAULT_MAX_AGE
"""Fourteen days: a bearer token's lifetime unless told otherwise, as a cookie's and a device's."""
MAX_REMEMBERED_DEVICES = 10_000
"""Device mode: devices whose last ``last_seen_at`` write one process remembers (the oldest is forgotten)."""

_SCHEME = "bearer"
_POSITIONAL = Parameter.POSITIONAL_OR_KEYWORD
_INVALID_TOKEN = 'Bearer error="invalid_token"'  # noqa: S105 - an RFC 6750 challenge, not a secret
_bearer_request: ContextVar[bool] = ContextVar("sealed_sessions_bearer_request", default=False)
"""Whether the session the scheme last gave, in this request's context, came from a bearer token."""


class BearerSession(dict[str, Any]):
    """A session opened from a bearer token: a plain ``dict``, whose writes go nowhere.

    Nothing sends it back, so whatever a dependency or endpoint writes to it is lost when the
    request ends (a dead session "cleared" here clears no cookie). One write is noted: in device
    mode, the check's record that it wrote the device's ``last_seen_at``, so this process writes
    it again only ``seen_interval`` later.
    """

    __slots__ = ("_seen",)

    def __init__(self, data: Mapping[str, Any], seen: Callable[[int], None] | None = None) -> None:
        super().__init__(data)
        self._seen = seen

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if key == SEEN_KEY and self._seen is not None and isinstance(value, int):
            self._seen(value)


class SessionBearer(SecurityBase):
    """The OpenAPI face and the seal of bearer tokens: ``Authorization: Bearer <sealed session>``.

    A token is the same session data a cookie holds, sealed by a :class:`~sealed_sessions.Sealer`
    under :data:`BEARER_LABEL` and ``context`` (so under a subkey no cookie uses), with its expiry
    sealed inside (``max_age`` seconds from issue; no idle timeout: nothing could renew it).
    Calling it gives the request's :class:`BearerSession`, ``None`` without a bearer header, or
    raises the 401 (1008 on a WebSocket) for a bearer header that does not open.
    """

    model: HTTPBearer
    scheme_name: str
    sealer: Sealer
    """Seals and opens the tokens: the one recipe, under the bearer label."""
    max_age: int
    """Seconds a token lives from issue, unless :meth:`seal` is told otherwise."""
    clock: Callable[[], float]
    refusals: RejectionLog
    """Refused tokens, by reason (``bearer_bad_mac``, ``bearer_expired``...): rate-limited logging and counts."""

    def __init__(
        self,
        secret_key: KeyInput,
        *,
        context: str = "",
        max_age: int = DEFAULT_BEARER_MAX_AGE,
        clock: Callable[[], float] = time.time,
        scheme_name: str | None = None,
        description: str | None = "The sealed session as a bearer token, returned by the login for API clients.",
    ) -> None:
        check_seconds("bearer_max_age", max_age, allow_none=False, positive=True)
        self.sealer = Sealer(secret_key, BEARER_LABEL, max_age=max_age, idle_timeout=None, context=context)
        self.max_age = max_age
        self.clock = clock
        self.model = HTTPBearer(description=description)
        self.scheme_name = scheme_name or self.__class__.__name__
        self.refusals = RejectionLog("bearer token", clock, reason_prefix="bearer_", template="%s refused: %s")
        self._seen: dict[str, int] = {}

    def seal(self, data: Mapping[str, Any], *, max_age: int | None = None) -> str:
        """A token holding ``data``, valid from now for ``max_age`` seconds (default :attr:`max_age`)."""
        check_seconds("max_age", max_age, allow_none=True, positive=True)
        now = int(self.clock())
        expires_at = expiry(now, self.max_age if max_age is None else max_age)
        return self.sealer.seal(data, issued_at=now, expires_at=expires_at, last_active=now)

    def open(self, value: str) -> BearerSession:
        """The session in the token ``value``, or :class:`InvalidCookie` (its ``reason`` says why)."""
        opened = self.sealer.open(value, int(self.clock()))
        if opened.expires_at is None:  # every token we seal expires: only the key could forge one that does not
            raise InvalidCookie(Reason.BAD_PAYLOAD)
        device_id = opened.data.get(DEVICE_ID_KEY)
        if not isinstance(device_id, str):
            return BearerSession(opened.data)
        seen = self._seen.get(device_id)
        if seen is not None:  # written since the token was issued: not due again until seen_interval later
            opened.data[SEEN_KEY] = seen

        def note(at: int) -> None:
            self._seen.pop(device_id, None)  # last written, last forgotten
            if len(self._seen) >= MAX_REMEMBERED_DEVICES:
                del self._seen[next(iter(self._seen))]
            self._seen[device_id] = at

        return BearerSession(opened.data, note)

    def token_of(self, conn: HTTPConnection) -> str | None:
        """The credentials of the request's ``Authorization: Bearer`` header; ``None`` without one.

        ``""`` for a bearer header that cannot be one token (empty, several words, or several
        ``Authorization`` headers besides it): refused as a token that does not open.
        """
        headers = conn.headers.getlist("authorization")
        bearer = [h for h in headers if h.partition(" ")[0].lower() == _SCHEME]
        if not bearer:
            return None
        scheme_and_token = bearer[0].split()
        if len(headers) > 1 or len(scheme_and_token) != 2:
            return ""
        return scheme_and_token[1]

    def make_invalid_token_error(self, conn: HTTPConnection) -> HTTPException | WebSocketException:
        """The answer to a bearer token that does not open, or names no live session (RFC 6750 ``invalid_token``)."""
        if conn.scope["type"] == "websocket":
            return WebSocketException(WS_1008_POLICY_VIOLATION, "Not authenticated")
        return HTTPException(
            status_code=HTTP_401_UNAUTHORIZED,
            detail="Not authenticated",
            headers={"WWW-Authenticate": _INVALID_TOKEN},
        )

    async def __call__(self, conn: HTTPConnection) -> BearerSession | None:
        value = self.token_of(conn)
        if value is None:
            return None
        try:
            return self.open(value)
        except InvalidCookie as exc:
            self.refusals(exc.reason)
            raise self.make_invalid_token_error(conn) from None


class SessionCookie(SecurityBase):
    """The OpenAPI face of the session, and where the dependencies get it: the session cookie,
    or with :meth:`accept_bearer` a bearer token first.

    Used as a sub-dependency of every ``SessionAuth`` dependency, so each route that needs a user
    lists this scheme under ``security`` and ``/openapi.json`` declares it in
    ``components.securitySchemes`` (``type: apiKey``, ``in: cookie``); with a bearer scheme, that
    one is listed too, as the alternative (``security: [{cookie}, {bearer}]``). Calling it gives
    the request's session (a ``dict``) or raises if no session middleware ran. ``name`` only
    labels the scheme and the 401's challenge; it must be the middleware's cookie name.
    """

    model: APIKey
    scheme_name: str
    scope_key: str
    bearer: SessionBearer | None
    """The bearer scheme tried before the cookie (``SessionAuth(bearer=True)``), or ``None``."""
    __signature__: Signature
    """What FastAPI reads as this dependency's parameters: the connection, and the bearer scheme if any."""

    def __init__(
        self,
        *,
        name: str = DEFAULT_NAME,
        scheme_name: str | None = None,
        description: str | None = None,
        scope_key: str = "session",
        bearer: SessionBearer | None = None,
    ) -> None:
        self.model = APIKey(**{"in": APIKeyIn.cookie}, name=name, description=description)  # type: ignore[arg-type]
        self.scheme_name = scheme_name or self.__class__.__name__
        self.scope_key = scope_key
        self.bearer = None
        self.__signature__ = Signature([Parameter("conn", _POSITIONAL, annotation=HTTPConnection)])
        if bearer is not None:
            self.accept_bearer(bearer)

    def accept_bearer(self, bearer: SessionBearer) -> None:
        """Take the session from ``bearer``'s header whenever a request has one, never reading the cookie then.

        Call it before declaring routes: FastAPI reads this dependency's parameters (and so
        which schemes a route lists) when a route is declared.
        """
        self.bearer = bearer
        self.__signature__ = Signature(
            [
                Parameter("conn", _POSITIONAL, annotation=HTTPConnection),
                Parameter("bearer", _POSITIONAL, annotation=Annotated[BearerSession | None, Depends(bearer)]),
            ]
        )

    def make_not_authenticated_error(self) -> HTTPException:
        """The 401: RFC 9110 requires a ``WWW-Authenticate`` challenge.

        It names the cookie; with a bearer scheme, it offers ``Bearer`` too, and answers a
        request whose session came from a bearer token (one the check refused: revoked, say)
        with ``Bearer error="invalid_token"`` alone.
        """
        challenge = f'Cookie name="{self.model.name}"'
        if self.bearer is not None:
            if _bearer_request.get():
                challenge = _INVALID_TOKEN
            else:
                challenge = f"{challenge}, Bearer"
        return HTTPException(
            status_code=HTTP_401_UNAUTHORIZED,
            detail="Not authenticated",
            headers={"WWW-Authenticate": challenge},
        )

    def make_unavailable_error(self, retry_after: int) -> HTTPException:
        """The 503 for a database outage: generic text, ``Retry-After`` in seconds."""
        return HTTPException(
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            detail="Service temporarily unavailable",
            headers={"Retry-After": str(retry_after)},
        )

    def session_of(self, conn: HTTPConnection) -> MutableMapping[str, Any]:
        """The connection's cookie session, or a ``ConfigurationError`` saying the middleware is missing.

        Always the cookie's, also on a request that carries a bearer token: ``login``,
        ``logout`` and ``revoke(keep=)`` act on the cookie (see :mod:`sealed_sessions._bearer`
        for their bearer counterparts).
        """
        session = conn.scope.get(self.scope_key)
        if not isinstance(session, dict):
            raise ConfigurationError(
                f"no session in scope[{self.scope_key!r}]: add sealed_sessions.SessionMiddleware "
                "to the application (outside any router) before using SessionAuth"
            )
        return session

    async def __call__(self, conn: HTTPConnection, bearer: BearerSession | None = None) -> MutableMapping[str, Any]:
        if bearer is None and self.bearer is not None:  # called directly (``await auth.scheme(request)``)
            bearer = await self.bearer(conn)
        _bearer_request.set(bearer is not None)
        if bearer is not None:  # never the cookie: a bearer request is not a browser's (no CSRF)
            return bearer
        session = self.session_of(conn)
        mark_accessed = getattr(session, "mark_accessed", None)
        if mark_accessed is not None:  # the answer depends on the cookie: Vary: Cookie
            mark_accessed()
        return session
