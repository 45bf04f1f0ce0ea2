"""CSRF protection bound to the session: a synchronizer token, and origin checks as a first line.

The session holds one random 32-byte secret under :data:`SESSION_KEY`, made by the first
:func:`csrf_token` call and gone whenever the session is reset (as ``SessionAuth.login`` does) or
emptied. Pages never carry the secret: each :func:`csrf_token` call returns ``base64url(mask ||
secret XOR mask)`` with a fresh random mask, so renderings share no bytes for a compression
oracle to find (BREACH). A token is valid when it unmasks to this session's secret
(``hmac.compare_digest``); the bare secret is not accepted, as it is never handed out.

An unsafe request (any method but GET, HEAD, OPTIONS, TRACE) must pass the origin checks
(:func:`origin_allowed`), then carry a valid token in the header (``X-CSRF-Token``) or, in a form
body, the field ``csrf_token``. A refusal is a :class:`CSRFError`; no message ever holds a token.

Not defended: script in the site's own origin (XSS reads any token), and state changes on safe
methods (a GET with side effects is a bug this cannot cover).
"""

from __future__ import annotations

import base64
import enum
import hmac
import html
import re
import secrets
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import Scope

from ._envelope import b64encode
from ._errors import ConfigurationError, SealedSessionsError

__all__ = [
    "FIELD_NAME",
    "HEADER_NAME",
    "SAFE_METHODS",
    "SESSION_KEY",
    "CSRFError",
    "CSRFReason",
    "csrf_field",
    "csrf_token",
    "origin_allowed",
    "rotate_csrf_token",
    "session_in",
    "token_matches",
    "trusted_origin_set",
]

SESSION_KEY = "_csrf"
"""Session key of the CSRF secret (base64url of :data:`SECRET_SIZE` random bytes)."""
SECRET_SIZE = 32
"""Bytes in the secret, and in each token's mask."""
HEADER_NAME = "X-CSRF-Token"
"""The request header JavaScript clients send the token in."""
FIELD_NAME = "csrf_token"
"""The form field HTML forms send the token in."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""Methods that must not change state (RFC 9110 9.2.1): never checked."""

_SECRET_TEXT = re.compile(r"[A-Za-z0-9_-]{43}")
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9_-]{86}")
_ORIGIN_TEXT = re.compile(r"(?i)https?://[^/?#@*\s]+/?")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class CSRFReason(enum.StrEnum):
    """Why a request was refused: the category named in the response and logged (``csrf_`` + value)."""

    ORIGIN = "origin"
    """A browser said the request came from another site (``Sec-Fetch-Site``, ``Origin``, ``Referer``)."""
    TOKEN_MISSING = "token_missing"  # noqa: S105 -- a reason code, not a secret
    """No token in the header, nor in the form field of a form body."""
    TOKEN_INVALID = "token_invalid"  # noqa: S105 -- a reason code, not a secret
    """A token that is malformed, of another session, or of a session since reset (login, logout)."""
    TOO_LARGE = "too_large"
    """A form body over the middleware's ``max_body`` without the header: not searched (413)."""


class CSRFError(SealedSessionsError, HTTPException):
    """A request refused by the CSRF check; ``reason`` says why.

    Also a Starlette ``HTTPException``, so raised from a route or dependency it becomes a 403 (413
    for ``too_large``) with ``detail`` such as ``"CSRF check failed: token missing"`` and
    ``Cache-Control: no-store``; register a handler for ``CSRFError`` to render a page of your own.
    """

    reason: CSRFReason
    """The category of the refusal."""

    def __init__(self, reason: CSRFReason) -> None:
        self.reason = reason
        status = 413 if reason is CSRFReason.TOO_LARGE else 403
        detail = "CSRF check failed: " + reason.value.replace("_", " ")
        HTTPException.__init__(self, status, detail, {"Cache-Control": "no-store"})


# -- tokens -------------------------------------------------------------------------------------


def session_in(scope: Scope, scope_key: str, user: str, hint: str = "") -> MutableMapping[str, Any]:
    """The session in ``scope[scope_key]``, or a :class:`ConfigurationError` naming ``user`` (plus ``hint``)."""
    session = scope.get(scope_key)
    if not isinstance(session, dict):
        raise ConfigurationError(
            f"{user} found no session in scope[{scope_key!r}]: add sealed_sessions.SessionMiddleware{hint}"
        )
    return session


def _secret_of(session: MutableMapping[str, Any]) -> bytes | None:
    """The session's secret, or ``None`` if it has none (or holds something that is not one)."""
    text = session.get(SESSION_KEY)
    if not isinstance(text, str) or not _SECRET_TEXT.fullmatch(text):
        return None
    return base64.urlsafe_b64decode(text + "=")


def _new_secret(session: MutableMapping[str, Any]) -> bytes:
    secret = secrets.token_bytes(SECRET_SIZE)
    session[SESSION_KEY] = b64encode(secret)
    return secret


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a) ^ int.from_bytes(b)).to_bytes(len(a))


def _masked(secret: bytes) -> str:
    mask = secrets.token_bytes(SECRET_SIZE)
    return b64encode(mask + _xor(mask, secret))


def csrf_token(request: HTTPConnection, *, scope_key: str = "session") -> str:
    """A token for this session, masked afresh on every call (so every rendering differs).

    Makes the session's secret on first use (the response then sets the cookie). For templates:
    ``templates.env.globals["csrf_token"] = csrf_token``, then ``{{ csrf_token(request) }}``, or
    send it to JavaScript for the ``X-CSRF-Token`` header. A page holding a token depends on the
    cookie: it gets ``Vary: Cookie``; do not let a shared cache store it.
    """
    session = session_in(request.scope, scope_key, "csrf_token()")
    return _masked(_secret_of(session) or _new_secret(session))


def rotate_csrf_token(request: HTTPConnection, *, scope_key: str = "session") -> str:
    """Replace the session's secret (every token handed out before is refused) and return a new token.

    Login needs no call: ``Session.reset()`` (which ``SessionAuth.login`` runs) drops the secret and
    the next :func:`csrf_token` makes a new one. For a privilege change within a session.
    """
    return _masked(_new_secret(session_in(request.scope, scope_key, "rotate_csrf_token()")))


class _Html(str):
    """Text that Jinja2 and MarkupSafe insert as it is (the ``__html__`` protocol), not escaped again."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


def csrf_field(request: HTTPConnection, *, field_name: str = FIELD_NAME, scope_key: str = "session") -> str:
    """The hidden form field carrying a fresh :func:`csrf_token`: ``<input type="hidden" ...>``.

    Escaped, and marked safe for Jinja2's autoescaping (``{{ csrf_field(request) }}`` inserts the
    element, not its text).
    """
    token = csrf_token(request, scope_key=scope_key)
    return _Html(f'<input type="hidden" name="{html.escape(field_name)}" value="{html.escape(token)}">')


def token_matches(session: MutableMapping[str, Any], token: str) -> bool:
    """Whether ``token`` unmasks to the session's secret; ``False`` for anything malformed, never an error."""
    secret = _secret_of(session)
    if secret is None or not _TOKEN_TEXT.fullmatch(token):
        return False
    raw = base64.urlsafe_b64decode(token + "==")
    return hmac.compare_digest(_xor(raw[:SECRET_SIZE], raw[SECRET_SIZE:]), secret)


# -- origins ------------------------------------------------------------------------------------


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower case, without a default port; ``None`` if it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # a bad IPv6 literal
        return None
    scheme, netloc = parts.scheme.lower(), parts.netloc.lower()
    if not scheme or not netloc:
        return None
    return f"{scheme}://{_without_default_port(scheme, netloc)}"


def _without_default_port(scheme: str, netloc: str) -> str:
    host, colon, port = netloc.rpartition(":")
    if colon and not netloc.endswith("]") and port == _DEFAULT_PORTS.get(scheme):
        return host
    return netloc


def trusted_origin_set(origins: Iterable[str]) -> frozenset[str]:
    """Check and normalise ``trusted_origins``: each exactly ``scheme://host[:port]`` over http or https."""
    if isinstance(origins, str):
        raise ConfigurationError("trusted_origins must be a collection of origins, not one string")
    result = set()
    for text in origins:
        origin = _origin(text) if isinstance(text, str) and _ORIGIN_TEXT.fullmatch(text) else None
        if origin is None:
            raise ConfigurationError(
                f"trusted origin {text!r} must be exactly scheme://host[:port] over http or https, as in "
                "'https://example.com' (no path, user info or wildcard)"
            )
        result.add(origin)
    return frozenset(result)


def _own_origin(scope: Scope, headers: Headers) -> str:
    scheme = str(scope.get("scheme", "http")).lower()
    host = headers.get("host")
    if host is None and scope.get("server"):
        host = "{}:{}".format(*scope["server"])
    return f"{scheme}://{_without_default_port(scheme, (host or '').strip().lower())}"


def origin_allowed(scope: Scope, headers: Headers, trusted: frozenset[str]) -> bool:
    """The first line, for an unsafe request: may it come from where the browser says it comes from?

    ``Sec-Fetch-Site`` decides when a browser sends it: ``same-origin`` and ``none`` (user
    typed) pass, ``same-site`` and ``cross-site`` pass only with a trusted ``Origin``. It is
    computed by the browser, so it stays right behind a proxy that hides the scheme, and with
    ``Referrer-Policy: no-referrer`` (which turns a same-origin ``Origin`` into ``null``).
    Without it: ``Origin: null`` is refused, any other ``Origin`` must be this request's own
    (scheme, host and port from the scope and ``Host``) or trusted. Without either, a ``Referer``,
    if any, must be of such an origin; a request with none of the three (not a browser, or one
    stripping them all) is left to the token.
    """
    site = headers.get("sec-fetch-site")
    origin = headers.get("origin")
    if site in ("same-origin", "none"):
        return True
    if site in ("same-site", "cross-site"):
        return origin is not None and _origin(origin) in trusted
    claimed = origin if origin is not None else headers.get("referer")
    if claimed is None:
        return True
    found = _origin(claimed)  # None for "null"
    return found is not None and (found == _own_origin(scope, headers) or found in trusted)
