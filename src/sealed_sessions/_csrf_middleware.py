"""The CSRF check of one request (shared with the FastAPI dependency), and the pure ASGI middleware
running it: origin, then token, then the app with its body intact.

It runs inside :class:`~sealed_sessions.SessionMiddleware` (the secret lives in the session): add
it *before* ``SessionMiddleware`` with ``add_middleware`` (the last added runs first), or list it
after it in ``middleware=[...]``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

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
    session_in,
)
from ._csrf_check import DEFAULT_MAX_BODY, CSRFCheck
from ._errors import ConfigurationError
from ._route_names import matched_names

__all__ = ["CSRFMiddleware"]

_ORDER = (
    ": SessionMiddleware must run before it (with add_middleware, add CSRFMiddleware first, then "
    "SessionMiddleware; in middleware=[...], list SessionMiddleware first)"
)


class CSRFMiddleware(CSRFCheck):
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
    exempt: frozenset[str]
    """Route and mount names the check skips."""

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
        super().__init__(
            trusted_origins=trusted_origins,
            header_name=header_name,
            field_name=field_name,
            scope_key=scope_key,
            max_body=max_body,
            bearer_exempt=bearer_exempt,
            clock=clock,
        )
        self.app = app
        self.exempt = exempt

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
            await self.check(scope, headers, session, form_field)
        except CSRFError as error:
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
