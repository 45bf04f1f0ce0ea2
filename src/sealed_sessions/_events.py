"""Lifecycle events: who logged in and out, what was revoked, why a session was refused, which key opened it.

::

    events = AuthEvents()
    app.add_middleware(SessionMiddleware, secret_key=..., events=events)   # refusal, old_key
    auth = SessionAuth(User, get_db, events=events)                       # login, logout, revoke, ...
    unsubscribe = events.on(EventKind.LOGIN, callback)                    # None: every kind

=============== ==================================================================================
kind            emitted by, and its fields beyond ``kind`` and ``at``
=============== ==================================================================================
login           ``login``, ``login_device``: ``user_id`` (and ``device_id``)
logout          ``logout``, ``logout_device``, for a session that named a user: ``user_id``
                (device mode: ``device_id``, ``ended`` = device rows deleted, 0 or 1)
revoke          ``revoke``: ``user_id``; ``ended`` = device rows deleted in device mode, ``None``
                for "every session of the user"; ``reason`` ``revoke`` or, with ``keep=``,
                ``revoke_others``. ``end_device``: ``reason`` ``device_ended``. ``purge_devices``:
                ``reason`` ``expired``, ``ended`` = rows deleted, no user
refusal         a cookie the middleware refused (``reason``: a :class:`Reason` code; ``duplicate``
                is reported too, although its session may open) or a session the revocation check
                refused (``session_revoked``, ``session_malformed``)
old_key         a cookie opened with an older key of the ring (``key_id``); it is resealed
token_redeemed  a purpose-bound token used: ``user_id``, ``purpose``
=============== ==================================================================================

Delivery: :meth:`AuthEvents.emit` calls each synchronous callback in turn, in the request that
caused the event, so keep callbacks quick. A callback that returns an awaitable (an ``async def``)
has it run as a task on the running event loop (reached from a threadpool thread too), held until
it is done; :meth:`AuthEvents.drain` waits for those. A callback that raises, or whose task fails,
is logged by its exception's class only and never breaks the request; the next callbacks still run.

Logging, on the ``sealed_sessions`` logger: ``login``, ``logout``, ``revoke`` and
``token_redeemed`` at INFO, with the record attributes ``event`` and ``user_id`` (and
``device_id``, ``ended``, ``purpose`` when set); ``old_key`` at most once per key id per
``WINDOW`` seconds, with how many opens it stands for; ``refusal`` not at all (the rejection log
has already logged it, rate-limited).

Never in an event or a log record: a cookie value, session data, a token, a key. ``user_id`` is the
user's primary key, as a string; ``device_id`` a device row's id (it appears in device lists and
URLs; the device's secret never does); ``key_id`` a 4-byte key id in hex (every cookie carries it).
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio.from_thread

from ._errors import ConfigurationError

if TYPE_CHECKING:  # _key_usage imports this module
    from ._key_usage import KeyUsage

__all__ = ["WINDOW", "AuthEvent", "AuthEvents", "EventCallback", "EventKind"]

logger: logging.Logger = logging.getLogger("sealed_sessions")

WINDOW = 60
"""Seconds between two ``old_key`` log records for the same key id."""


class EventKind(enum.StrEnum):
    """What happened."""

    LOGIN = "login"
    LOGOUT = "logout"
    REVOKE = "revoke"
    REFUSAL = "refusal"
    OLD_KEY = "old_key"
    TOKEN_REDEEMED = "token_redeemed"  # noqa: S105 - an event name, not a secret


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """One event. Never carries a cookie's contents, a token or a key."""

    kind: EventKind
    at: float
    """When, in seconds since the epoch (the emitter's clock)."""
    user_id: str | None = None
    """The user's primary key, as a string, when known."""
    reason: str | None = None
    """Why: a refusal's reason code, or what a revocation was (see the module's table)."""
    ended: int | None = None
    """How many server-side sessions (device rows) it ended, when known."""
    key_id: str | None = None
    """``old_key``: the id of the key that opened the cookie, 8 hex digits."""
    purpose: str | None = None
    """``token_redeemed``: the token's purpose."""
    device_id: str | None = None
    """Device mode: the device row's id (never its secret)."""


EventCallback: TypeAlias = Callable[[AuthEvent], Awaitable[Any] | None]
"""A function of one :class:`AuthEvent`; an ``async def`` is run as a task on the event loop."""
Callback = EventCallback  # the name this module first gave it

_LOGGED_AT_INFO = frozenset({EventKind.LOGIN, EventKind.LOGOUT, EventKind.REVOKE, EventKind.TOKEN_REDEEMED})


class AuthEvents:
    """Where ``SessionAuth`` and ``SessionMiddleware`` report what happens to sessions.

    One hub may serve both (pass the same instance as ``events=`` to each), or each builds its
    own (``auth.events``, ``middleware.events``). Safe to use from several threads.
    """

    __slots__ = ("_callbacks", "_lock", "_old_key_logged_at", "_old_key_unlogged", "_tasks", "counts", "key_usage")

    counts: Counter[str]
    """Events emitted since start, per kind (``"login"``, ...): what a metrics exporter reads."""

    key_usage: KeyUsage | None
    """The key usage of the session middleware given this hub (``events=``), for the application to
    read (``events.key_usage.snapshot()``): with ``app.add_middleware`` the middleware itself is
    out of reach."""

    def __init__(self) -> None:
        self.key_usage = None
        self.counts = Counter()
        self._callbacks: tuple[tuple[EventKind | None, EventCallback], ...] = ()
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._old_key_logged_at: dict[str, float] = {}
        self._old_key_unlogged: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<AuthEvents: {len(self._callbacks)} callback(s)>"

    def on(self, kind: EventKind | str | None, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of ``kind`` (``None``: every event), in the order registered.

        Returns a function that unregisters it (calling it twice is harmless). An unknown kind or
        a callback that is not callable is a :class:`ConfigurationError`.
        """
        if kind is not None:
            try:
                kind = EventKind(kind)
            except ValueError:
                known = ", ".join(k.value for k in EventKind)
                raise ConfigurationError(f"unknown event kind {kind!r}: use one of {known}, or None") from None
        if not callable(callback):
            raise ConfigurationError(f"an event callback must be callable, got {type(callback).__name__}")
        entry = (kind, callback)
        with self._lock:
            self._callbacks = (*self._callbacks, entry)

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks = tuple(e for e in self._callbacks if e is not entry)

        return unsubscribe

    def emit(self, event: AuthEvent) -> None:
        """Log ``event`` (see the module's notes), count it and hand it to the callbacks registered for it.

        Never raises because of a callback: failures are logged by exception class only.
        """
        self.counts[str(event.kind)] += 1
        if event.kind in _LOGGED_AT_INFO:
            _log(event)
        elif event.kind == EventKind.OLD_KEY:
            self._log_old_key(event)
        for kind, callback in self._callbacks:
            if kind is not None and kind != event.kind:
                continue
            try:
                result = callback(event)
            except Exception as exc:
                _log_failure(callback, exc)
                continue
            if result is not None and inspect.isawaitable(result):
                self._schedule(callback, result)

    async def drain(self) -> None:
        """Wait until every async callback started so far on this loop has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def _schedule(self, callback: EventCallback, awaitable: Awaitable[Any]) -> None:
        """Run ``awaitable`` as a task on the running loop, or on the loop of the thread pool we run in."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            self._start(callback, awaitable)
            return
        try:  # a sync endpoint, run by Starlette in a worker thread: hand the awaitable to its loop
            anyio.from_thread.run_sync(self._start, callback, awaitable)
        except RuntimeError:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never awaited: say so here, not in a RuntimeWarning
            logger.warning(
                "event callback %s is async but no event loop is running: skipped",
                _name(callback),
                extra={"event_callback": _name(callback)},
            )

    def _start(self, callback: EventCallback, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)  # a strong reference: the loop holds tasks only weakly

        def done(task: asyncio.Future[Any]) -> None:
            self._tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                _log_failure(callback, task.exception())

        task.add_done_callback(done)

    def _log_old_key(self, event: AuthEvent) -> None:
        key_id = event.key_id or "?"
        with self._lock:
            self._old_key_unlogged[key_id] += 1
            last = self._old_key_logged_at.get(key_id)
            if last is not None and event.at - last < WINDOW:
                return
            self._old_key_logged_at[key_id] = event.at
            count = self._old_key_unlogged.pop(key_id)
        logger.info(
            "session cookie opened with older key %s (%d since the last such record): resealed with the current key",
            key_id,
            count,
            extra={"event": str(event.kind), "key_id": key_id, "count": count},
        )


def _log(event: AuthEvent) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    fields = {
        name: value
        for name, value in (
            ("device_id", event.device_id),
            ("ended", event.ended),
            ("purpose", event.purpose),
            ("cause", event.reason),  # not "reason": that attribute names refusal reasons
        )
        if value is not None
    }
    details = "".join(f", {name} {value}" for name, value in fields.items())
    logger.info(
        "%s: user %r%s",
        str(event.kind),
        event.user_id,
        details,
        extra={"event": str(event.kind), "user_id": event.user_id, **fields},
    )


def _name(callback: object) -> str:
    return str(getattr(callback, "__qualname__", None) or type(callback).__qualname__)


FAILURE_LOG_INTERVAL = 60.0
"""Seconds between two log records of one callback failing with one exception class."""
_failures_logged_at: dict[tuple[str, str], float] = {}
_failures_unlogged: Counter[tuple[str, str]] = Counter()


def _log_failure(callback: object, exc: BaseException | None) -> None:
    """Log a failed callback by its name and exception class (a message could hold anything), at most
    once a minute per callback and class, with how many failures the record stands for: a callback
    failing on every refusal must not turn a flood of bad cookies into a flood of log lines."""
    key = (_name(callback), type(exc).__name__)
    now = time.monotonic()
    last = _failures_logged_at.get(key)
    if last is not None and now - last < FAILURE_LOG_INTERVAL:
        _failures_unlogged[key] += 1
        return
    _failures_logged_at[key] = now
    times = 1 + _failures_unlogged.pop(key, 0)
    logger.error(
        "event callback %s raised %s (%d time(s) since the last record)",
        key[0],
        key[1],
        times,
        extra={"event_callback": key[0], "error": key[1], "count": times},
    )
