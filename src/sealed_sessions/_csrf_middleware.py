"""The CSRF check of one request (shared with the FastAPI dependency), and the pure ASGI middleware
running it: origin, then token, then the app with its body intact.

It runs inside :class:`~sealed_sessions.SessionMiddleware` (the secret lives in the session): add
it *before* ``SessionMiddleware`` with ``add_middleware`` (the last added runs first), or list it
after it in ``middleware=[...]``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._csrf import (
    FIELD_NAME,
    HEADER_NAME,
    SAFE_METHODS,
    CSRFError,
    CSRFReason,
    origin_allowed,
    session_in,
    token_matches,
    trusted_origin_set,
)
from ._errors import ConfigurationError
from ._rejections import RejectionLog
from ._route_names import matched_names

__all__ = ["DEFAULT_MAX_BODY", "CSRFMiddleware", "check_request", "csrf_log"]

DEFAULT_MAX_BODY = 1024 * 1024
"""Bytes of a form body the middleware reads, at most, to find the token field."""
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_ORDER = (
    ": SessionMiddleware must run before it (with add_middleware, add CSRFMiddleware first, then "
    "SessionMiddleware; in middleware=[...], list SessionMiddleware first)"
)


async def check_request(
    scope: Scope,
    headers: Headers,
    session: MutableMapping[str, Any],
    *,
    trusted_origins: frozenset[str],
    header_name: str,
    form_field: Callable[[], Awaitable[str | None]],
    bearer_exempt: bool = False,
) -> None:
    """Raise :class:`CSRFError` unless an unsafe request passes: the origin checks, then the token from
    ``header_name`` or, for a form body only, from ``form_field()`` (which reads the body).

    With ``bearer_exempt``, a request carrying ``Authorization: Bearer ...`` passes unchecked: a
    bearer client, which ``SessionAuth(bearer=True)`` authenticates by that header alone, never by
    the cookie (a browser sends that header cross-site only after a CORS preflight the application
    allowed). Off by default: a route that reads ``request.session`` would still use the cookie.
    """
    if bearer_exempt and headers.get("authorization", "")[:7].lower() == "bearer ":
        return
    if not origin_allowed(scope, headers, trusted_origins):
        raise CSRFError(CSRFReason.ORIGIN)
    token = headers.get(header_name) or None
    if token is None and _is_form(headers):
        token = await form_field()
    if token is None:
        raise CSRFError(CSRFReason.TOKEN_MISSING)
    if not token_matches(session, token):
        raise CSRFError(CSRFReason.TOKEN_INVALID)


def _is_form(headers: Headers) -> bool:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower() in _FORM_TYPES


def csrf_log(clock: Callable[[], float]) -> RejectionLog:
    """The rate-limited log of refusals: reason codes only (``csrf_origin``...), never a token."""
    return RejectionLog("the CSRF check", clock, reason_prefix="csrf_", template="%s refused a request: %s")


class CSRFMiddleware:
    """Refuses unsafe requests (any method but GET, HEAD, OPTIONS, TRACE) from other sites or without
    this session's CSRF token; safe requests, WebSockets and lifespan pass untouched.

    For an unsafe request: the origin checks first (``Sec-Fetch-Site``, else ``Origin``, else
    ``Referer``; ``trusted_origins`` lists other origins allowed, as ``"https://admin.example.com"``),
    then the token from the ``header_name`` header or, for a urlencoded or multipart body, from
    the ``field_name`` field. To find the field the middleware reads the body, at most
    ``max_body`` bytes (a larger form without the header gets 413), and hands the app the very
    same body messages. A refusal is a plain-text 403 naming the category (``CSRF check failed:
    token missing``), logged with a reason code on the ``sealed_sessions`` logger, rate-limited;
    override :meth:`failure_response` to send a page of your own.

    ``exempt`` names routes the check skips, by the name Starlette and FastAPI give them (the
    ``name=``, else the endpoint function's name), a mount's name (all of it), or
    ``"mount:route"`` for one route in a named mount. It needs ``scope["app"]`` to be the
    Starlette or FastAPI application, as it is for middleware added to one.

    A request with no session in ``scope[scope_key]`` is a :class:`ConfigurationError` (a 500):
    the middleware is outside the session middleware, or there is none.
    """

    app: ASGIApp
    """The wrapped application."""
    scope_key: str
    """Where the session is found in the scope (the session middleware's ``scope_key``)."""
    exempt: frozenset[str]
    """Route and mount names the check skips."""
    trusted_origins: frozenset[str]
    """Other origins (``scheme://host[:port]``) whose requests pass the origin checks."""
    header_name: str
    """The request header carrying the token."""
    field_name: str
    """The form field carrying the token."""
    max_body: int
    bearer_exempt: bool
    """Let requests carrying ``Authorization: Bearer`` through unchecked (``SessionAuth(bearer=True)``
    clients, which never authenticate with the cookie); off by default."""
    """Bytes of a form body read, at most, to find the field."""
    rejections: RejectionLog
    """Refused requests: rate-limited logging, and ``rejections.counts`` per reason since start."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        scope_key: str = "session",
        exempt: Iterable[str] = (),
        trusted_origins: Iterable[str] = (),
        header_name: str = HEADER_NAME,
        field_name: str = FIELD_NAME,
        max_body: int = DEFAULT_MAX_BODY,
        bearer_exempt: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(exempt, str):
            raise ConfigurationError(f"exempt must be a collection of route names, as in exempt=[{exempt!r}]")
        exempt = frozenset(exempt)
        if not all(isinstance(name, str) and name for name in exempt):
            raise ConfigurationError(f"exempt must hold route names (non-empty str), got {sorted(map(repr, exempt))}")
        check_max_body(max_body)
        check_names(header_name=header_name, field_name=field_name, scope_key=scope_key)
        self.app = app
        self.scope_key = scope_key
        self.exempt = exempt
        self.trusted_origins = trusted_origin_set(trusted_origins)
        self.header_name = header_name
        self.field_name = field_name
        self.max_body = max_body
        self.bearer_exempt = bearer_exempt is True
        self.rejections = csrf_log(clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        session = session_in(scope, self.scope_key, "CSRFMiddleware", _ORDER)
        if self.exempt and self._is_exempt(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        body: list[Message] = []

        async def form_field() -> str | None:
            body.extend(await self._read_body(headers, receive))
            return await self._form_field(scope, body)

        try:
            await check_request(
                scope,
                headers,
                session,
                trusted_origins=self.trusted_origins,
                header_name=self.header_name,
                form_field=form_field,
                bearer_exempt=self.bearer_exempt,
            )
        except CSRFError as error:
            self.rejections(error.reason)
            await self.failure_response(error, scope)(scope, receive, send)
            return
        except ClientDisconnect:  # gone while we read the body: nobody to answer
            return
        await self.app(scope, _replay(body, receive), send)

    def failure_response(self, error: CSRFError, scope: Scope) -> ASGIApp:
        """The response to a refused request (``scope`` is its scope): ``error.detail`` as plain text,
        ``error.status_code`` (403, or 413 for a form too large to search), ``Cache-Control: no-store``."""
        return PlainTextResponse(error.detail, error.status_code, error.headers)

    async def _read_body(self, headers: Headers, receive: Receive) -> list[Message]:
        """Every body message, at most ``max_body`` bytes in all (refused before reading when
        ``Content-Length`` says more)."""
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            raise CSRFError(CSRFReason.TOO_LARGE)
        body: list[Message] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnect
            body.append(message)
            size += len(message.get("body", b""))
            if size > self.max_body:
                raise CSRFError(CSRFReason.TOO_LARGE)
            more = bool(message.get("more_body", False))
        return body

    async def _form_field(self, scope: Scope, body: list[Message]) -> str | None:
        """The token field of the form in ``body``, parsed by Starlette as the app will parse it."""
        pending = iter(body)

        async def receive() -> Message:
            return next(pending, {"type": "http.disconnect"})

        try:
            form = await Request(scope, receive).form()
        except (HTTPException, MultiPartException):  # malformed: the app could not read it either
            return None
        except AssertionError:  # Starlette's "python-multipart must be installed": no field to find
            return None
        try:
            value = form.get(self.field_name)
        finally:
            await form.close()
        return value if isinstance(value, str) and value else None

    def _is_exempt(self, scope: Scope) -> bool:
        routes = getattr(getattr(scope.get("app"), "router", None), "routes", None)
        if routes is None:
            raise ConfigurationError(
                "CSRFMiddleware(exempt=...) finds routes through scope['app'].router: add the middleware "
                "to a Starlette or FastAPI application"
            )
        return not self.exempt.isdisjoint(matched_names(routes, scope))


def check_max_body(max_body: object) -> None:
    """Refuse a ``max_body`` that is not a positive whole number of bytes."""
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ConfigurationError(f"max_body must be a positive number of bytes, got {max_body!r}")


def check_names(**names: object) -> None:
    """Refuse header, field or scope key names that are not non-empty strings."""
    for option, value in names.items():
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{option} must be a non-empty str, got {value!r}")


def _replay(body: list[Message], receive: Receive) -> Receive:
    """``receive`` that first hands out the messages already read, the same objects in order."""
    if not body:
        return receive
    pending = deque(body)

    async def replay() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replay
