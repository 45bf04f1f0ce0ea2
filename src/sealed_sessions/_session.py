"""The session object the application sees as ``request.session`` / ``scope["session"]``.

A plain ``dict`` subclass, so code written for Starlette's SessionMiddleware works unchanged,
including Starlette's ``accessed`` / ``modified`` flags and ``mark_accessed()``.

Writes are checked at once: a value that cannot be stored as JSON and read back equal raises
:class:`SessionDataError` naming the key. Changes made inside nested values
(``session["cart"].append(x)``) are found at the end of the request by comparing the serialised
data with what the cookie held, so they are saved too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import HTTPConnection

from ._errors import ConfigurationError
from ._payload import check_json_value

__all__ = ["Session"]

_UNSET: Any = object()


class Session(dict[str, Any]):
    """Session data plus the lifetime facts sealed next to it.

    ``issued_at`` and ``expires_at`` describe the session as it arrived (``None`` for a new one).
    """

    accessed: bool = False
    """Read or written during this request: the response gets ``Vary: Cookie``."""
    modified: bool = False
    """Written through the dict API during this request."""

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        issued_at: int | None = None,
        expires_at: int | None = None,
    ) -> None:
        super().__init__(data or ())
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.renewed = False
        """``reset()`` was called: the next cookie starts a new lifetime."""
        self.max_age_override: int | None = _UNSET

    @classmethod
    def of(cls, connection: HTTPConnection, scope_key: str = "session") -> Session:
        """The session of a request or WebSocket, typed as :class:`Session`.

        ``request.session`` is typed ``dict`` by Starlette; use ``Session.of(request)`` where a type
        checker should see :meth:`reset` and :meth:`set_max_age`. Marks the session accessed, as
        ``request.session`` does. ``scope_key`` selects a stacked middleware's session.
        """
        session = connection.scope.get(scope_key)
        if not isinstance(session, cls):
            raise ConfigurationError(
                f"no sealed_sessions SessionMiddleware with scope_key={scope_key!r} wraps this route"
            )
        session.mark_accessed()
        return session

    # -- Starlette's protocol -------------------------------------------------------------------

    def mark_accessed(self) -> None:
        self.accessed = True

    def mark_modified(self) -> None:
        self.accessed = True
        self.modified = True

    # -- lifetime -------------------------------------------------------------------------------

    def reset(self, keep: Iterable[str] | str = ()) -> None:
        """Empty the session except the keys in ``keep``, and start a new session lifetime.

        Call it at login: nothing from before survives unless asked for, and the new cookie has a
        fresh ``issued_at`` and therefore a fresh absolute expiry. ``keep`` is a collection of
        key names; a single string is one key name (not its characters).
        """
        names = (keep,) if isinstance(keep, str) else tuple(keep)
        kept = {k: self[k] for k in names if k in self}
        super().clear()
        super().update(kept)
        self.renewed = True
        self.mark_modified()

    def set_max_age(self, seconds: int | None) -> None:
        """Set this session's absolute lifetime, counted from its start (``issued_at``).

        For "remember me": ``session.reset(); session.set_max_age(30 * 86400)``. ``None`` makes it
        a browser-session cookie with no absolute cap. Calling it again does not extend a
        session beyond ``issued_at + seconds``.
        """
        if seconds is not None and (not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0):
            raise ConfigurationError(f"set_max_age takes a positive number of seconds or None, got {seconds!r}")
        self.max_age_override = seconds
        self.mark_modified()

    @property
    def has_max_age_override(self) -> bool:
        return self.max_age_override is not _UNSET

    # -- writes: flag and check -----------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        check_json_value(key, value)
        self.mark_modified()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.mark_modified()
        super().__delitem__(key)

    def clear(self) -> None:
        self.mark_modified()
        super().clear()

    def pop(self, key: str, *args: Any) -> Any:
        if key in self:
            self.mark_modified()
        return super().pop(key, *args)

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self.mark_modified()
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            check_json_value(key, default)
            self.mark_modified()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        new = dict(*args, **kwargs)
        for key, value in new.items():
            check_json_value(key, value)
        self.mark_modified()
        super().update(new)

    def __ior__(self, other: Any, /) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    def check_all(self) -> None:
        """Check every value, for changes made inside nested values behind our back."""
        for key, value in self.items():
            check_json_value(key, value)
