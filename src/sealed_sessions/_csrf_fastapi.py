"""The CSRF check as a FastAPI dependency, for the routes or routers that declare it.

::

    csrf = CSRFProtect()
    router = APIRouter(dependencies=[Depends(csrf)])

The same checks and answers as :class:`~sealed_sessions.CSRFMiddleware`, raised as
:class:`~sealed_sessions.CSRFError` (a 403 ``HTTPException``; FastAPI answers
``{"detail": "CSRF check failed: token missing"}``). Routes without the dependency are exempt.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from ._csrf import SAFE_METHODS, CSRFError, CSRFReason, session_in
from ._csrf_check import CSRFCheck

__all__ = ["CSRFProtect"]


class CSRFProtect(CSRFCheck):
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

        await self.check(request.scope, request.headers, session, form_field)
