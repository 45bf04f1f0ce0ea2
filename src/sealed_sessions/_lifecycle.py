"""Login, logout and revocation: the part of :class:`~sealed_sessions.fastapi.SessionAuth` that starts
and ends sessions in user-token mode, and revokes them in both modes.

:class:`SessionLifecycle` is the first base class of ``SessionAuth``; it uses the attributes
``SessionAuth`` sets (annotated below). Device mode's login and logout are in
:mod:`._device_sessions`; each operation here emits its lifecycle event (:mod:`._events`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, Generic

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from ._auth_scheme import SessionCookie
from ._device_sessions import reset_session
from ._device_store import DeviceStore, device_proof
from ._errors import UnusableUser
from ._events import AuthEvent, AuthEvents, EventKind
from ._revocation import RevocationCheck, UserT
from ._unit_of_work import guarded
from .sqlalchemy import _identity, rotate_session_token

__all__ = ["SessionLifecycle"]


class SessionLifecycle(Generic[UserT]):
    """``SessionAuth``'s ``session_data``, ``login``, ``logout`` and ``revoke``."""

    user_id_key: str
    token_key: str
    login_time_key: str
    scheme: SessionCookie
    check: RevocationCheck[UserT]
    clock: Callable[[], float]
    events: AuthEvents
    device_store: DeviceStore[Any] | None

    if TYPE_CHECKING:  # DeviceMode defines it; a stub here would come first in SessionAuth's MRO

        def _user_token_mode(self, name: str, instead: str) -> None: ...

    def session_data(self, user: UserT) -> dict[str, Any]:
        """What :meth:`login` stores for ``user``: for tests that seal a logged-in cookie directly."""
        token = inspect(user).dict.get("session_token")
        if not isinstance(token, str) or not token:
            raise UnusableUser(
                f"this {type(user).__name__}'s session_token is not loaded (expired by a commit?): "
                "use async_sessionmaker(..., expire_on_commit=False) or `await db.refresh(user)` first"
            )
        pk = _identity(user)
        if self.check.parse_uid(str(pk) if isinstance(pk, uuid.UUID) else pk) is None:
            raise UnusableUser(
                f"this {type(user).__name__}'s primary key cannot be carried in a session (control "
                "characters, or longer than 255 characters): the check would refuse every request"
            )
        return {
            self.user_id_key: str(pk) if isinstance(pk, uuid.UUID) else pk,
            self.token_key: token,
            self.login_time_key: int(self.clock()),
        }

    def login(self, request: HTTPConnection, user: UserT, *, keep: Iterable[str] | str = ()) -> None:
        """Start a new session for ``user``: drop everything but ``keep``, new lifetime, store id and token.

        The cookie that arrives after login shares nothing with the one before but the kept keys
        (session fixation cannot carry over). ``user`` must be flushed and its token loaded. In
        device mode, use :meth:`login_device` (a :class:`ConfigurationError` here).
        """
        self._user_token_mode("login", "await auth.login_device(db, request, user)")
        data = self.session_data(user)
        session = self.scheme.session_of(request)
        reset_session(session, keep)
        session.update(data)
        self.events.emit(AuthEvent(EventKind.LOGIN, self.clock(), user_id=str(data[self.user_id_key])))

    def logout(self, request: HTTPConnection) -> None:
        """Empty the session (the browser gets a deletion cookie).

        This does not revoke: a copy of the cookie taken before logout stays valid until it
        expires, and a request already in flight can send the session back. Log out with
        ``await auth.revoke(db, user)`` first, or use device mode (:meth:`logout_device`; this
        method is a :class:`ConfigurationError` there, so the database part cannot be forgotten).
        """
        self._user_token_mode("logout", "await auth.logout_device(db, request)")
        session = self.scheme.session_of(request)
        uid = self.check.parse_uid(session.get(self.user_id_key))
        session.clear()
        if uid is not None:
            self.events.emit(AuthEvent(EventKind.LOGOUT, self.clock(), user_id=str(uid)))

    async def _rotate(
        self, db: AsyncSession, user: UserT, session: MutableMapping[str, Any] | None, commit: bool
    ) -> tuple[str, int | None]:
        """The new token, and the device rows deleted (``None`` in user-token mode: every session)."""
        token = await rotate_session_token(db, user)
        ended = None
        if self.device_store is not None:  # the device list shows only live devices
            current = device_proof(session) if session is not None else None
            ended = await self.device_store.end_all(db, _identity(user), keep=current.id if current else None)
        if commit:
            await db.commit()
        return token, ended

    async def revoke(
        self, db: AsyncSession, user: UserT, *, keep: HTTPConnection | None = None, commit: bool = True
    ) -> None:
        """Rotate ``user``'s token (one ``UPDATE``): every session of that user ends at its next request.

        In device mode, the user's device rows are deleted too (one ``DELETE``), but ``keep``'s.

        With ``keep=request``, that request's session (which must belong to ``user``) receives
        the new token, so this device stays logged in ("log out all other devices", password
        change). The transaction is committed unless ``commit=False``, in which case sessions
        die when the caller commits; with ``keep``, the new token is stored in the session only
        after a successful commit, or at once with ``commit=False``. Other pending changes in
        ``db`` (a new password hash, say) commit in the same transaction. A database failure
        raises :class:`DatabaseUnavailable` (logged), as the dependencies' does. Emits a ``revoke``
        event (``ended``: the device rows deleted in device mode; ``None``: every session).
        """
        session = None
        if keep is not None:
            session = self.scheme.session_of(keep)
            state = inspect(user)
            pk, token = state.identity, state.dict.get("session_token")
            if pk is None or self.check.parse_uid(session.get(self.user_id_key)) != pk[0]:
                raise UnusableUser("keep= must be a request whose session belongs to the user being revoked")
            if session.get(self.token_key) != token:  # a stale, already revoked cookie must not be revived
                raise UnusableUser("keep= must be a request whose session holds the user's current token")
        token, ended = await guarded(self._rotate(db, user, session, commit), "revoke")
        if session is not None:
            session[self.token_key] = token
        cause = "revoke" if keep is None else "revoke_others"
        self.events.emit(
            AuthEvent(EventKind.REVOKE, self.clock(), user_id=str(_identity(user)), ended=ended, reason=cause)
        )
