"""The pure ASGI middleware: cookie -> keys -> open -> ``scope["session"]`` -> app -> seal -> Set-Cookie.

A drop-in for ``starlette.middleware.sessions.SessionMiddleware``: same parameter names and
meanings, same ``scope["session"]``, two stricter defaults (``https_only=True``, no weak keys).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._cookie import CookieOptions, default_name
from ._errors import InvalidCookie, Reason, SessionDataError
from ._headers import header_list, keep_out_of_shared_caches, vary_on_cookie
from ._keys import KeyInput
from ._lifetime import expiry
from ._payload import Opened, dump_data
from ._rejections import RejectionLog
from ._sealer import DEFAULT_MAX_AGE, Sealer
from ._session import Session

__all__ = ["MAX_MAC_CHECKS", "SessionMiddleware"]

MAX_MAC_CHECKS = 4
"""MACs checked per request at most, however many values of our cookie arrive (bounded CPU)."""
_REFUSED_BEFORE_THE_MAC = frozenset({Reason.TOO_LARGE, Reason.MALFORMED, Reason.UNKNOWN_VERSION, Reason.UNKNOWN_KEY})


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
    rejections: RejectionLog
    """Refused cookies: rate-limited logging, and ``rejections.counts`` per reason since start."""

    def __init__(
        self,
        app: ASGIApp,
        secret_key: KeyInput,
        session_cookie: str | None = None,
        max_age: int | None = DEFAULT_MAX_AGE,
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = True,
        domain: str | None = None,
        partitioned: bool = False,
        *,
        idle_timeout: int | None = None,
        context: str = "",
        scope_key: str = "session",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        if session_cookie is None:
            session_cookie = default_name(secure=https_only, path=path, domain=domain)
        self.cookie = CookieOptions(
            session_cookie,
            path=path,
            same_site=same_site,
            secure=https_only,
            domain=domain,
            partitioned=partitioned,
        )
        self.sealer = Sealer(secret_key, session_cookie, max_age=max_age, idle_timeout=idle_timeout, context=context)
        self.scope_key = scope_key
        self.clock = clock
        self.rejections = RejectionLog(session_cookie, clock)

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
        """The valid session in the request's cookie, if any; bad ones are logged and dropped.

        Several values of our name (a cookie planted for a more specific path or a parent domain)
        are tried in order and the first that opens is used, so planted garbage cannot lock a user
        out. Two *different* values that both open are ambiguous (a planted valid session would
        swap accounts): neither is used. Values refused before their MAC is checked (malformed,
        unknown version or key) cost next to nothing; at most ``MAX_MAC_CHECKS`` MACs are checked.
        """
        values = self.cookie.find(scope["headers"])
        if not values:
            return None
        found: Opened | None = None
        found_value = ""
        mac_checks = 0
        for value in values:
            if mac_checks == MAX_MAC_CHECKS:
                break
            try:
                opened = self.sealer.open(value, now)
            except InvalidCookie as exc:
                self.rejections(exc.reason)
                mac_checks += exc.reason not in _REFUSED_BEFORE_THE_MAC
                continue
            mac_checks += 1
            if found is None:
                found, found_value = opened, value
            elif value != found_value:
                self.rejections(Reason.AMBIGUOUS)
                return None
        if len(values) > 1:
            self.rejections(Reason.DUPLICATE)
        return found

    def _finish(self, message: Message, session: Session, now: int) -> None:
        """Add ``Vary`` and, when needed, ``Set-Cookie`` to a response start message."""
        accessed = session.accessed  # before our own look at the session below
        if message["status"] >= 500:  # a failing app must not reseal or delete anything
            set_cookie = None
        elif session.opened is None:
            set_cookie = self._new_cookie(session, now)
        else:
            set_cookie = self._next_cookie(session, session.opened, now, accessed)
        if not (accessed or set_cookie):
            return  # the common read-nothing case: leave the message alone
        headers = header_list(message)
        if accessed:
            vary_on_cookie(headers)
        if set_cookie:
            headers.append((b"set-cookie", set_cookie.encode("latin-1")))
            keep_out_of_shared_caches(headers)

    def _new_cookie(self, session: Session, now: int) -> str | None:
        """The cookie for a request that arrived without a valid one: only if the app stored data."""
        if not dict.__len__(session):
            return None
        data_json = dump_data(session)
        session.check_all()  # json.dumps would quietly turn a nested tuple into a list
        issued_at, expires_at = self._lifetime_of(session, None, now)
        return self._set_cookie(data_json, issued_at, expires_at, now, now)

    def _next_cookie(self, session: Session, opened: Opened, now: int, accessed: bool) -> str | None:
        """The cookie for a request that arrived with a valid one, or ``None`` to keep it as it is.

        A new cookie is needed when the data changed, the session was reset, its expiry changed
        (``set_max_age``), the cookie was sealed with an older key or format, or idle renewal is
        due: the request used the session (``accessed``), was not marked passive, and a quarter of
        the idle window has passed. An emptied session gets a deletion cookie instead.
        """
        data_json = opened.data_json if self._surely_unchanged(session) else dump_data(session)
        changed = data_json != opened.data_json
        issued_at, expires_at = self._lifetime_of(session, opened, now)
        if not (
            changed
            or session.was_reset
            or expires_at != opened.expires_at
            or not opened.sealed_with_current_key
            or (accessed and not session.passive and self.sealer.lifetime.renewal_due(opened.last_active, now))
        ):
            return None
        if not dict.__len__(session):
            return self.cookie.deletion()
        if changed:
            session.check_all()  # nested writes never went through __setitem__
        # Only a request that used the session counts as activity: a passive or unread request
        # that reseals (a write, an older key or format) keeps the idle clock where it was.
        active = accessed and not session.passive
        return self._set_cookie(data_json, issued_at, expires_at, now, now if active else opened.last_active)

    def _lifetime_of(self, session: Session, opened: Opened | None, now: int) -> tuple[int, int | None]:
        """``(issued_at, expires_at)`` for the next cookie.

        A new or reset session starts now; otherwise the start is kept. ``set_max_age`` counts
        from the start, so calling it again never pushes the expiry past ``issued_at + seconds``.
        """
        if opened is None or session.was_reset:
            issued_at, expires_at = now, self.sealer.lifetime.expiry_for(now)
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
        return not session.modified and not any(isinstance(v, dict | list) for v in dict.values(session))

    def _set_cookie(self, data_json: bytes, issued_at: int, expires_at: int | None, now: int, last_active: int) -> str:
        """The whole ``Set-Cookie`` value for the session sealed at ``now`` with ``last_active``."""
        value = self.sealer.seal_json(data_json, issued_at=issued_at, expires_at=expires_at, last_active=last_active)
        return self.cookie.set_cookie(value, self.sealer.lifetime.cookie_max_age(expires_at, now, last_active))


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
