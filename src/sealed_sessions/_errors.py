"""The errors sealed-sessions raises, all under one root.

::

    SealedSessionsError
    ├── ConfigurationError   (also a ValueError)  bad key, contradictory cookie settings
    │   └── UnsupportedModel (also a TypeError)   a user model the revocation check cannot use
    ├── SessionDataError     (also a TypeError)   a value that cannot be stored as JSON
    ├── SessionTooLarge                           the sealed cookie would not fit in a browser
    ├── InvalidCookie                             a cookie that does not open; carries .reason
    ├── CSRFError            (also Starlette's HTTPException, 403)  an unsafe request failed the
    │                                             CSRF check; carries .reason (in _csrf.py)
    ├── UnusableUser         (also a ValueError)  a user object not flushed, or its token not loaded
    ├── TokenRefused                              a purpose-bound token was not redeemed; carries .reason
    └── DatabaseUnavailable                       the revocation check got no answer; carries .error

The middleware never lets :class:`InvalidCookie` escape: a bad cookie becomes an empty session
and a log record. :mod:`sealed_sessions.fastapi` never lets :class:`DatabaseUnavailable` escape:
it becomes a 503 (or a WebSocket close with 1013). :class:`TokenRefused` is an answer, not a
fault: the application catches it and shows one "this link is invalid or has expired". The others
are programming or deployment errors and are meant to be loud. None of them ever carries a key, a
cookie's contents, a purpose-bound token, SQL, query parameters, a revocation token or a database
URL in its message.
"""

from __future__ import annotations

import enum

__all__ = [
    "ConfigurationError",
    "DatabaseUnavailable",
    "InvalidCookie",
    "Reason",
    "SealedSessionsError",
    "SessionDataError",
    "SessionTooLarge",
    "TokenRefusal",
    "TokenRefused",
    "UnsupportedModel",
    "UnusableUser",
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
    DUPLICATE = "duplicate"
    """Several cookies of this name arrived (one planted with another path or domain, say); the
    first that opens is used. Logged as an observation, not a refusal, unless none opens."""
    AMBIGUOUS = "ambiguous"
    """Two different values of this name both opened: neither is trusted, the session is empty."""
    MISSING_CHUNK = "missing_chunk"
    """A session split across several cookies arrived without all of its parts."""
    SCHEMA = "schema"
    """Authentic, but the data no longer fits the application's session schema (``schema=``)."""


class InvalidCookie(SealedSessionsError):
    """A cookie did not open. ``reason`` says why; the cookie itself is never kept."""

    def __init__(self, reason: Reason) -> None:
        self.reason = reason
        super().__init__(f"session cookie rejected: {reason.value}")


class UnsupportedModel(ConfigurationError, TypeError):
    """The user model cannot carry the revocation check: not a mapped SQLAlchemy class, without
    :class:`~sealed_sessions.sqlalchemy.SessionTokenMixin`, or without exactly one primary-key
    column. A ``TypeError`` too, as :func:`~sealed_sessions.sqlalchemy.primary_key_of` always
    raised."""


class UnusableUser(SealedSessionsError, ValueError):
    """A user object passed to login or revocation cannot be used as it is: not flushed yet (no
    primary key), its ``session_token`` not loaded (expired by a commit), or, for
    ``revoke(keep=request)``, not the user that request's session belongs to."""


class TokenRefusal(enum.StrEnum):
    """Why a purpose-bound token was refused (``SessionAuth.redeem_token``): the reason code logged."""

    MALFORMED = "malformed"
    """Not a token: not a string, not canonical base64url, too short or too long, an unknown
    format version, or an authentic payload that is not a token's."""
    FORGED = "forged"
    """Authentication failed: tampered with, truncated, sealed for another purpose or application,
    a session cookie or bearer token, or under a key id that is not in the ring (a dropped key)."""
    EXPIRED = "expired"
    """Outside its validity window: past its expiry, or issued further in the future than the
    allowed clock skew."""
    UNKNOWN_USER = "unknown_user"
    """No active user has the token's id: deleted, or deactivated (``active_attribute``)."""
    STALE = "stale"
    """The user's bound columns changed since the token was issued: used already (a reset link
    after the password changed), or made obsolete (a verification link after the address changed)."""


class TokenRefused(SealedSessionsError):
    """A purpose-bound token was not redeemed. ``reason`` says why; the token itself is never kept.

    Show the person one message for every reason ("this link is invalid or has expired"): the
    reasons are for logs and tests, and ``unknown_user`` versus ``stale`` says something about an
    account.
    """

    def __init__(self, reason: TokenRefusal) -> None:
        self.reason = reason
        super().__init__(f"token refused: {reason.value}")


class DatabaseUnavailable(SealedSessionsError):
    """The database gave no answer to the revocation check (the session is neither accepted nor
    refused) or to a device-session operation; ``operation`` says which.

    ``error`` names the exception classes only (such as ``"OperationalError from
    ConnectionRefusedError"``): the database's own messages carry the statement and its
    parameters, the token among them. ``connectivity`` is true for connection trouble (refused,
    dropped, pool or query timeout), which heals by itself, and false for anything else (a
    missing table or column), which does not.
    """

    def __init__(self, error: str, *, connectivity: bool, operation: str = "session check") -> None:
        self.error = error
        self.connectivity = connectivity
        self.operation = operation
        if connectivity:
            what = "database unavailable"
        else:
            what = "database error, not a connectivity problem: check the schema"
        super().__init__(f"{operation} failed: {what} ({error})")
