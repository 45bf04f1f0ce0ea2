"""Helpers for testing applications that use sealed-sessions, and for debugging cookies.

``seal()`` builds a cookie value exactly as the middleware would, so a test can start logged in
or craft an expired session without going through the app; ``unseal()`` opens one and reports
its timestamps without judging expiry. Neither is needed in production code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._envelope import MAX_COOKIE_VALUE, Envelope
from ._errors import SessionTooLarge
from ._keys import KeyInput, KeyRing
from ._lifetime import Lifetime
from ._payload import check_json_value, decode, dump_data, encode

__all__ = ["UnsealedCookie", "seal", "unseal"]


@dataclass(frozen=True, slots=True)
class UnsealedCookie:
    """A cookie's contents. Timestamps are seconds since the epoch."""

    data: dict[str, Any]
    issued_at: int
    expires_at: int | None
    last_active: int
    sealed_with_current_key: bool


def seal(
    secret_key: KeyInput,
    data: Mapping[str, Any],
    *,
    session_cookie: str = "session",
    max_age: int | None = 14 * 24 * 60 * 60,
    issued_at: int | None = None,
    last_active: int | None = None,
    nonce: bytes | None = None,
) -> str:
    """Return a cookie value holding ``data``, as the middleware with these settings would seal it.

    ``issued_at`` defaults to now, ``last_active`` to ``issued_at``; ``nonce`` is for fixed test
    vectors only. Raises :class:`SessionDataError` for data that is not JSON, and
    :class:`SessionTooLarge` when the value alone is longer than any cookie that opens (the
    middleware's own limit, on the whole ``Set-Cookie`` header, is slightly stricter).
    """
    for key, value in data.items():
        check_json_value(key, value)
    if issued_at is None:
        issued_at = int(time.time())
    expires_at = Lifetime(max_age, None).expires_at(issued_at, max_age)
    plaintext = encode(dump_data(data), issued_at, expires_at, issued_at if last_active is None else last_active)
    value = Envelope(KeyRing(secret_key), session_cookie).seal(plaintext, nonce=nonce)
    if len(value) > MAX_COOKIE_VALUE:
        raise SessionTooLarge(len(value), MAX_COOKIE_VALUE, session_cookie)
    return value


def unseal(secret_key: KeyInput, value: str, *, session_cookie: str = "session") -> UnsealedCookie:
    """Open ``value`` without checking expiry. Raises :class:`InvalidCookie` with a reason."""
    plaintext, current = Envelope(KeyRing(secret_key), session_cookie).open(value)
    payload = decode(plaintext)
    return UnsealedCookie(payload.data, payload.issued_at, payload.expires_at, payload.last_active, current)
