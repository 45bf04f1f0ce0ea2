"""The pure ASGI middleware: cookie -> keys -> open -> ``scope["session"]`` -> app -> seal -> Set-Cookie.

A drop-in for ``starlette.middleware.sessions.SessionMiddleware``: same parameter names and
meanings, same ``scope["session"]``, two stricter defaults (``https_only=True``, no weak keys).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._cookie import CookieOptions
from ._envelope import Envelope
from ._errors import InvalidCookie
from ._keys import KeyInput, KeyRing
from ._lifetime import Lifetime
from ._payload import Payload, decode, dump_data, encode
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
    reason code, never an exception. ``Set-Cookie`` is sent only when the session changed, was
    emptied, was opened with an older key, or needs idle renewal; never on a 5xx response.

    Not guaranteed: that a cookie cannot be replayed before it expires (use the revocation
    dependency for that), or that concurrent requests' writes merge: the last response wins.
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: KeyInput,
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,  # 14 days, in seconds
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
        self.keys = KeyRing(secret_key)
        self.cookie = CookieOptions(
            session_cookie,
            path=path,
            same_site=same_site,
            secure=https_only,
            domain=domain,
            partitioned=partitioned,
        )
        self.lifetime = Lifetime(max_age, idle_timeout)
        self.envelope = Envelope(self.keys, session_cookie)
        self.scope_key = scope_key
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        now = int(self.clock())
        payload, key_is_current = self._open(scope, now)
        session = (
            Session()
            if payload is None
            else Session(payload.data, issued_at=payload.issued_at, expires_at=payload.expires_at)
        )
        scope[self.scope_key] = session
        if scope["type"] == "websocket":  # read-only: a handshake cannot set cookies portably
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._finish(message, session, payload, key_is_current, now)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _open(self, scope: Scope, now: int) -> tuple[Payload | None, bool]:
        """The valid payload in the request's cookie, if any, and whether it used the current key."""
        value = self.cookie.find(scope["headers"])
        if value is None:
            return None, True
        try:
            plaintext, key_is_current = self.envelope.open(value)
            payload = decode(plaintext)
            reason = self.lifetime.rejection(payload, now)
            if reason is not None:
                raise InvalidCookie(reason)
        except InvalidCookie as exc:
            logger.info(
                "session cookie %r rejected: %s",
                self.cookie.name,
                exc.reason.value,
                extra={"cookie_name": self.cookie.name, "reason": exc.reason.value},
            )
            return None, True
        return payload, key_is_current

    def _finish(
        self, message: Message, session: Session, payload: Payload | None, key_is_current: bool, now: int
    ) -> None:
        """Add ``Vary`` and, when needed, ``Set-Cookie`` to a response start message."""
        headers: MutableHeaders | None = None
        if session.accessed:
            headers = MutableHeaders(scope=message)
            headers.add_vary_header("Cookie")
        if message["status"] >= 500:  # a failing app must not reseal or delete anything
            return
        set_cookie = self._set_cookie(session, payload, key_is_current, now)
        if set_cookie is not None:
            headers = headers or MutableHeaders(scope=message)
            headers.append("set-cookie", set_cookie)
            _keep_out_of_shared_caches(headers)

    def _set_cookie(self, session: Session, payload: Payload | None, key_is_current: bool, now: int) -> str | None:
        """The ``Set-Cookie`` value this response needs, or ``None`` for no header at all."""
        if not (session.accessed or session.renewed):
            # Untouched: only key rotation or idle renewal can call for a new cookie.
            if payload is None or (key_is_current and not self.lifetime.renewal_due(payload.last_active, now)):
                return None
            data_json, changed = payload.data_json, False
        else:
            data_json = dump_data(session)
            changed = payload is None or data_json != payload.data_json
            if not session:
                return self.cookie.deletion() if payload is not None else None
            if not (
                changed
                or session.renewed
                or session.has_max_age_override
                or not key_is_current
                or self.lifetime.renewal_due(payload.last_active, now)  # type: ignore[union-attr]
            ):
                return None
            if changed:
                session.check_all()  # nested writes never went through __setitem__

        if payload is None or session.renewed:
            issued_at, expires_at = now, self.lifetime.expires_at(now, self.lifetime.max_age)
        else:
            issued_at, expires_at = payload.issued_at, payload.expires_at
        if session.has_max_age_override:
            expires_at = self.lifetime.expires_at(issued_at, session.max_age_override)
        value = self.envelope.seal(encode(data_json, issued_at, expires_at, now))
        return self.cookie.set_cookie(value, self.lifetime.cookie_max_age(expires_at, now))


def _keep_out_of_shared_caches(headers: MutableHeaders) -> None:
    """A response that sets a session cookie must never be stored by a shared cache."""
    current = headers.get("cache-control")
    if current is None:
        headers["cache-control"] = "private"
        return
    directives = [d.strip() for d in current.split(",") if d.strip()]
    if any(d.lower() in ("private", "no-store") for d in directives):
        return
    kept = [d for d in directives if d.lower().split("=")[0] not in _SHARED_CACHE_DIRECTIVES]
    headers["cache-control"] = ", ".join([*kept, "private"])
