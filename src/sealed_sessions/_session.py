"""The session object the application sees as ``request.session`` / ``scope["session"]``.

A plain ``dict`` subclass, so code written for Starlette's SessionMiddleware works unchanged,
including Starlette's ``accessed`` / ``modified`` flags and ``mark_accessed()``.

Writes are checked at once: a value that cannot be stored as JSON and read back equal raises
:class:`SessionDataError` naming the key. Changes made inside nested values
(``session["cart"].append(x)``) are found at the end of the request by comparing the serialised
data with what the cookie held, so they are saved too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from ._errors import ConfigurationError, SessionDataError
from ._lifetime import check_seconds
from ._payload import Opened, check_json_value

if TYPE_CHECKING:  # the view types exist at run time only in a private module
    from _collections_abc import dict_items, dict_keys, dict_values

__all__ = ["Session"]

_UNSET: Any = object()


class Session(dict[str, Any]):
    """Session data, and the cookie it was opened from.

    ``issued_at`` and ``expires_at`` describe the session as it arrived (``None`` for a new one).
    """

    accessed: bool = False
    """Read or written during this request: the response gets ``Vary: Cookie``."""
    modified: bool = False
    """Written through the dict API during this request."""
    passive: bool = False
    """:meth:`mark_passive` was called: this request does not renew the idle timeout."""
    opened: Opened | None
    """The cookie this session arrived in, or ``None`` for a new session."""
    was_reset: bool
    """:meth:`reset` was called: the next cookie starts a new lifetime (a new ``issued_at``)."""
    max_age_override: int | None
    """The lifetime set by :meth:`set_max_age`; meaningful only when :attr:`has_max_age_override`."""
    finishers: list[Callable[[], None]] | None = None
    """Callbacks run when the response starts, before the middleware looks at the data."""
    generation: int = 0
    """How many times this request emptied the session (:meth:`reset`, :meth:`clear`): views
    taken before (:mod:`sealed_sessions.typed`) must not write into what came after."""

    def __init__(self, data: Mapping[str, Any] | None = None, *, opened: Opened | None = None) -> None:
        dict.__init__(self, opened.data if data is None and opened is not None else data or ())
        self.opened = opened
        self.was_reset = False
        self.max_age_override = _UNSET

    @property
    def issued_at(self) -> int | None:
        """When the arriving session began, or ``None`` for a new one."""
        return None if self.opened is None else self.opened.issued_at

    @property
    def expires_at(self) -> int | None:
        """The arriving session's absolute expiry, or ``None`` (new, or a browser-session cookie)."""
        return None if self.opened is None else self.opened.expires_at

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

    def add_finisher(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the response starts, before the middleware decides what to seal.

        For views that keep their own copy of some keys (:mod:`sealed_sessions.typed`) and write
        it back at the end of the request. Callbacks run once, in the order added, for HTTP
        requests only (a WebSocket session is read-only); an exception from one propagates.
        """
        if self.finishers is None:
            self.finishers = []
        self.finishers.append(callback)

    def run_finishers(self) -> None:
        """Run and forget the callbacks added with :meth:`add_finisher` (the middleware calls it)."""
        finishers, self.finishers = self.finishers, None
        for callback in finishers or ():
            callback()

    # -- Starlette's protocol -------------------------------------------------------------------

    def mark_accessed(self) -> None:
        """Record a read: the response will carry ``Vary: Cookie``."""
        self.accessed = True

    def mark_modified(self) -> None:
        """Record a write through the dict API."""
        self.accessed = True
        self.modified = True

    def mark_passive(self) -> None:
        """Do not count this request as activity: the idle timeout is not renewed by it.

        For pollers, health checks and background refreshes that read the session but should not
        keep an abandoned session alive. Writes are still saved.
        """
        self.passive = True

    # -- reads: flag ----------------------------------------------------------------------------
    # However the session is read (request.session, scope["session"], Session.of), the response
    # then depends on the cookie and gets Vary: Cookie, and the request counts as activity.

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """As ``dict.get``; marks the session accessed."""
        self.accessed = True
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return super().__iter__()

    def __len__(self) -> int:
        self.accessed = True
        return super().__len__()

    def keys(self) -> dict_keys[str, Any]:
        """As ``dict.keys``; marks the session accessed."""
        self.accessed = True
        return super().keys()

    def values(self) -> dict_values[str, Any]:
        """As ``dict.values``; marks the session accessed."""
        self.accessed = True
        return super().values()

    def items(self) -> dict_items[str, Any]:
        """As ``dict.items``; marks the session accessed."""
        self.accessed = True
        return super().items()

    # -- lifetime -------------------------------------------------------------------------------

    def reset(self, keep: Iterable[str] | str = ()) -> None:
        """Empty the session except the keys in ``keep``, and start a new session lifetime.

        Call it at login: nothing from before survives unless asked for, and the new cookie has a
        fresh ``issued_at`` and therefore a fresh absolute expiry. ``keep`` is a collection of
        key names; a single string is one key name (not its characters).
        """
        names = (keep,) if isinstance(keep, str) else tuple(keep)
        kept = {k: self[k] for k in names if k in self}
        self.generation += 1
        super().clear()
        super().update(kept)
        self.was_reset = True
        self.mark_modified()

    def set_max_age(self, seconds: int | None) -> None:
        """Set this session's absolute lifetime, counted from its start (``issued_at``).

        For "remember me": ``session.reset(); session.set_max_age(30 * 86400)``. ``None`` makes it
        a browser-session cookie with no absolute cap. Calling it again does not extend a
        session beyond ``issued_at + seconds``.
        """
        self.max_age_override = check_seconds("set_max_age", seconds, allow_none=True, positive=True)
        self.mark_modified()

    @property
    def has_max_age_override(self) -> bool:
        """:meth:`set_max_age` was called during this request."""
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
        """Empty the session; the response gets a deletion cookie."""
        self.mark_modified()
        self.generation += 1
        super().clear()

    def pop(self, key: str, *args: Any) -> Any:
        """As ``dict.pop``; marks the session modified if ``key`` was there."""
        if key in self:
            self.mark_modified()
        return super().pop(key, *args)

    def popitem(self) -> tuple[str, Any]:
        """As ``dict.popitem``; marks the session modified."""
        item = super().popitem()
        self.mark_modified()
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        """As ``dict.setdefault``; checks and stores ``default`` only if ``key`` is missing."""
        if key not in self:
            check_json_value(key, default)
            self.mark_modified()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """As ``dict.update``; every value is checked as JSON before any is stored."""
        new = dict(*args, **kwargs)
        for key, value in new.items():
            check_json_value(key, value)
        self.mark_modified()
        super().update(new)

    def __ior__(self, other: Any, /) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    def adopt(self, current: object) -> None:
        """Honour an app that replaced ``scope["session"]`` outright (``scope["session"] = {}``).

        Starlette's middleware reads the scope at response time, so code that logs out this way
        must keep working: the replacement's contents become this session's (checked as JSON).
        Another :class:`Session` (a stacked middleware's, which must use its own ``scope_key``)
        is never copied: one cookie's data never goes into another.
        """
        if current is self or isinstance(current, Session):
            return
        if not isinstance(current, Mapping):
            raise SessionDataError(f"the session in the scope was replaced with a {type(current).__name__}, not a dict")
        replacement = dict(current)
        self.clear()
        self.update(replacement)

    def check_all(self) -> None:
        """Check every value, for changes made inside nested values behind our back."""
        for key, value in dict.items(self):
            check_json_value(key, value)
