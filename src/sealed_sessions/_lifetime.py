"""Expiry rules, applied to the timestamps sealed inside a cookie, never to the browser's say-so.

- ``max_age``: absolute cap, counted from the session's start (``issued_at``). Activity never
  extends it. ``None`` means no absolute cap and a browser-session cookie (no ``Max-Age``).
- ``idle_timeout``: a session not used for this long expires. Activity renews it, but only once
  at least a quarter of the window has passed since the cookie was last sealed
  (``RENEW_FRACTION``), so most read-only requests send no ``Set-Cookie``. A session therefore
  expires after between 75% and 100% of ``idle_timeout`` without requests.
- A session issued, or last sealed, more than ``CLOCK_SKEW`` seconds in the future is refused (a
  server with a fast clock, or a value sealed with a stolen key to dodge the idle timeout).

Timestamps are whole seconds. A session is valid while ``now < expires_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import ConfigurationError, Reason
from ._payload import MAX_TIMESTAMP, Opened

__all__ = ["CLOCK_SKEW", "RENEW_FRACTION", "Lifetime", "check_seconds", "expiry"]

CLOCK_SKEW = 60
"""Seconds a cookie's issued-at may lie in the future and still be accepted."""
RENEW_FRACTION = 4
"""Idle renewal reseals once 1/RENEW_FRACTION of the idle window has passed."""


def check_seconds(name: str, value: object, *, allow_none: bool, positive: bool) -> int | None:
    """``value`` if it is a whole number of seconds (positive if asked), else :class:`ConfigurationError`."""
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigurationError(f"{name} must be a whole number of seconds, got {value!r}")
    if positive and value <= 0:
        raise ConfigurationError(f"{name} must be positive, got {value}")
    return value


def expiry(issued_at: int, max_age: int | None) -> int | None:
    """The absolute expiry of a session that starts at ``issued_at`` and lasts ``max_age`` seconds.

    Kept within what the cookie can carry: at least 1 (0 would mean "no expiry") and at most
    ``2**63 - 1``, so a huge ``max_age`` means "practically never" instead of a failed seal.
    ``None`` (no absolute cap) for ``max_age=None``.
    """
    if max_age is None:
        return None
    return min(max(issued_at + max_age, 1), MAX_TIMESTAMP)


@dataclass(frozen=True, slots=True)
class Lifetime:
    """The expiry policy of one middleware instance."""

    max_age: int | None
    idle_timeout: int | None

    def __post_init__(self) -> None:
        # max_age may be zero or negative (sessions that expire at once), as in Starlette.
        check_seconds("max_age", self.max_age, allow_none=True, positive=False)
        check_seconds("idle_timeout", self.idle_timeout, allow_none=True, positive=True)

    def rejection(self, opened: Opened, now: int) -> Reason | None:
        """Why ``opened`` is no longer valid at ``now``, or ``None`` if it is."""
        if opened.issued_at > now + CLOCK_SKEW or opened.last_active > now + CLOCK_SKEW:
            return Reason.FUTURE
        if opened.expires_at is not None and now >= opened.expires_at:
            return Reason.EXPIRED
        if self.idle_timeout is not None and now >= opened.last_active + self.idle_timeout:
            return Reason.IDLE
        return None

    def renewal_due(self, last_active: int, now: int) -> bool:
        """Whether to reseal an unchanged session only to push its idle expiry forward."""
        if self.idle_timeout is None:
            return False
        return now - last_active >= self.idle_timeout / RENEW_FRACTION

    def expiry_for(self, issued_at: int) -> int | None:
        """The absolute expiry of a session that starts at ``issued_at`` under this policy."""
        return expiry(issued_at, self.max_age)

    def cookie_max_age(self, expires_at: int | None, now: int, last_active: int | None = None) -> int | None:
        """The ``Max-Age`` to send, so the browser forgets the cookie when we would refuse it.

        ``None`` (no ``Max-Age``: a browser-session cookie) when the session has no absolute
        expiry, even with an idle timeout: that one is enforced from the sealed ``last_active``.
        Otherwise the time left, shortened to what is left of the idle window for a cookie whose
        ``last_active`` is given (``now`` by default).
        """
        if expires_at is None:
            return None
        if self.idle_timeout is None:
            return expires_at - now
        idle_left = self.idle_timeout - (now - (now if last_active is None else last_active))
        return min(expires_at - now, idle_left)
