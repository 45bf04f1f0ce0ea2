"""Logging refused cookies without letting a flood of bad cookies flood the log.

Each refusal is one event with a :class:`Reason` (and so is a request that sent our cookie more
than once, ``duplicate``, though its session may open). Within a window of ``WINDOW`` seconds, the first
``BURST`` events of each reason are logged one by one (INFO, on the ``sealed_sessions`` logger,
with ``cookie_name`` and ``reason`` as record attributes); the rest are only counted. The first
event after a window with suppressed events logs one WARNING summary with the counts per reason
(record attribute ``suppressed``, a ``{reason: count}`` dict), then starts a new window.

Nothing logged here ever holds a cookie value, a key or session data: only the cookie's name and
reason codes. ``counts`` keeps the totals since start for the application to read or export, and
``listener`` (usually :meth:`AuthEvents.emit <sealed_sessions.AuthEvents.emit>`) receives every
event, logged or not, as a ``REFUSAL`` :class:`AuthEvent`: the hub does not log these again.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable

from ._errors import Reason
from ._events import AuthEvent, EventKind

__all__ = ["BURST", "WINDOW", "RejectionLog"]

logger = logging.getLogger("sealed_sessions")

WINDOW = 60
"""Seconds in one rate-limiting window."""
BURST = 10
"""Events of one reason logged one by one per window before the rest are counted instead."""


class RejectionLog:
    """Rate-limited logging of refused cookies for one cookie name, with running totals."""

    __slots__ = (
        "_clock",
        "_lock",
        "_logged",
        "_prefix",
        "_suppressed",
        "_template",
        "_window_start",
        "cookie_name",
        "counts",
        "listener",
    )

    cookie_name: str
    """The cookie these events are about (its name only)."""
    counts: Counter[str]
    """Events since start, per reason code."""
    listener: Callable[[AuthEvent], None] | None
    """Called with a ``REFUSAL`` event for each event, suppressed from the log or not; it must not
    raise (:meth:`AuthEvents.emit <sealed_sessions.AuthEvents.emit>` never does). ``None``: none."""

    def __init__(
        self,
        cookie_name: str,
        clock: Callable[[], float],
        *,
        reason_prefix: str = "",
        template: str = "session cookie %r rejected: %s",
        listener: Callable[[AuthEvent], None] | None = None,
    ) -> None:
        self.cookie_name = cookie_name
        self.listener = listener
        self._prefix = reason_prefix
        self._template = template
        self.counts = Counter()
        self._clock = clock
        self._lock = threading.Lock()  # one middleware may serve several threads (a sync server's workers)
        self._window_start = int(clock())
        self._logged: Counter[str] = Counter()
        self._suppressed: Counter[str] = Counter()

    def __call__(self, reason: str, *, user_id: str | None = None) -> None:
        """Record one event: log it, or count it if its reason is over this window's burst.

        ``reason`` is a :class:`Reason`, or another short code (the revocation check's refusals);
        ``user_id``, when the caller knows it, goes to the listener's event (never to the log).
        """
        code = self._prefix + str(reason)
        at = self._clock()
        now = int(at)
        with self._lock:
            self.counts[code] += 1
            if now - self._window_start >= WINDOW:
                self._flush(now)
            log = self._logged[code] < BURST
            if log:
                self._logged[code] += 1
            else:
                self._suppressed[code] += 1
        if log:
            logger.info(
                "session cookie %r sent more than once: %s" if reason == Reason.DUPLICATE else self._template,
                self.cookie_name,
                code,
                extra={"cookie_name": self.cookie_name, "reason": code},
            )
        if self.listener is not None:
            self.listener(AuthEvent(EventKind.REFUSAL, at, user_id=user_id, reason=code))

    def _flush(self, now: int) -> None:
        """Log what the ending window suppressed, and start a new window."""
        suppressed = dict(self._suppressed)
        elapsed = now - self._window_start
        self._window_start = now
        self._logged.clear()
        self._suppressed.clear()
        if suppressed:
            logger.warning(
                "session cookie %r: %d more rejections in the last %d s were not logged one by one: %s",
                self.cookie_name,
                sum(suppressed.values()),
                elapsed,
                ", ".join(f"{reason} {count}" for reason, count in sorted(suppressed.items())),
                extra={"cookie_name": self.cookie_name, "reason": "suppressed", "suppressed": suppressed},
            )
