"""What ``SessionMiddleware(schema=...)`` accepts: a check of the data of every cookie that opens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ._errors import Reason
from ._payload import Opened

__all__ = ["SessionSchema", "fit"]


class SessionSchema(Protocol):
    """What ``SessionMiddleware(schema=...)`` accepts: a check run once when a cookie opens.

    :class:`sealed_sessions.typed.TypedSession` is one. ``check`` gets the authentic data and
    returns it unchanged when it fits, a new dict when it migrated it (the session is resealed
    on that response), or ``None`` when it does not fit: the session is then empty and the
    cookie is logged as refused with reason ``schema``. It must not raise.
    """

    def check(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The data to use, or ``None`` to refuse the cookie."""
        ...


def fit(
    schema: SessionSchema, opened: Opened, rewrite: bool, refuse: Callable[[Reason], object]
) -> tuple[Opened | None, bool]:
    """``opened`` as ``schema`` accepts it (``rewrite`` when it migrated the data), or ``None``
    after ``refuse(Reason.SCHEMA)``."""
    data = schema.check(opened.data)
    if data is None:
        refuse(Reason.SCHEMA)
        return None, False
    return (opened, rewrite) if data is opened.data else (opened.with_data(data), True)
