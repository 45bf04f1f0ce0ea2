"""Which keys of the ring open cookies: counts since start, and the ``old_key`` event.

"Can I drop the old key yet?" A key can go once no cookie it sealed can still open. Every cookie
sealed before a rotation expires by the rotation time plus ``idle_timeout`` (its last activity
was before the rotation) and plus ``max_age`` (its session began before it), so once every server
has run the new ring for that long, dropping the old key logs nobody out:
:attr:`KeyUsage.older_keys_expire_by` is that time, counted from this process's start. Before
then, the counts (and when an older key last opened a cookie) say how many visitors would lose
their session if the key went now: each such cookie is resealed with the current key on its
first request, so an older key's count stops growing once its active users have come back.

The counts are per process (several workers each count their own: add them up, as Prometheus
does) and kept without a lock: under several threads an increment may, rarely, be lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._events import AuthEvent, AuthEvents, EventKind
from ._lifetime import Lifetime
from ._payload import Opened
from ._sealer import Sealer

__all__ = ["KeyUsage"]


class KeyUsage:
    """Cookies opened per key id since this process started (``SessionMiddleware.key_usage``).

    Key ids are the 4-byte public ids every cookie carries, shown as 8 hex digits.
    """

    __slots__ = ("_counts", "_current", "_events", "_hex", "_last_opened", "cookie_name", "lifetime", "since")

    cookie_name: str
    """The cookie these counts are about."""
    since: int
    """When counting started (this process's middleware was built), in seconds since the epoch."""
    lifetime: Lifetime
    """The middleware's expiry policy, which bounds how long an older key's cookies can live."""

    def __init__(self, sealer: Sealer, events: AuthEvents, clock: Callable[[], float]) -> None:
        ids = sealer.keys.key_ids
        self.cookie_name = sealer.cookie_name
        self.lifetime = sealer.lifetime
        self.since = int(clock())
        self._counts: dict[bytes, int] = dict.fromkeys(ids, 0)
        self._hex = {key_id: key_id.hex() for key_id in ids}
        self._current = ids[0]
        self._last_opened: dict[bytes, int] = {}
        self._events = events

    def __repr__(self) -> str:
        return f"<KeyUsage {self.cookie_name!r}: {self.counts}>"

    def opened(self, opened: Opened, now: int) -> None:
        """Count one request whose cookie opened; for an older key, note when and emit ``old_key``."""
        key_id = opened.key_id
        if key_id is None:  # a legacy cookie, not sealed by any key of ours
            return
        self._counts[key_id] += 1
        if not opened.sealed_with_current_key and key_id != self._current:
            self._last_opened[key_id] = now
            self._events.emit(AuthEvent(EventKind.OLD_KEY, now, key_id=self._hex[key_id]))

    @property
    def current(self) -> str:
        """The id of the key that seals (the ring's first)."""
        return self._hex[self._current]

    @property
    def counts(self) -> dict[str, int]:
        """Cookies opened since :attr:`since`, per key id, for every key of the ring (current first)."""
        return {self._hex[key_id]: count for key_id, count in self._counts.items()}

    @property
    def older_keys_expire_by(self) -> int | None:
        """When every cookie an older key sealed has expired, if every server has run this ring since :attr:`since`.

        :attr:`since` plus ``idle_timeout`` or ``max_age``, whichever is shorter; ``None`` when
        neither is set (watch ``older_last_opened`` instead). An application that gives sessions
        more than ``max_age`` with ``set_max_age`` must count with ``idle_timeout`` alone.
        """
        bounds = [s for s in (self.lifetime.idle_timeout, self.lifetime.max_age) if s is not None]
        return self.since + max(min(bounds), 0) if bounds else None

    def snapshot(self) -> dict[str, Any]:
        """The usage as a JSON-ready dict, e.g. for an admin endpoint::

            {"cookie": "__Host-session", "since": 1800000000, "current": "1a2b3c4d",
             "opened": {"1a2b3c4d": 5120, "9e8f7a6b": 12},
             "older_last_opened": {"9e8f7a6b": 1800003600},
             "older_keys_expire_by": 1801209600}

        ``opened`` has every key of the ring, current first, 0 for a key that opened nothing;
        ``older_last_opened`` the last time each older key opened a cookie (``None``: not since
        :attr:`since`).
        """
        return {
            "cookie": self.cookie_name,
            "since": self.since,
            "current": self.current,
            "opened": self.counts,
            "older_last_opened": {
                self._hex[key_id]: self._last_opened.get(key_id) for key_id in self._counts if key_id != self._current
            },
            "older_keys_expire_by": self.older_keys_expire_by,
        }
