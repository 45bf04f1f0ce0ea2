"""What the CSRF middleware and the FastAPI dependency share: their options, checked once, and the
check of one unsafe request (origin, then token), logged when it refuses."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import Scope

from ._csrf import FIELD_NAME, HEADER_NAME, CSRFError, CSRFReason, origin_allowed, token_matches, trusted_origin_set
from ._errors import ConfigurationError
from ._rejections import RejectionLog

__all__ = ["DEFAULT_MAX_BODY", "CSRFCheck"]

DEFAULT_MAX_BODY = 1024 * 1024
"""Bytes of a form body read, at most, to find the token field."""
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class CSRFCheck:
    """The check with its options: the base of :class:`~sealed_sessions.CSRFMiddleware` and
    :class:`~sealed_sessions.fastapi.CSRFProtect`."""

    trusted_origins: frozenset[str]
    """Other origins (``scheme://host[:port]``) whose requests pass the origin checks."""
    header_name: str
    """The request header carrying the token."""
    field_name: str
    """The form field carrying the token."""
    scope_key: str
    """Where the session is found in the scope (the session middleware's ``scope_key``)."""
    max_body: int
    """Bytes of a form body searched for the field, at most (413 above it)."""
    bearer_exempt: bool
    """Let requests carrying ``Authorization: Bearer`` through unchecked (``SessionAuth(bearer=True)``
    clients, which never authenticate with the cookie); off by default."""
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
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
            raise ConfigurationError(f"max_body must be a positive number of bytes, got {max_body!r}")
        for option, value in (("header_name", header_name), ("field_name", field_name), ("scope_key", scope_key)):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"{option} must be a non-empty str, got {value!r}")
        self.trusted_origins = trusted_origin_set(trusted_origins)
        self.header_name = header_name
        self.field_name = field_name
        self.scope_key = scope_key
        self.max_body = max_body
        self.bearer_exempt = bearer_exempt is True
        # Reason codes only (csrf_origin, csrf_token_missing...), never a token.
        self.rejections = RejectionLog(
            "the CSRF check", clock, reason_prefix="csrf_", template="%s refused a request: %s"
        )

    async def check(
        self,
        scope: Scope,
        headers: Headers,
        session: MutableMapping[str, Any],
        form_field: Callable[[], Awaitable[str | None]],
    ) -> None:
        """Raise :class:`CSRFError`, logged, unless the unsafe request passes (see :func:`_check_request`)."""
        try:
            await _check_request(
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
            raise


async def _check_request(
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
