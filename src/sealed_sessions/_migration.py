"""Readers for the session cookies of the framework you are leaving, so that nobody is logged out.

A reader opens one legacy cookie value into a :class:`LegacySession`; the middleware
(``SessionMiddleware(legacy=...)``) asks it only when our own cookie is absent, reseals what it
returns as ours on that response and deletes the legacy cookie (single use). Every way a value can
fail raises :class:`InvalidCookie` with an existing :class:`Reason`, in the order the envelope
uses: ``TOO_LARGE`` (before any work), ``MALFORMED`` (before the MAC), ``BAD_MAC`` (the MAC, or
a value made for another cookie name), then, for authentic values, ``BAD_PAYLOAD``, ``FUTURE`` or
``EXPIRED``. Nothing else escapes ``open``.

Here: :class:`StarletteCookie`, for ``starlette.middleware.sessions.SessionMiddleware``. The
reader for Express's client-sessions is in :mod:`._client_sessions`.

What you get: a legacy value opens only if its MAC verifies under the old secret (compared in
constant time), its timestamps say it is still valid at ``now``, and its data passes the same JSON
rules as our own sessions (:func:`._payload.check_json_value`).

What you do not get: more security than the old scheme had. Whoever knew the old secret can forge
a legacy cookie for as long as a reader for it is configured, so remove the reader once the old
``max_age`` has passed (and never configure one for a secret that leaked). A legacy cookie can be
replayed until it expires, as it could before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ._cookie import CookieOptions
from ._envelope import MAX_COOKIE_VALUE, b64decode_strict
from ._errors import ConfigurationError, InvalidCookie, Reason
from ._lifetime import CLOCK_SKEW, expiry
from ._payload import MAX_TIMESTAMP, load_object

__all__ = [
    "STARLETTE_MAX_AGE",
    "LegacyCookie",
    "LegacySession",
    "StarletteCookie",
    "check_location",
    "load_data",
    "secret_bytes",
]

STARLETTE_MAX_AGE = 14 * 24 * 3600
"""Starlette's own default ``max_age``: fourteen days, in seconds."""

# Starlette's value: base64(json) "." base64url(timestamp) "." base64url(HMAC-SHA1), see StarletteCookie.
_STARLETTE = re.compile(r"([A-Za-z0-9+/]+={0,2})\.([A-Za-z0-9_-]{2,11})\.([A-Za-z0-9_-]{27})")
# itsdangerous' key derivation ("django-concat"): SHA-1 over its default salt, "signer", the secret.
_ITSDANGEROUS_PREFIX = b"itsdangerous.Signer" + b"signer"


@dataclass(frozen=True, slots=True)
class LegacySession:
    """What a legacy cookie held, once authenticated and checked: its data and its own lifetime."""

    data: dict[str, Any]
    """The session data: a JSON object whose every value passed :func:`check_json_value`."""
    issued_at: int
    """When the legacy session was created or last signed, in seconds since the epoch."""
    expires_at: int | None
    """The legacy cookie's own absolute expiry in seconds (valid while ``now < expires_at``), or ``None``."""


@runtime_checkable
class LegacyCookie(Protocol):
    """A reader of one legacy cookie: what ``SessionMiddleware(legacy=...)`` accepts, alone or in a sequence."""

    cookie_name: str
    """The legacy cookie's name."""
    path: str
    """The legacy cookie's ``Path``, for the deletion cookie sent after migrating."""
    domain: str | None
    """The legacy cookie's ``Domain``, for the deletion cookie; ``None`` for a host-only cookie."""

    def open(self, value: str, now: int) -> LegacySession:
        """The session in ``value`` if authentic and valid at ``now``; else :class:`InvalidCookie`, nothing else."""
        ...


class StarletteCookie:
    """Reads the cookies of ``starlette.middleware.sessions.SessionMiddleware``.

    Give it what the Starlette app was given: ``secret_key`` (``str(secret)`` for a Starlette
    ``Secret``), ``session_cookie``, ``max_age``, ``path`` and ``domain``. Starlette signs with
    itsdangerous' ``TimestampSigner(secret_key)`` (read from Starlette 1.10 and itsdangerous 2.2)::

        value     = base64(json.dumps(session)) "." ts "." sig      standard base64, padded
        ts        = base64url_nopad(signing time as big-endian bytes, leading zero bytes dropped)
        sig       = base64url_nopad(HMAC-SHA1(key, base64(json) "." ts))
        key       = SHA1(b"itsdangerous.Signer" + b"signer" + secret_key)

    What you get: HMAC-SHA1 is still a sound MAC (SHA-1's collisions do not help forge one), so a
    value opens only if it was signed with the old secret. Expiry is judged from the signed
    timestamp: ``max_age`` seconds after it, the value is ``EXPIRED`` (``expires_at = ts +
    max_age``; Starlette still accepted it at exactly that second, we do not). ``max_age=None``
    (a browser-session cookie in Starlette) means the value never expires by itself. A timestamp
    more than ``CLOCK_SKEW`` seconds in the future is ``FUTURE``: Starlette with a ``max_age``
    refuses any future timestamp, but servers' clocks differ, so we allow the skew our own cookies
    get; Starlette with ``max_age=None`` checks nothing, we still refuse. Values are read strictly
    (canonical base64, JSON objects by our rules) where Starlette is lenient: every value Starlette
    writes parses, and only data we could not seal again (NaN, Infinity, lone surrogates, more
    than ``MAX_DEPTH`` levels) or a value over ``MAX_COOKIE_VALUE`` is refused.

    What you do not get: secrecy. A Starlette cookie is signed, not encrypted; its data was
    readable by the browser and anyone who saw the cookie, so a migrated session's data was public.
    Sealing it now hides its future values, not its past ones. The timestamp is when the value was
    last signed (Starlette re-signs on every change), not when the user logged in.
    """

    __slots__ = ("_key", "cookie_name", "domain", "max_age", "path")

    cookie_name: str
    """The Starlette app's ``session_cookie``."""
    path: str
    """The Starlette app's ``path``."""
    domain: str | None
    """The Starlette app's ``domain``."""
    max_age: int | None
    """Seconds a value stays valid after it was signed, or ``None`` for no limit (Starlette's meaning)."""

    def __init__(
        self,
        secret_key: str | bytes,
        session_cookie: str = "session",
        max_age: int | None = STARLETTE_MAX_AGE,
        path: str = "/",
        domain: str | None = None,
    ) -> None:
        secret = secret_bytes(
            "secret_key", secret_key, hint="the str the Starlette app was given (str(secret) for a Starlette Secret)"
        )
        check_location(session_cookie, path, domain)
        if max_age is not None and (not isinstance(max_age, int) or isinstance(max_age, bool) or max_age <= 0):
            raise ConfigurationError(
                f"max_age must be the Starlette app's max_age, a positive number of seconds, or None "
                f"if it had none; got {max_age!r} (with max_age <= 0 no Starlette cookie was ever valid)"
            )
        self._key = hashlib.sha1(_ITSDANGEROUS_PREFIX + secret).digest()  # noqa: S324 - itsdangerous' derivation, for compatibility
        self.cookie_name = session_cookie
        self.path = path
        self.domain = domain
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"<StarletteCookie {self.cookie_name!r} max_age={self.max_age}>"

    def open(self, value: str, now: int) -> LegacySession:
        """The session in ``value`` if it is authentic and valid at ``now``; else :class:`InvalidCookie`."""
        if len(value) > MAX_COOKIE_VALUE:
            raise InvalidCookie(Reason.TOO_LARGE)
        match = _STARLETTE.fullmatch(value)
        if match is None:
            raise InvalidCookie(Reason.MALFORMED)
        payload_text, timestamp_text, signature_text = match.groups()
        payload = _b64decode_standard(payload_text)
        timestamp = b64decode_strict(timestamp_text)
        if timestamp[0] == 0:  # itsdangerous drops leading zero bytes: one timestamp, one encoding
            raise InvalidCookie(Reason.MALFORMED)
        signature = b64decode_strict(signature_text)
        signed = value[: match.end(2)].encode("ascii")
        if not hmac.compare_digest(hmac.new(self._key, signed, hashlib.sha1).digest(), signature):
            raise InvalidCookie(Reason.BAD_MAC)
        issued_at = int.from_bytes(timestamp, "big")
        if issued_at > MAX_TIMESTAMP:
            raise InvalidCookie(Reason.BAD_PAYLOAD)
        if issued_at > now + CLOCK_SKEW:
            raise InvalidCookie(Reason.FUTURE)
        expires_at = expiry(issued_at, self.max_age)
        if expires_at is not None and now >= expires_at:
            raise InvalidCookie(Reason.EXPIRED)
        return LegacySession(load_data(payload), issued_at, expires_at)


def _b64decode_standard(text: str) -> bytes:
    """Decode padded standard base64 (Starlette's ``b64encode``), refusing any other spelling."""
    if len(text) % 4:
        raise InvalidCookie(Reason.MALFORMED)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCookie(Reason.MALFORMED) from None
    if base64.b64encode(raw).decode("ascii") != text:  # nonzero bits after the data: not canonical
        raise InvalidCookie(Reason.MALFORMED)
    return raw


def load_data(data_json: bytes) -> dict[str, Any]:
    """Session data from authentic legacy JSON, by our rules, or ``BAD_PAYLOAD``.

    Strict UTF-8, no NaN or Infinity (which Python's ``json.dumps`` writes), a JSON object, and
    every value passing :func:`check_json_value` (depth, lone surrogates, huge integers), so that
    whatever opens here can be sealed as ours unchanged.
    """
    return load_object(data_json)


def secret_bytes(name: str, secret: object, *, hint: str) -> bytes:
    """A legacy secret as the bytes its framework used (UTF-8 for text), or :class:`ConfigurationError`.

    Not judged for strength: it is whatever the old application used, and refusing it would log
    everybody out, which is what migrating avoids.
    """
    if not isinstance(secret, str | bytes):
        raise ConfigurationError(f"{name} must be {hint} (str or bytes), got a {type(secret).__name__}")
    if not secret:
        raise ConfigurationError(f"{name} is empty: pass {hint}")
    if isinstance(secret, bytes):
        return secret
    try:
        return secret.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"{name} holds a lone surrogate: it cannot be {hint}") from None


def check_location(cookie_name: str, path: str, domain: str | None) -> None:
    """Refuse, with :class:`ConfigurationError`, a name, path or domain no deletion cookie could carry."""
    CookieOptions(cookie_name, path=path, same_site="lax", secure=True, domain=domain, partitioned=False)
