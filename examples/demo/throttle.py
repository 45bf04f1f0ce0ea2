"""Login throttling: failed password checks counted per account and per client address.

Within a sliding window (15 minutes), an account may fail 5 password checks and a client address
20, across all the accounts it tries. Past either limit, the next attempt is refused with
:class:`TooManyAttempts` (the app answers 429 with ``Retry-After``, the seconds until the oldest
counted failure leaves the window) before any password is hashed, even when the password is
right: otherwise the limit would only hide which guess was correct. A successful login clears its
account's count, not its address's. An unknown e-mail address is counted exactly like a known
one, so a 429 never says whether an account exists. IPv6 clients are counted per /64, the block
one subscriber usually holds.

The price, accepted: anyone can lock an account out for the window by failing 5 times. The
password-change form counts against the same limits, so a stolen session cannot be used to guess
the current password either.

State is kept in this process only. Each replica counts on its own (behind a round-robin load
balancer, N replicas allow up to N times the limits) and a restart forgets everything. A
multi-replica deployment needs a shared store instead: a Redis ``INCR`` with ``EXPIRE`` per key,
or a table of recent failures in the database. Memory is bounded: at most ``max_keys`` accounts
and addresses are tracked; past that, expired entries are dropped, then the oldest.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable

from .errors import TryLater

__all__ = ["LoginThrottle", "TooManyAttempts", "address_key"]

ACCOUNT_LIMIT = 5
"""Failed password checks per account per window."""
ADDRESS_LIMIT = 20
"""Failed password checks per client address (any accounts) per window."""
WINDOW = 15 * 60
"""Seconds a failure counts for."""
MAX_KEYS = 100_000
"""Accounts and addresses tracked at once, at most."""
_MAX_ACCOUNT_KEY = 254  # the longest e-mail address; longer input cannot name an account anyway


class TooManyAttempts(TryLater):
    """Too many failed logins for this account or from this address: answer 429."""

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed login attempts. Try again later.", retry_after)


def address_key(host: str | None) -> str:
    """What a client address is counted under: the IP itself, or its /64 for IPv6."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginThrottle:
    """Counts failed password checks per account and per address within a sliding window, in memory."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        account_limit: int = ACCOUNT_LIMIT,
        address_limit: int = ADDRESS_LIMIT,
        window: int = WINDOW,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.clock = clock
        self.account_limit = account_limit
        self.address_limit = address_limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[tuple[str, str], deque[float]] = {}

    @property
    def tracked(self) -> int:
        """Accounts and addresses with failures in memory right now."""
        return len(self._failures)

    def check(self, account: str, address: str | None) -> None:
        """Raise :class:`TooManyAttempts` when this account or this address has reached its limit."""
        now = self.clock()
        wait = max(self._wait(key, limit, now) for key, limit in self._counters(account, address))
        if wait:
            raise TooManyAttempts(wait)

    def failed(self, account: str, address: str | None) -> None:
        """Count one failed password check against the account and the address."""
        now = self.clock()
        if len(self._failures) >= self.max_keys:
            self._make_room(now)
        for key, limit in self._counters(account, address):
            self._failures.setdefault(key, deque(maxlen=limit)).append(now)

    def succeeded(self, account: str) -> None:
        """Forget the account's failures (its address's still count)."""
        self._failures.pop(self._account(account), None)

    @staticmethod
    def _account(account: str) -> tuple[str, str]:
        return ("account", account.strip().lower()[:_MAX_ACCOUNT_KEY])

    def _counters(self, account: str, address: str | None) -> tuple[tuple[tuple[str, str], int], ...]:
        """The two counters an attempt touches, each with its limit."""
        return ((self._account(account), self.account_limit), (("address", address_key(address)), self.address_limit))

    def _wait(self, key: tuple[str, str], limit: int, now: float) -> int:
        """Seconds until ``key`` is below ``limit`` again (0: it is now)."""
        times = self._failures.get(key)
        if times is None:
            return 0
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        if len(times) < limit:
            return 0
        return max(1, math.ceil(times[-limit] + self.window - now))

    def _make_room(self, now: float) -> None:
        """Drop keys whose failures all left the window; if still full, the oldest tracked keys."""
        for key in [k for k, times in self._failures.items() if times[-1] <= now - self.window]:
            del self._failures[key]
        while len(self._failures) >= self.max_keys:
            del self._failures[next(iter(self._failures))]
