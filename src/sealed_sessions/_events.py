"""Lifecycle events (login, logout, revoke, refusal, older key, token redeemed): being built.

The contract other modules already use: ``AuthEvents.emit(AuthEvent(...))`` and
``AuthEvents.on(kind, callback)``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["AuthEvent", "AuthEvents", "EventKind"]

logger: logging.Logger = logging.getLogger("sealed_sessions")


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
    user_id: str | None = None
    reason: str | None = None
    ended: int | None = None
    key_id: str | None = None
    purpose: str | None = None


Callback = Callable[[AuthEvent], Awaitable[None] | None]


class AuthEvents:
    """Where ``SessionAuth`` (and the middleware) report what happens to sessions."""

    def __init__(self) -> None:
        self._callbacks: list[tuple[EventKind | None, Callback]] = []

    def on(self, kind: EventKind | None, callback: Callback) -> None:
        """Call ``callback(event)`` for every event of ``kind`` (``None``: every event)."""
        self._callbacks.append((kind, callback))

    def emit(self, event: AuthEvent) -> None:
        """Report ``event`` to the callbacks registered for it."""
        for kind, callback in self._callbacks:
            if kind is None or kind == event.kind:
                callback(event)
