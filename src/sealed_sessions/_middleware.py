"""The pure ASGI middleware: cookie -> keys -> open -> ``scope["session"]`` -> app -> seal -> Set-Cookie.

A drop-in for ``starlette.middleware.sessions.SessionMiddleware``: same parameter names and
meanings, same ``scope["session"]``, two stricter defaults (``https_only=True``, no weak keys).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Literal

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._cookie import CookieOptions
from ._errors import InvalidCookie, SessionDataError
from ._keys import KeyInput
from ._lifetime import expiry
from ._payload import Opened, dump_data
from ._sealer import DEFAULT_MAX_AGE, Sealer
from ._session import Session

__all__ = ["SessionMiddleware"]

logger = logging.getLogger("sealed_sessions")

_SHARED_CACHE_DIRECTIVES = ("public", "s-maxage")


class SessionMiddleware:
    """Encrypted, authenticated client-side sessions for any ASGI application.

    Guarantees: the browser can neither read nor alter the session; expiry is enforced from
    timestamps sealed in the cookie (``max_age`` from the session's start, ``idle_timeout`` from
    its last use), never from the browser; a cookie opens only under the name it was sealed for;
    any bad cookie becomes an empty session, logged on the ``sealed_sessions`` logger with a
    reason code, never an exception. ``Set-Cookie`` is sent only when the session's data changed
    (nested changes included), it was reset or its lifetime changed, it was emptied (a deletion
    cookie), it was opened with an older key, or idle renewal is due; never on a 5xx response.
    A response that sets the cookie is marked ``Cache-Control: private``; one that read the
    session gets ``Vary: Cookie``. A read-only request whose session holds only plain values
    does no JSON encoding at all.

    Stacking: give each instance its own ``session_cookie`` and ``scope_key`` (the session is
    ``scope[scope_key]``; ``request.session`` is ``scope["session"]``).

    Not guaranteed: that a cookie cannot be replayed before it expires (use the revocation
    dependency for that), or that concurrent requests' writes merge: the last response wins.
    """

    app: ASGIApp
    """The wrapped application."""
    sealer: Sealer
    """Opens and seals this middleware's cookie values (keys, expiry policy, format)."""
    cookie: CookieOptions
    """The cookie's name and attributes."""
    scope_key: str
    """Where the session goes in the ASGI scope."""
    clock: Callable[[], float]
    """Seconds since the epoch; injectable for tests."""

    def __init__(
        self,
        app: ASGIApp,
        secret_key: KeyInput,
        session_cookie: str = "session",
        max_age: int | None = DEFAULT_MAX_AGE,
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = True,
        domain: str | None = None,
        partitioned: bool = False,
        *,
        idle_timeout: int | None = None,
        scope_key: str = "session",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.cookie = CookieOptions(
            session_cookie,
            path=path,
            same_site=same_site,
            secure=https_only,
            domain=domain,
            partitioned=partitioned,
        )
        self.sealer = Sealer(secret_key, session_cookie, max_age=max_age, idle_timeout=idle_timeout)
        self.scope_key = scope_key
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        now = int(self.clock())
        session = Session(opened=self._open(scope, now))
        scope[self.scope_key] = session
        if scope["type"] == "websocket":  # read-only: a handshake cannot set cookies portably
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                _adopt_replacement(session, scope.get(self.scope_key, session))
                self._finish(message, session, now)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _open(self, scope: Scope, now: int) -> Opened | None:
        """The valid session in the request's cookie, if any; a bad one is logged and dropped."""
        value = self.cookie.find(scope["headers"])
        if value is None:
            return None
        try:
            return self.sealer.open(value, now)
        except InvalidCookie as exc:
            logger.info(
                "session cookie %r rejected: %s",
                self.cookie.name,
                exc.reason.value,
                extra={"cookie_name": self.cookie.name, "reason": exc.reason.value},
            )
            return None

    def _finish(self, message: Message, session: Session, now: int) -> None:
        """Add ``Vary`` and, when needed, ``Set-Cookie`` to a response start message."""
        if message["status"] >= 500:  # a failing app must not reseal or delete anything
            set_cookie = None
        elif session.opened is None:
            set_cookie = self._new_cookie(session, now)
        else:
            set_cookie = self._next_cookie(session, session.opened, now)
        if not (session.accessed or set_cookie):
            return  # the common read-nothing case: leave the message alone
        raw = _header_list(message)
        if not set_cookie and not any(name == b"vary" for name, _ in raw):
            raw.append((b"vary", b"Cookie"))  # the common read-only case, without MutableHeaders
            return
        headers = MutableHeaders(raw=raw)
        if session.accessed:
            _vary_on_cookie(headers)
        if set_cookie:
            headers.append("set-cookie", set_cookie)
            _keep_out_of_shared_caches(headers)

    def _new_cookie(self, session: Session, now: int) -> str | None:
        """The cookie for a request that arrived without a valid one: only if the app stored data."""
        if not session:
            return None
        data_json = dump_data(session)
        session.check_all()  # json.dumps would quietly turn a nested tuple into a list
        issued_at, expires_at = self._lifetime_of(session, None, now)
        return self._set_cookie(data_json, issued_at, expires_at, now)

    def _next_cookie(self, session: Session, opened: Opened, now: int) -> str | None:
        """The cookie for a request that arrived with a valid one, or ``None`` to keep it as it is.

        A new cookie is needed when the data changed, the session was reset, its expiry changed
        (``set_max_age``), the cookie was sealed with an older key, or idle renewal is due. An
        emptied session gets a deletion cookie instead.
        """
        data_json = opened.data_json if self._surely_unchanged(session) else dump_data(session)
        changed = data_json != opened.data_json
        issued_at, expires_at = self._lifetime_of(session, opened, now)
        if not (
            changed
            or session.was_reset
            or expires_at != opened.expires_at
            or not opened.sealed_with_current_key
            or self.sealer.lifetime.renewal_due(opened.last_active, now)
        ):
            return None
        if not session:
            return self.cookie.deletion()
        if changed:
            session.check_all()  # nested writes never went through __setitem__
        return self._set_cookie(data_json, issued_at, expires_at, now)

    def _lifetime_of(self, session: Session, opened: Opened | None, now: int) -> tuple[int, int | None]:
        """``(issued_at, expires_at)`` for the next cookie.

        A new or reset session starts now; otherwise the start is kept. ``set_max_age`` counts
        from the start, so calling it again never pushes the expiry past ``issued_at + seconds``.
        """
        if opened is None or session.was_reset:
            issued_at, expires_at = now, self.sealer.lifetime.expires_at(now)
        else:
            issued_at, expires_at = opened.issued_at, opened.expires_at
        if session.has_max_age_override:
            expires_at = expiry(issued_at, session.max_age_override)
        return issued_at, expires_at

    @staticmethod
    def _surely_unchanged(session: Session) -> bool:
        """True when the session cannot differ from the cookie, so serialising it can be skipped.

        Only writes through the dict API set ``modified``; anything else would have to mutate a
        nested list or dict in place, so a session of plain values that was not modified is
        unchanged. This keeps the read-only hot path free of JSON encoding.
        """
        return not session.modified and not any(isinstance(v, dict | list) for v in session.values())

    def _set_cookie(self, data_json: bytes, issued_at: int, expires_at: int | None, now: int) -> str:
        """The whole ``Set-Cookie`` value for the session sealed at ``now``."""
        value = self.sealer.seal_json(data_json, issued_at=issued_at, expires_at=expires_at, now=now)
        return self.cookie.set_cookie(value, self.sealer.lifetime.cookie_max_age(expires_at, now))


def _header_list(message: Message) -> list[tuple[bytes, bytes]]:
    """The start message's headers as a list we may append to, stored back into the message.

    The ASGI spec makes ``headers`` optional and allows any iterable of pairs.
    """
    raw = message.get("headers")
    if raw is None:
        raw = []
    elif not isinstance(raw, list):
        raw = list(raw)
    message["headers"] = raw
    return raw


def _adopt_replacement(session: Session, current: object) -> None:
    """Honour an app that replaced ``scope["session"]`` outright (``scope["session"] = {}``).

    Starlette's middleware reads the scope at response time, so code that logs out this way
    must keep working: the replacement's contents become the session's (checked as JSON).
    """
    if current is session or isinstance(current, Session):
        # Ours, or another instance's session under the same scope_key (stacked middlewares must
        # use distinct scope keys): never copy one cookie's data into another.
        return
    if not isinstance(current, Mapping):
        raise SessionDataError(f"the session in the scope was replaced with a {type(current).__name__}, not a dict")
    replacement = dict(current)
    session.clear()
    session.update(replacement)


def _vary_on_cookie(headers: MutableHeaders) -> None:
    """Add ``Cookie`` to ``Vary`` once, even with several session middlewares stacked."""
    values = headers.getlist("vary")
    if not values:
        headers.append("vary", "Cookie")  # the common case, without add_vary_header's rescans
    elif not {v.strip().lower() for v in ",".join(values).split(",")} & {"cookie", "*"}:
        headers.add_vary_header("Cookie")


def _keep_out_of_shared_caches(headers: MutableHeaders) -> None:
    """A response that sets a session cookie must never be stored by a shared cache.

    Drops ``public`` and ``s-maxage`` and adds ``private`` unless ``private`` or ``no-store`` is
    already there; every other directive of the app's (``max-age``, ``no-cache``...) is kept.
    """
    values = headers.getlist("cache-control")
    if not values:
        headers.append("cache-control", "private")
        return
    directives = [d.strip() for d in ",".join(values).split(",") if d.strip()]
    kept = [d for d in directives if d.split("=", 1)[0].strip().lower() not in _SHARED_CACHE_DIRECTIVES]
    if not any(d.lower() in ("private", "no-store") for d in kept):
        kept.append("private")
    if kept != directives or len(values) > 1:
        headers["cache-control"] = ", ".join(kept)
