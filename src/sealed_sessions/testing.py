"""Helpers for testing applications that use sealed-sessions, and for debugging cookies.

``seal()`` builds a cookie value exactly as the middleware would, so a test can start logged in
or craft an expired session without going through the app; ``unseal()`` opens one and reports
its timestamps without judging expiry. Neither is needed in production code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ._cookie import DEFAULT_NAME
from ._keys import KeyInput
from ._payload import Opened
from ._sealer import DEFAULT_MAX_AGE, Sealer

__all__ = ["UnsealedCookie", "seal", "unseal"]

UnsealedCookie = Opened
"""A cookie's contents, as :func:`unseal` returns them (the same type the middleware opens)."""


def seal(
    secret_key: KeyInput,
    data: Mapping[str, Any],
    *,
    session_cookie: str = DEFAULT_NAME,
    max_age: int | None = DEFAULT_MAX_AGE,
    issued_at: int | None = None,
    last_active: int | None = None,
    context: str = "",
    nonce: bytes | None = None,
) -> str:
    """Return a cookie value holding ``data``, as the middleware with these settings would seal it.

    ``session_cookie`` and ``context`` must match the middleware's (its default name is
    ``__Host-session``, or ``session`` with ``https_only=False``, a domain or a path). ``issued_at``
    defaults to now, ``last_active`` to ``issued_at``; ``nonce`` is for fixed test vectors only.
    Raises :class:`SessionDataError` for data that is not JSON, and :class:`SessionTooLarge` when
    the value alone is longer than any cookie that opens (the middleware's own limit, on the
    whole ``Set-Cookie`` header, is slightly stricter).
    """
    sealer = Sealer(secret_key, session_cookie, max_age=max_age, context=context)
    if issued_at is None:
        issued_at = int(time.time())
    return sealer.seal(
        data,
        issued_at=issued_at,
        expires_at=sealer.lifetime.expiry_for(issued_at),
        last_active=issued_at if last_active is None else last_active,
        nonce=nonce,
    )


def unseal(
    secret_key: KeyInput, value: str, *, session_cookie: str = DEFAULT_NAME, context: str = ""
) -> UnsealedCookie:
    """Open ``value`` without checking expiry. Raises :class:`InvalidCookie` with a reason."""
    return Sealer(secret_key, session_cookie, context=context).peek(value)
