"""What a session must hold to be worth a query: a plausible user id and revocation token.

Only a session sealed with the key can hold anything else (a NUL, a control character, a float id,
an id beyond 64 bits). Refusing those before the query keeps them from becoming database errors
(PostgreSQL rejects a NUL in a text parameter), so such a session is a 401, never a 503 loop.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any, TypeGuard

from .sqlalchemy import SESSION_TOKEN_MAX_LENGTH

__all__ = ["MAX_TEXT_ID", "parse_user_id", "plausible_token"]

MAX_TEXT_ID = 255
"""Longest text or UUID user id carried in a session."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_user_id(raw: object, python_type: type[Any] | None) -> int | uuid.UUID | str | None:
    """``raw`` as a primary key of ``python_type`` (``int``, ``uuid.UUID`` or ``str``), or ``None``."""
    if python_type is int:
        if isinstance(raw, int) and not isinstance(raw, bool) and _INT64_MIN <= raw <= _INT64_MAX:
            return raw
        return None
    if not isinstance(raw, str) or not 0 < len(raw) <= MAX_TEXT_ID or _has_controls(raw):
        return None
    if python_type is uuid.UUID:
        try:
            return uuid.UUID(raw)
        except ValueError:
            return None
    return raw


def plausible_token(token: object) -> TypeGuard[str]:
    """A token worth a query: a non-empty printable ASCII string no longer than the column."""
    return (
        isinstance(token, str)
        and 0 < len(token) <= SESSION_TOKEN_MAX_LENGTH
        and token.isascii()
        and token.isprintable()
    )


def _has_controls(text: str) -> bool:
    """Whether ``text`` holds a control character (C0, DEL, C1) or a lone surrogate."""
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)
