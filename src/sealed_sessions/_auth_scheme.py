"""The session cookie as a FastAPI security scheme: what ``/openapi.json`` and the 401 say.

Kept apart from :mod:`sealed_sessions.fastapi` so that module reads as the check itself.
"""

from collections.abc import MutableMapping
from typing import Any

from fastapi import HTTPException
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection
from starlette.status import HTTP_401_UNAUTHORIZED, HTTP_503_SERVICE_UNAVAILABLE

from ._cookie import DEFAULT_NAME
from ._errors import ConfigurationError

__all__ = ["SessionCookie"]


class SessionCookie(SecurityBase):
    """The OpenAPI face of the session: an API key carried in the session cookie.

    Used as a sub-dependency of every ``SessionAuth`` dependency, so each route that needs a user
    lists this scheme under ``security`` and ``/openapi.json`` declares it in
    ``components.securitySchemes`` (``type: apiKey``, ``in: cookie``). Calling it gives the
    request's session (a ``dict``) or raises if no session middleware ran. ``name`` only labels
    the scheme and the 401's challenge; it must be the middleware's cookie name.
    """

    model: APIKey
    scheme_name: str
    scope_key: str

    def __init__(
        self,
        *,
        name: str = DEFAULT_NAME,
        scheme_name: str | None = None,
        description: str | None = None,
        scope_key: str = "session",
    ) -> None:
        self.model = APIKey(**{"in": APIKeyIn.cookie}, name=name, description=description)  # type: ignore[arg-type]
        self.scheme_name = scheme_name or self.__class__.__name__
        self.scope_key = scope_key

    def make_not_authenticated_error(self) -> HTTPException:
        """The 401: RFC 9110 requires a ``WWW-Authenticate`` challenge; this one names the cookie."""
        return HTTPException(
            status_code=HTTP_401_UNAUTHORIZED,
            detail="Not authenticated",
            headers={"WWW-Authenticate": f'Cookie name="{self.model.name}"'},
        )

    def make_unavailable_error(self, retry_after: int) -> HTTPException:
        """The 503 for a database outage: generic text, ``Retry-After`` in seconds."""
        return HTTPException(
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            detail="Service temporarily unavailable",
            headers={"Retry-After": str(retry_after)},
        )

    def session_of(self, conn: HTTPConnection) -> MutableMapping[str, Any]:
        """The connection's session, or a ``ConfigurationError`` saying the middleware is missing."""
        session = conn.scope.get(self.scope_key)
        if not isinstance(session, dict):
            raise ConfigurationError(
                f"no session in scope[{self.scope_key!r}]: add sealed_sessions.SessionMiddleware "
                "to the application (outside any router) before using SessionAuth"
            )
        return session

    async def __call__(self, conn: HTTPConnection) -> MutableMapping[str, Any]:
        session = self.session_of(conn)
        mark_accessed = getattr(session, "mark_accessed", None)
        if mark_accessed is not None:  # the answer depends on the cookie: Vary: Cookie
            mark_accessed()
        return session
