"""Flash messages: a note for the user's next page ("Password changed"), kept in the session.

``flash(request, "Password changed", "success")`` before a redirect; the next page calls
``get_flashed_messages(request)``, which returns the messages and removes them, so each is shown
once. They live in the sealed cookie under ``FLASH_KEY`` as a JSON list of ``[category, message]``
pairs: nothing on the server, readable by no one but the application.

Bounded, because every byte is sent on every request: at most ``MAX_FLASHES`` messages wait at
once (a new one pushes the oldest out), each at most ``MAX_MESSAGE`` characters, with a category
of at most ``MAX_CATEGORY`` characters. Messages are text, not HTML: escape them when rendering
(Jinja2 does by default), and never flash raw user input you would not echo anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, NamedTuple

from starlette.requests import HTTPConnection

from ._errors import SessionDataError

__all__ = ["FLASH_KEY", "MAX_CATEGORY", "MAX_FLASHES", "MAX_MESSAGE", "FlashMessage", "flash", "get_flashed_messages"]

FLASH_KEY = "_flashes"
"""The session key holding the waiting messages."""
MAX_FLASHES = 10
"""Messages kept at most; flashing another drops the oldest."""
MAX_MESSAGE = 500
"""Longest message, in characters."""
MAX_CATEGORY = 32
"""Longest category, in characters."""

SessionTarget = HTTPConnection | MutableMapping[str, Any]


class FlashMessage(NamedTuple):
    """One message and its category (``"info"``, ``"success"``, ``"error"``: any short label)."""

    message: str
    """The text to show."""
    category: str
    """A short label the page can style by."""


def flash(target: SessionTarget, message: str, category: str = "info") -> None:
    """Keep ``message`` for the next page that calls :func:`get_flashed_messages`.

    ``target`` is a request (or WebSocket) or a session mapping. Raises :class:`SessionDataError`
    for a message or category that is not a ``str`` or is too long.
    """
    _check("message", message, MAX_MESSAGE)
    _check("category", category, MAX_CATEGORY)
    session = _session_of(target)
    waiting = [*_valid(session.get(FLASH_KEY)), [category, message]]
    session[FLASH_KEY] = waiting[-MAX_FLASHES:]


def get_flashed_messages(target: SessionTarget, categories: Iterable[str] | None = None) -> list[FlashMessage]:
    """The waiting messages, oldest first, removed from the session; ``[]`` when there are none.

    With ``categories``, only messages of those categories are returned and removed; the others
    keep waiting. Reading when nothing waits does not touch the cookie. Entries that are not
    well-formed pairs (data written under ``FLASH_KEY`` by other code) are dropped.
    """
    if isinstance(categories, str):
        raise SessionDataError(f"categories must be a collection of category names, as in categories=[{categories!r}]")
    session = _session_of(target)
    if FLASH_KEY not in session:
        return []
    waiting = _valid(session[FLASH_KEY])
    if categories is None:
        taken, kept = waiting, []
    else:
        wanted = frozenset(categories)
        taken = [entry for entry in waiting if entry[0] in wanted]
        kept = [entry for entry in waiting if entry[0] not in wanted]
    if kept:
        session[FLASH_KEY] = kept
    else:
        del session[FLASH_KEY]
    return [FlashMessage(message, category) for category, message in taken]


def _session_of(target: SessionTarget) -> MutableMapping[str, Any]:
    return target.session if isinstance(target, HTTPConnection) else target


def _check(what: str, value: object, limit: int) -> None:
    if not isinstance(value, str):
        raise SessionDataError(f"a flash {what} must be a str, got {type(value).__name__}")
    if len(value) > limit:
        raise SessionDataError(
            f"a flash {what} is {len(value)} characters, over the {limit} allowed: "
            "it travels in the cookie on every request, so keep it short"
        )


def _valid(stored: object) -> list[list[str]]:
    """The well-formed ``[category, message]`` pairs in what the session holds under ``FLASH_KEY``."""
    if not isinstance(stored, list):
        return []
    return [
        [entry[0], entry[1]]
        for entry in stored[-MAX_FLASHES:]
        if isinstance(entry, list)
        and len(entry) == 2
        and isinstance(entry[0], str)
        and isinstance(entry[1], str)
        and len(entry[0]) <= MAX_CATEGORY
        and len(entry[1]) <= MAX_MESSAGE
    ]
