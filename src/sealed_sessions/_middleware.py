"""The pure ASGI middleware: cookie -> keys -> open -> ``scope["session"]`` -> app -> seal -> Set-Cookie.

A drop-in for ``starlette.middleware.sessions.SessionMiddleware``: same parameter names and
meanings, same ``scope["session"]``, two stricter defaults (``https_only=True``, no weak keys).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._chunks import Chunks
from ._cookie import CookieOptions, default_name
from ._errors import InvalidCookie, Reason
from ._events import AuthEvents
from ._headers import header_list, keep_out_of_shared_caches, vary_on_cookie
from ._key_usage import KeyUsage
from ._keys import KeyInput
from ._legacy import LegacyReaders
from ._lifetime import expiry
from ._migration import LegacyCookie
from ._payload import Opened, dump_data, plain_values_only
from ._rejections import RejectionLog
from ._schema import SessionSchema, fit
from ._sealer import DEFAULT_MAX_AGE, Sealer
from ._session import Session

__all__ = ["MAX_MAC_CHECKS", "SessionMiddleware"]

MAX_MAC_CHECKS = 4
"""MACs checked per request at most, however many values of our cookie arrive (bounded CPU)."""
_REFUSED_BEFORE_THE_MAC = frozenset(
    {Reason.TOO_LARGE, Reason.MALFORMED, Reason.UNKNOWN_VERSION, Reason.UNKNOWN_KEY, Reason.MISSING_CHUNK}
)


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

    Beyond Starlette, all off by default: ``max_chunks`` (a session spans cookies), ``compress``
    (mind the length leak), ``legacy`` (migrate Starlette or node-client-sessions cookies once),
    ``schema`` (check the data of every cookie that opens, :mod:`sealed_sessions.typed`). Refusals
    and cookies opened with an older key are :attr:`events` (share one hub with ``SessionAuth``).

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
    events: AuthEvents
    """Where ``refusal`` and ``old_key`` events go (``events=``, or a hub of its own)."""
    key_usage: KeyUsage
    """Cookies opened per key id since start: when an older key can be dropped."""
    chunks: Chunks
    """How a session is split across cookies (one cookie unless ``max_chunks`` is raised)."""
    legacy: LegacyReaders
    """The legacy cookies read when ours is absent (none unless ``legacy`` is given)."""
    schema: SessionSchema | None
    """Checks the data of every cookie that opens, or ``None``."""

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
        max_chunks: int = 1,
        compress: bool = False,
        legacy: LegacyCookie | Sequence[LegacyCookie] = (),
        schema: SessionSchema | None = None,
        events: AuthEvents | None = None,
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
        self.chunks = Chunks(self.cookie, max_chunks)
        self.sealer = Sealer(
            secret_key,
            session_cookie,
            max_age=max_age,
            idle_timeout=idle_timeout,
            context=context,
            max_length=self.chunks.max_length,
            compress=compress,
        )
        self.scope_key = scope_key
        self.clock = clock
        self.events = AuthEvents() if events is None else events
        self.rejections = RejectionLog(session_cookie, clock, listener=self.events.emit)
        self.key_usage = self.events.key_usage = KeyUsage(self.sealer, self.events, clock)
        self.legacy = LegacyReaders(legacy, self.cookie, self.sealer.lifetime, clock)
        self.schema = schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        now = int(self.clock())
        opened = self._open(scope, now)
        migrated_from = None
        if opened is None and self.legacy:
            opened, migrated_from = self.legacy.open(scope["headers"], now)
        rewrite = migrated_from is not None
        if opened is not None and self.schema is not None:
            opened, rewrite = fit(self.schema, opened, rewrite, self.rejections)
        session = Session(opened=opened)
        session.modified = rewrite  # migrated data must be sealed anew, whatever the app does
        scope[self.scope_key] = session
        if scope["type"] == "websocket":  # read-only: a handshake cannot set cookies portably
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                if session.finishers:
                    session.run_finishers()
                current = scope.get(self.scope_key, session)
                if current is not session:
                    session.adopt(current)
                self._finish(message, session, now, scope["headers"], migrated_from)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _open(self, scope: Scope, now: int) -> Opened | None:
        """The valid session in the request's cookie, if any; bad ones are logged and dropped.

        Several values of our name (one planted for a narrower path or a parent domain) are tried
        in order and the first that opens is used, so planted garbage cannot lock a user out. Two
        *different* values that both open are ambiguous (a planted session would swap accounts):
        neither is used. At most ``MAX_MAC_CHECKS`` MACs are checked; refusals before the MAC
        (malformed, unknown version or key, a missing part) cost next to nothing.
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
                if self.chunks.max_chunks > 1:
                    value = self.chunks.join(value, scope["headers"])
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
        if found is not None:
            self.key_usage.opened(found, now)
        return found

    def _finish(
        self,
        message: Message,
        session: Session,
        now: int,
        request_headers: list[tuple[bytes, bytes]],
        migrated_from: LegacyCookie | None,
    ) -> None:
        """Add ``Vary`` and, when needed, ``Set-Cookie`` to a response start message."""
        accessed = session.accessed  # before our own look at the session below
        if message["status"] >= 500:  # a failing app must not reseal or delete anything
            cookies = None
        elif session.opened is None:
            cookies = self._new_cookie(session, now)
        else:
            cookies = self._next_cookie(session, session.opened, now, accessed)
        if not (accessed or cookies):
            return  # the common read-nothing case: leave the message alone
        headers = header_list(message)
        if accessed:
            vary_on_cookie(headers)
        if cookies:
            if self.chunks.max_chunks > 1:
                cookies += self.chunks.stale(request_headers, len(cookies) if dict.__len__(session) else 0)
            if migrated_from is not None:
                cookies += self.legacy.deletion(migrated_from)
            headers.extend((b"set-cookie", cookie.encode("latin-1")) for cookie in cookies)
            keep_out_of_shared_caches(headers)

    def _new_cookie(self, session: Session, now: int) -> list[str] | None:
        """The cookie for a request that arrived without a valid one: only if the app stored data."""
        if not dict.__len__(session):
            return None
        data_json = dump_data(session)
        session.check_all()  # json.dumps would quietly turn a nested tuple into a list
        issued_at, expires_at = self._lifetime_of(session, None, now)
        return self._set_cookie(data_json, issued_at, expires_at, now, now)

    def _next_cookie(self, session: Session, opened: Opened, now: int, accessed: bool) -> list[str] | None:
        """The cookie for a request that arrived with a valid one, or ``None`` to keep it as it is.

        A new cookie is needed when the data changed, the session was reset, its expiry changed
        (``set_max_age``), the cookie was sealed with an older key or format, or idle renewal is
        due: the request used the session (``accessed``), was not marked passive, and a quarter of
        the idle window has passed. An emptied session gets a deletion cookie instead.
        """
        if session.modified or not plain_values_only(session):
            data_json = dump_data(session)
            changed = data_json != opened.data_json
        else:  # plain values change only through the dict API, which marks the session modified
            data_json, changed = opened.data_json, False
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
            return [self.cookie.deletion()]
        if changed:
            session.check_all()  # nested writes never went through __setitem__
        # Only a request that used the session counts as activity: a passive or unread request
        # that reseals (a write, an older key or format) keeps the idle clock where it was.
        active = accessed and not session.passive
        return self._set_cookie(data_json, issued_at, expires_at, now, now if active else opened.last_active)

    def _lifetime_of(self, session: Session, opened: Opened | None, now: int) -> tuple[int, int | None]:
        """``(issued_at, expires_at)`` for the next cookie: a new or reset session starts now, others
        keep their start; ``set_max_age`` counts from the start, so it never extends past it."""
        if opened is None or session.was_reset:
            issued_at, expires_at = now, self.sealer.lifetime.expiry_for(now)
        else:
            issued_at, expires_at = opened.issued_at, opened.expires_at
        if session.has_max_age_override:
            expires_at = expiry(issued_at, session.max_age_override)
        return issued_at, expires_at

    def _set_cookie(
        self, data_json: bytes, issued_at: int, expires_at: int | None, now: int, last_active: int
    ) -> list[str]:
        """The ``Set-Cookie`` values for the session sealed at ``now`` with ``last_active`` (one per part)."""
        value = self.sealer.seal_json(data_json, issued_at=issued_at, expires_at=expires_at, last_active=last_active)
        return self.chunks.set_cookies(value, self.sealer.lifetime.cookie_max_age(expires_at, now, last_active))
