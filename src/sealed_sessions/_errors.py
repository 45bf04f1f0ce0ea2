"""The errors sealed-sessions raises, all under one root.

::

    SealedSessionsError
    ├── ConfigurationError   (also a ValueError)  bad key, contradictory cookie settings
    ├── SessionDataError     (also a TypeError)   a value that cannot be stored as JSON
    ├── SessionTooLarge                           the sealed cookie would not fit in a browser
    └── InvalidCookie                             a cookie that does not open; carries .reason

The middleware never lets :class:`InvalidCookie` escape: a bad cookie becomes an empty session
and a log record. The other three are programming or deployment errors and are meant to be loud.
None of them ever carries a key or a cookie's contents in its message.
"""

from __future__ import annotations

import enum

__all__ = [
    "ConfigurationError",
    "InvalidCookie",
    "Reason",
    "SealedSessionsError",
    "SessionDataError",
    "SessionTooLarge",
]


class SealedSessionsError(Exception):
    """Root of every error raised by sealed-sessions."""


class ConfigurationError(SealedSessionsError, ValueError):
    """A setting is unusable: raised at startup wherever it can be seen then, otherwise at first
    use (no session middleware installed, a bad argument to ``set_max_age``). Never for bad input
    from a client."""


class SessionDataError(SealedSessionsError, TypeError):
    """A value written to the session cannot be stored as JSON and read back unchanged."""


class SessionTooLarge(SealedSessionsError):
    """The sealed session does not fit in one cookie; the response is not sent with it."""

    def __init__(self, size: int, limit: int, cookie_name: str) -> None:
        self.size = size
        self.limit = limit
        self.cookie_name = cookie_name
        super().__init__(
            f"the Set-Cookie header for {cookie_name!r} would be {size} bytes, over the "
            f"{limit}-byte limit that browsers enforce (they drop larger cookies silently). "
            "Keep large or growing data on the server (a database row keyed by the user id) "
            "and store only identifiers in the session."
        )


class Reason(enum.StrEnum):
    """Why a cookie was rejected: the reason code logged with every rejection."""

    TOO_LARGE = "too_large"
    """The cookie value is longer than any cookie we could have issued."""
    MALFORMED = "malformed"
    """Not strict, canonical base64url, or too short to hold an envelope."""
    UNKNOWN_VERSION = "unknown_version"
    """The envelope version byte is not one this release can open."""
    UNKNOWN_KEY = "unknown_key"
    """The key id names no key in the ring (removed, or never ours)."""
    BAD_MAC = "bad_mac"
    """Authentication failed: tampered, truncated, wrong key or sealed for another cookie."""
    BAD_PAYLOAD = "bad_payload"
    """Authentic but unreadable: not our timestamp header plus a JSON object."""
    EXPIRED = "expired"
    """Past the absolute expiry sealed inside it."""
    IDLE = "idle"
    """Unused for longer than the idle timeout."""
    FUTURE = "future"
    """Issued further in the future than the allowed clock skew."""


class InvalidCookie(SealedSessionsError):
    """A cookie did not open. ``reason`` says why; the cookie itself is never kept."""

    def __init__(self, reason: Reason) -> None:
        self.reason = reason
        super().__init__(f"session cookie rejected: {reason.value}")
