"""Bearer clients (mobile apps, CLIs): the session sealed for ``Authorization: Bearer``, handed out in a body.

::

    token = auth.issue_bearer(user)                              # user-token mode: no database write
    token = await auth.login_device_bearer(db, request, user)    # device mode: one INSERT (committed)
    GET /me  Authorization: Bearer <token>                       # the same one-statement check as a cookie
    await auth.logout_bearer(db, request, user)                  # ends the device; in user-token mode, revokes

:class:`BearerLogin` is a base class of ``SessionAuth``; it uses the attributes ``SessionAuth``
sets (annotated below). Reading a token is the scheme's job (:class:`~._auth_scheme.SessionBearer`,
tried by :class:`~._auth_scheme.SessionCookie` before the cookie).

What you get: a token holds what a login cookie holds (user id, revocation token, login time; in
device mode the device id and secret), sealed under ``secret_key`` for the bearer transport only:
a cookie value is refused as a token and a token as a cookie (different subkeys). Every request
with it runs the same single statement as a cookie's, so revoking the user (or ending the device)
refuses it at once. A request with a bearer header never reads the cookie, so a browser cannot be
made to send one on the user's behalf: bearer requests need no CSRF token.

What you do not get: a token cannot be renewed or changed (no ``Set-Cookie``): what an endpoint
writes to a bearer request's session is lost, and it expires ``bearer_max_age`` seconds after
issue (14 days by default) however active it is; issue a new one at a new login. In user-token
mode a token cannot be ended alone: logging it out revokes every session of the user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from ._auth_scheme import DEFAULT_BEARER_MAX_AGE, SessionBearer, SessionCookie
from ._device_model import summarize_user_agent
from ._device_sessions import _address, _end_and_commit
from ._device_store import DEVICE_ID_KEY, DEVICE_SECRET_KEY, SEEN_KEY, DeviceProof, DeviceStore, device_proof
from ._errors import ConfigurationError, InvalidCookie
from ._keys import KeyRing
from ._lifetime import check_seconds
from ._revocation import RevocationCheck, UserT
from ._unit_of_work import guarded
from .sqlalchemy import _identity

__all__ = ["DEFAULT_BEARER_MAX_AGE", "BearerLogin", "check_bearer_options"]


def check_bearer_options(bearer: bool, keys: KeyRing | None) -> None:
    """Refuse ``SessionAuth(bearer=True)`` without ``secret_key`` (no key to open tokens), or a non-bool ``bearer``."""
    if not isinstance(bearer, bool):
        raise ConfigurationError(f"bearer must be True or False, got {bearer!r}")
    if bearer and keys is None:
        raise ConfigurationError(
            "bearer=True needs secret_key= to seal and open bearer tokens: pass the middleware's key "
            "(tokens get a subkey of their own, so they never open as cookies)"
        )


class BearerLogin(Generic[UserT]):
    """The bearer-token methods of ``SessionAuth``: log a client in with a token in the body, and out."""

    keys: KeyRing | None
    context: str
    bearer: bool
    scheme: SessionCookie
    check: RevocationCheck[UserT]
    clock: Callable[[], float]
    device_store: DeviceStore[Any] | None
    record_ip: bool
    bearer_max_age: int = DEFAULT_BEARER_MAX_AGE
    """Seconds a bearer token lives from issue (default 14 days, as a cookie); ``max_age=`` per token."""

    if TYPE_CHECKING:  # defined by SessionAuth, which lists this class last among its bases

        def session_data(self, user: UserT) -> dict[str, Any]:
            """What a login stores for ``user`` (``SessionAuth.session_data``)."""

        async def revoke(
            self, db: AsyncSession, user: UserT, *, keep: HTTPConnection | None = None, commit: bool = True
        ) -> None:
            """Rotate ``user``'s token (``SessionAuth.revoke``)."""

    def _init_bearer(self) -> None:
        """Check the bearer options and, with ``bearer=True``, have the scheme try bearer tokens first.

        For ``SessionAuth.__init__``, once ``keys``, ``context``, ``bearer``, ``clock`` and
        ``scheme`` are set, and before any route uses the dependencies.
        """
        check_bearer_options(self.bearer, self.keys)
        if self.bearer and self.keys is not None:
            self.scheme.accept_bearer(
                SessionBearer(self.keys, context=self.context, max_age=self.bearer_max_age, clock=self.clock)
            )

    def issue_bearer(self, user: UserT, *, max_age: int | None = None) -> str:
        """User-token mode: a bearer token for ``user``, to return in the login's response body.

        No cookie is touched and nothing is written: the token carries the user's current
        revocation token, so :meth:`revoke` ends it with every other session of the user. Valid
        for ``max_age`` seconds (default ``bearer_max_age``). In device mode, use
        :meth:`login_device_bearer` (a :class:`ConfigurationError` here).
        """
        bearer = self._bearer_scheme("issue_bearer")
        if self.device_store is not None:
            raise ConfigurationError(
                "auth.issue_bearer() would skip the device table in device mode: use "
                "await auth.login_device_bearer(db, request, user)"
            )
        return bearer.seal(self.session_data(user), max_age=max_age)

    async def login_device_bearer(
        self, db: AsyncSession, request: HTTPConnection, user: UserT, *, max_age: int | None = None
    ) -> str:
        """Device mode: a new device for ``user`` (one ``INSERT``, committed) and its bearer token.

        As ``login_device``, but the session goes into the returned token, not a cookie, and no
        earlier device is ended (the cookie is not read). The device row and the token expire
        together, ``max_age`` seconds from now (default ``bearer_max_age``). Beyond
        ``max_devices``, the user's oldest devices are ended. Raises
        :class:`DatabaseUnavailable` if the database fails.
        """
        bearer = self._bearer_scheme("login_device_bearer")
        store = self.device_store
        if store is None:
            raise ConfigurationError("auth.login_device_bearer() needs device mode: use auth.issue_bearer(user)")
        check_seconds("max_age", max_age, allow_none=True, positive=True)
        lifetime = bearer.max_age if max_age is None else max_age
        data = self.session_data(user)
        now = int(self.clock())
        address = _address(request) if self.record_ip else None
        user_agent = summarize_user_agent(request.headers.get("user-agent"))

        async def insert() -> DeviceProof:
            proof = await store.login(
                db, _identity(user), now, user_agent=user_agent, ip_address=address, max_age=lifetime
            )
            await db.commit()
            return proof

        proof = await guarded(insert(), "device login")
        data.update({DEVICE_ID_KEY: proof.id, DEVICE_SECRET_KEY: proof.secret, SEEN_KEY: now})
        return bearer.seal(data, max_age=lifetime)

    async def logout_bearer(self, db: AsyncSession, request: HTTPConnection, user: UserT) -> bool:
        """End the bearer token ``request`` carries, ``user`` being its user (from ``Depends(auth.current_user)``).

        Device mode: the token's device is ended (one ``DELETE`` scoped to ``user``, committed),
        the user's other devices and cookies live on. User-token mode: ``user`` is revoked (one
        ``UPDATE``, committed), which ends every session of the user, cookies included: a token
        cannot be told apart from them. Whether something was ended: ``False`` when ``request``
        carries no bearer token that opens (a cookie request: use ``logout`` or ``logout_device``).
        Raises :class:`DatabaseUnavailable` if the database fails.
        """
        bearer = self._bearer_scheme("logout_bearer")
        value = bearer.token_of(request)
        if not value:
            return False
        try:
            session = bearer.open(value)
        except InvalidCookie:
            return False
        if self.device_store is None:
            await self.revoke(db, user)
            return True
        proof = device_proof(session)
        if proof is None:
            return False
        return await guarded(_end_and_commit(self.device_store, db, _identity(user), proof.id), "device logout")

    def _bearer_scheme(self, name: str) -> SessionBearer:
        bearer = self.scheme.bearer
        if bearer is None:
            raise ConfigurationError(
                f"auth.{name}() needs bearer tokens: SessionAuth(..., bearer=True, secret_key=<the middleware's key>)"
            )
        return bearer
