"""Per-device sessions, the part of :class:`~sealed_sessions.fastapi.SessionAuth` that manages devices:
log one in and out, list a user's devices, end one, purge expired ones.

:class:`DeviceMode` is a base class of ``SessionAuth``; it uses the attributes ``SessionAuth``
sets (annotated below). The SQL is in :mod:`._device_store`; the check that runs on every
request, with the device joined into its one ``SELECT``, is in :mod:`._revocation`.

Each operation commits its own work and turns a database failure into a logged
:class:`~sealed_sessions.DatabaseUnavailable`; register
:meth:`DeviceMode.database_unavailable_response` as its handler to answer a 503. Once its work is
done, each reports it on ``events`` (see :mod:`._events`): login, logout, a device ended, a purge.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, Generic

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from ._auth_scheme import SessionCookie
from ._device_model import DeviceInfo, DeviceSessionMixin, summarize_user_agent
from ._device_store import (
    DEVICE_ID_KEY,
    DEVICE_SECRET_KEY,
    SEEN_INTERVAL,
    SEEN_KEY,
    DeviceProof,
    DeviceStore,
    device_proof,
)
from ._errors import ConfigurationError
from ._events import AuthEvent, AuthEvents, EventKind
from ._lifetime import check_seconds
from ._revocation import RevocationCheck, UserT
from ._sealer import DEFAULT_MAX_AGE
from ._unit_of_work import guarded
from .sqlalchemy import _identity

__all__ = ["DEFAULT_MAX_DEVICES", "DeviceMode", "device_store", "reset_session"]

DEFAULT_MAX_DEVICES = 20
"""Devices per user by default; logging in on one more ends the oldest."""


class DeviceMode(Generic[UserT]):
    """The device-mode methods of ``SessionAuth``; each is a :class:`ConfigurationError` in user-token mode."""

    scheme: SessionCookie
    check: RevocationCheck[UserT]
    clock: Callable[[], float]
    retry_after: int
    device_store: DeviceStore[Any] | None
    """The device table, in device mode; ``None`` in user-token mode."""
    record_ip: bool
    """Device mode: store the client's address at login (off by default: privacy)."""
    events: AuthEvents

    def session_data(self, user: UserT) -> dict[str, Any]:  # pragma: no cover - SessionAuth defines it
        raise NotImplementedError

    async def login_device(
        self,
        db: AsyncSession,
        request: HTTPConnection,
        user: UserT,
        *,
        keep: Iterable[str] | str = (),
        max_age: int | None = None,
    ) -> str:
        """Device mode: ``login``, plus one ``INSERT`` of this device's row (committed); its id.

        The session holds the user id, token, device id and device secret; the table only the
        secret's hash. A session that already had a device (logging in again, or as another
        user) ends it first. Beyond ``max_devices``, the user's oldest devices are ended.
        ``max_age`` overrides ``device_max_age`` for this device ("remember me": pass the same
        seconds as ``session.set_max_age``). Raises
        :class:`DatabaseUnavailable` (session untouched) if the database fails.
        """
        store = self._device_mode("login_device")
        check_seconds("max_age", max_age, allow_none=True, positive=True)
        data = self.session_data(user)
        now = int(self.clock())
        address = _address(request) if self.record_ip else None
        user_agent = summarize_user_agent(request.headers.get("user-agent"))

        session = self.scheme.session_of(request)
        previous = device_proof(session)
        previous_uid = self.check.parse_uid(session.get(self.check.user_id_key))
        replaces = None if previous is None or previous_uid is None else (previous_uid, previous.id)

        async def insert() -> DeviceProof:
            proof = await store.login(
                db, _identity(user), now, user_agent=user_agent, ip_address=address, replaces=replaces, max_age=max_age
            )
            await db.commit()
            return proof

        proof = await guarded(insert(), "device login")
        reset_session(session, keep)
        session.update(data)
        session.update({DEVICE_ID_KEY: proof.id, DEVICE_SECRET_KEY: proof.secret, SEEN_KEY: now})
        self.events.emit(AuthEvent(EventKind.LOGIN, now, user_id=_user_id(user), device_id=proof.id))
        return proof.id

    async def logout_device(self, db: AsyncSession, request: HTTPConnection) -> bool:
        """Device mode: delete this device's row (one ``DELETE``, committed) and empty the session.

        Any copy of the cookie, and any cookie a racing request reseals, is refused from then on.
        Whether a row was deleted (``False``: the session named no device, or it was gone). Raises
        :class:`DatabaseUnavailable` (session kept, so the user can try again) if the database fails.
        """
        store = self._device_mode("logout_device")
        session = self.scheme.session_of(request)
        uid = self.check.parse_uid(session.get(self.check.user_id_key))
        proof = device_proof(session)
        ended = False
        if uid is not None and proof is not None:
            ended = await guarded(_end_and_commit(store, db, uid, proof.id), "device logout")
        session.clear()
        if uid is not None:
            device_id = None if proof is None else proof.id
            event = AuthEvent(EventKind.LOGOUT, self.clock(), user_id=str(uid), ended=int(ended), device_id=device_id)
            self.events.emit(event)
        return ended

    def current_device_id(self, request: HTTPConnection) -> str | None:
        """Device mode: the id of the device ``request``'s session belongs to, or ``None``.

        For routes that end a device by id: ending the caller's own device is a logout, which
        :meth:`logout_device` does at once (this device's cookie cleared too).
        """
        self._device_mode("current_device_id")
        proof = device_proof(self.scheme.session_of(request))
        return None if proof is None else proof.id

    async def list_devices(
        self, db: AsyncSession, user: UserT, request: HTTPConnection | None = None
    ) -> list[DeviceInfo]:
        """Device mode: ``user``'s live devices, newest first (one ``SELECT``); ``request``'s is ``current``."""
        store = self._device_mode("list_devices")
        proof = None if request is None else device_proof(self.scheme.session_of(request))
        now = int(self.clock())
        return await guarded(store.list(db, _identity(user), now, None if proof is None else proof.id), "device list")

    async def end_device(self, db: AsyncSession, user: UserT, device_id: str) -> bool:
        """Device mode: end one of ``user``'s devices (one ``DELETE`` scoped to ``user``, committed).

        ``False`` (answer 404) when ``device_id`` is not one of ``user``'s: a user can never end
        another user's device.
        """
        store = self._device_mode("end_device")
        ended = await guarded(_end_and_commit(store, db, _identity(user), device_id), "ending a device")
        if ended:
            uid = _user_id(user)
            event = AuthEvent(
                EventKind.REVOKE, self.clock(), user_id=uid, ended=1, reason="device_ended", device_id=device_id
            )
            self.events.emit(event)
        return ended

    async def purge_devices(self, db: AsyncSession) -> int:
        """Device mode: delete every expired device row, of every user (one ``DELETE``, committed).

        Expired rows never match the check; this only bounds the table. Schedule it (hourly, say).
        """
        store = self._device_mode("purge_devices")

        async def purge() -> int:
            count = await store.purge(db, int(self.clock()))
            await db.commit()
            return count

        count = await guarded(purge(), "device purge")
        if count:
            self.events.emit(AuthEvent(EventKind.REVOKE, self.clock(), ended=count, reason="expired"))
        return count

    def database_unavailable_response(self, request: Request, exc: Exception) -> Response:
        """An exception handler for :class:`DatabaseUnavailable`: the 503 the dependencies answer.

        ``app.add_exception_handler(DatabaseUnavailable, auth.database_unavailable_response)``, so
        a failed :meth:`login_device`, :meth:`logout_device` or device listing is a 503 with
        ``Retry-After`` and a generic body, not a 500.
        """
        error = self.scheme.make_unavailable_error(self.retry_after)
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

    def _device_mode(self, name: str) -> DeviceStore[Any]:
        if self.device_store is None:
            raise ConfigurationError(f"auth.{name}() needs device mode: SessionAuth(..., devices=YourDeviceModel)")
        return self.device_store

    def _user_token_mode(self, name: str, instead: str) -> None:
        if self.device_store is not None:
            raise ConfigurationError(f"auth.{name}() would skip the device table in device mode: use {instead}")


def device_store(
    devices: type[DeviceSessionMixin] | None,
    user_model: type[Any],
    *,
    device_max_age: int,
    max_devices: int | None,
    device_idle_timeout: int | None,
    seen_interval: int,
    record_ip: bool,
) -> DeviceStore[Any] | None:
    """The device table ``SessionAuth(devices=...)`` asks for, its options checked; ``None`` without one.

    - ``device_max_age``: seconds a device lives from login (default 14 days: match the
      middleware's ``max_age``; ``login_device(max_age=)`` for one device).
    - ``max_devices``: per user (default 20); logging in beyond it ends the oldest. ``None``: no cap.
    - ``device_idle_timeout``: match the middleware's ``idle_timeout``: a device unseen that long
      (plus ``seen_interval``) is dead, off the list and purged. ``None``: off.
    - ``seen_interval``: seconds between two ``last_seen_at`` writes for a device (default 15 min).
    - ``record_ip``: store the client's address at login (off by default: privacy).

    Device options given without ``devices`` are a :class:`ConfigurationError`: they would be
    silently ignored (no idle expiry, no cap).
    """
    if devices is None:
        given = [
            name
            for name, value, default in (
                ("device_max_age", device_max_age, DEFAULT_MAX_AGE),
                ("max_devices", max_devices, DEFAULT_MAX_DEVICES),
                ("device_idle_timeout", device_idle_timeout, None),
                ("seen_interval", seen_interval, SEEN_INTERVAL),
                ("record_ip", record_ip, False),
            )
            if value != default
        ]
        if given:
            raise ConfigurationError(f"{', '.join(given)} only apply in device mode: pass devices=YourDeviceModel")
        return None
    check_seconds("device_max_age", device_max_age, allow_none=False, positive=True)
    check_seconds("seen_interval", seen_interval, allow_none=False, positive=True)
    check_seconds("max_devices", max_devices, allow_none=True, positive=True)
    check_seconds("device_idle_timeout", device_idle_timeout, allow_none=True, positive=True)
    return DeviceStore(
        devices,
        user_model,
        max_age=device_max_age,
        max_devices=max_devices,
        idle_window=None if device_idle_timeout is None else device_idle_timeout + seen_interval,
    )


def _address(request: HTTPConnection) -> str | None:
    """The client's address in canonical form, or ``None`` if it is not an IP address.

    Behind a proxy the address comes from a header the client may write: only a real address is
    stored (and shown on a devices page).
    """
    try:
        return None if request.client is None else str(ipaddress.ip_address(request.client.host))
    except ValueError:
        return None


def _user_id(user: Any) -> str:
    """A user's primary key as events carry it."""
    return str(_identity(user))


async def _end_and_commit(store: DeviceStore[Any], db: AsyncSession, user_id: Any, device_id: str) -> bool:
    ended = await store.end(db, user_id, device_id)
    await db.commit()
    return ended


def reset_session(session: MutableMapping[str, Any], keep: Iterable[str] | str) -> None:
    """Empty ``session`` but the ``keep`` keys (a str is one key), starting a new lifetime where it can."""
    reset = getattr(session, "reset", None)
    if reset is not None:
        reset(keep=keep)
        return
    names = (keep,) if isinstance(keep, str) else tuple(keep)
    kept = {k: session[k] for k in names if k in session}  # another SessionMiddleware: at least empty it
    session.clear()
    session.update(kept)
