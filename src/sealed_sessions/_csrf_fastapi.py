"""The CSRF check as a FastAPI dependency, for the routes or routers that declare it.

::

    csrf = CSRFProtect()
    router = APIRouter(dependencies=[Depends(csrf)])

The same checks and answers as :class:`~sealed_sessions.CSRFMiddleware`, raised as
:class:`~sealed_sessions.CSRFError` (a 403 ``HTTPException``; FastAPI answers
``{"detail": "CSRF check failed: token missing"}``). Routes without the dependency are exempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from ._csrf import FIELD_NAME, HEADER_NAME, SAFE_METHODS, CSRFError, CSRFReason, session_in, trusted_origin_set
from ._csrf_middleware import DEFAULT_MAX_BODY, check_max_body, check_names, check_request, csrf_log
from ._rejections import RejectionLog

__all__ = ["CSRFProtect"]


class CSRFProtect:
    """A dependency refusing unsafe requests from other sites or without this session's CSRF token.

    Use it as ``dependencies=[Depends(csrf)]`` on a route, an ``APIRouter`` or the app. Safe
    methods (GET, HEAD, OPTIONS, TRACE) pass at once. For the others: the origin checks, then the
    token from the ``header_name`` header or, for a urlencoded or multipart body, the
    ``field_name`` field of ``await request.form()`` (Starlette caches the form, so the route's
    ``Form()`` parameters still work). A form whose ``Content-Length`` is over ``max_body`` is
    refused (413) before it is read; a chunked body without a length cannot be bounded here:
    limit request bodies at the server or proxy, or use :class:`~sealed_sessions.CSRFMiddleware`,
    which counts as it reads. A refusal raises :class:`~sealed_sessions.CSRFError` and is logged,
    rate-limited, with a reason code.
    """

    trusted_origins: frozenset[str]
    """Other origins (``scheme://host[:port]``) whose requests pass the origin checks."""
    header_name: str
    """The request header carrying the token."""
    field_name: str
    """The form field carrying the token."""
    scope_key: str
    """Where the session is found in the scope (the session middleware's ``scope_key``)."""
    max_body: int
    bearer_exempt: bool
    """Let requests carrying ``Authorization: Bearer`` through unchecked (``SessionAuth(bearer=True)``
    clients, which never authenticate with the cookie); off by default."""
    """The largest ``Content-Length`` of a form searched for the field (413 above it)."""
    rejections: RejectionLog
    """Refused requests: rate-limited logging, and ``rejections.counts`` per reason since start."""

    def __init__(
        self,
        *,
        trusted_origins: Iterable[str] = (),
        header_name: str = HEADER_NAME,
        field_name: str = FIELD_NAME,
        scope_key: str = "session",
        max_body: int = DEFAULT_MAX_BODY,
        bearer_exempt: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_max_body(max_body)
        check_names(header_name=header_name, field_name=field_name, scope_key=scope_key)
        self.max_body = max_body
        self.bearer_exempt = bearer_exempt is True
        self.trusted_origins = trusted_origin_set(trusted_origins)
        self.header_name = header_name
        self.field_name = field_name
        self.scope_key = scope_key
        self.rejections = csrf_log(clock)

    async def __call__(self, request: Request) -> None:
        if request.method in SAFE_METHODS:
            return
        session = session_in(request.scope, self.scope_key, "CSRFProtect")

        async def form_field() -> str | None:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_body:
                raise CSRFError(CSRFReason.TOO_LARGE)
            try:
                value = (await request.form()).get(self.field_name)
            except (HTTPException, MultiPartException):  # malformed: no token in it, as for the middleware
                return None
            except AssertionError:  # Starlette's "python-multipart must be installed": no field to find
                return None
            return value if isinstance(value, str) and value else None

        try:
            await check_request(
                request.scope,
                request.headers,
                session,
                trusted_origins=self.trusted_origins,
                header_name=self.header_name,
                form_field=form_field,
                bearer_exempt=self.bearer_exempt,
            )
        except CSRFError as error:
            self.rejections(error.reason)
            raise
