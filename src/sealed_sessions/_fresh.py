"""Fresh login ("sudo mode") and per-route conditions: the part of ``SessionAuth`` that asks more of a session.

::

    Fresh = Annotated[User, Depends(auth.fresh_user(max_age=300))]        # logged in < 5 min ago
    Admin = Annotated[User, Depends(auth.user(where=User.role == "admin"))]

Both are :class:`~._dependencies.RouteUserDependency` objects: the same one statement as
``current_user``, and the same 401 (session emptied) for a dead session. Then:

- **Per-route conditions** (``where=``) are a boolean column of that statement (see
  :mod:`._conditions`): false or ``NULL`` answers 403 ``{"detail": "Forbidden"}``; the session
  is valid and stays as it is.
- **Freshness** is pure Python on the login time sealed in the session (``"_auth_at"``, set by
  ``login``, ``login_device`` and :meth:`FreshLogin.confirm`), tested after the statement: a
  login older than ``max_age`` seconds answers 401 ``{"detail": "Recent login required"}`` with
  ``WWW-Authenticate: Cookie name="...", error="insufficient_user_authentication", max_age="300"``
  (the error code of RFC 9470, OAuth step-up authentication), which a client tells from a dead
  session's 401 and answers by asking for the password again. The session stays as it is.

Guaranteed: the login time is sealed, so a client cannot make its login look fresh; a session
without a usable login time (older sessions, a non-number) is never fresh. Not guaranteed: a login
time in the future (only a server whose clock ran ahead can seal one) counts as fresh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, cast

from fastapi import HTTPException
from sqlalchemy import inspect
from starlette.requests import HTTPConnection
from starlette.status import HTTP_401_UNAUTHORIZED, HTTP_403_FORBIDDEN

from ._auth_scheme import SessionCookie
from ._conditions import Where
from ._dependencies import RouteUserDependency
from ._errors import UnusableUser
from ._lifetime import check_seconds
from ._revocation import RevocationCheck, UserT

if TYPE_CHECKING:
    from .fastapi import SessionAuth

__all__ = ["STALE_LOGIN_ERROR", "FreshLogin"]

STALE_LOGIN_ERROR = "insufficient_user_authentication"
"""The ``error`` of a stale login's ``WWW-Authenticate`` challenge (RFC 9470, section 3)."""


class FreshLogin(Generic[UserT]):
    """The fresh-login and per-route-condition dependencies of ``SessionAuth``, and :meth:`confirm`."""

    scheme: SessionCookie
    check: RevocationCheck[UserT]
    clock: Callable[[], float]
    login_time_key: str

    def fresh_user(self, max_age: int) -> RouteUserDependency[UserT]:
        """A dependency: the logged-in user, if it logged in (or :meth:`confirm`-ed) at most ``max_age`` seconds ago.

        Build it once, at import time: ``Fresh = Annotated[User, Depends(auth.fresh_user(max_age=300))]``.
        A stale login gets :meth:`make_stale_login_error`; see :class:`RouteUserDependency`.
        """
        check_seconds("max_age", max_age, allow_none=False, positive=True)
        return self.user(fresh=max_age)

    def user(
        self, *, where: Where | None = None, fresh: int | None = None, on_primary: bool = False
    ) -> RouteUserDependency[UserT]:
        """A dependency: the logged-in user, if ``where`` holds for it (403 if not) and, with ``fresh``,
        it logged in at most ``fresh`` seconds ago.

        ``where`` is a boolean SQL expression (a column, a hybrid property, ``User.role ==
        "admin"``), a callable ``(request) -> expression`` for values taken from the request (a
        tenant id in the path: declare it ``{tenant_id:int}`` so it arrives converted), or a
        sequence of these, all of which must hold. ``NULL`` counts as false. ``on_primary``: check
        on the primary only, as :attr:`primary_user` (with ``read_db``, a replica's false answer is
        confirmed on the primary anyway; a revoked role is seen once the replica replays it).
        """
        auth = cast("SessionAuth[UserT]", self)
        return RouteUserDependency(auth, where=where, fresh=fresh, on_primary=on_primary)

    def confirm(self, request: HTTPConnection, user: UserT) -> None:
        """Make ``request``'s login fresh again: stamp the session's login time with now.

        Call it after the application re-checked the password (or a second factor). ``request``'s
        session must belong to ``user`` and hold its current token, else :class:`UnusableUser`.
        """
        session = self.scheme.session_of(request)
        state = inspect(user)
        pk, token = state.identity, state.dict.get("session_token")
        if pk is None or self.check.parse_uid(session.get(self.check.user_id_key)) != pk[0]:
            raise UnusableUser("confirm() needs a request whose session belongs to the user being confirmed")
        if not token or session.get(self.check.token_key) != token:
            raise UnusableUser("confirm() needs a request whose session holds the user's current token")
        session[self.login_time_key] = int(self.clock())

    def login_is_fresh(self, session: Mapping[str, Any], max_age: int) -> bool:
        """Whether ``session``'s sealed login time is at most ``max_age`` seconds old (never, without one)."""
        at = session.get(self.login_time_key)
        if not isinstance(at, int | float) or isinstance(at, bool):
            return False
        return self.clock() - at <= max_age

    def make_stale_login_error(self, max_age: int) -> HTTPException:
        """The 401 for a login older than ``max_age``: the session is valid, the client should log in again."""
        challenge = (
            f'Cookie name="{self.scheme.model.name}", error="{STALE_LOGIN_ERROR}", '
            f'error_description="A more recent login is required", max_age="{max_age}"'
        )
        return HTTPException(HTTP_401_UNAUTHORIZED, "Recent login required", headers={"WWW-Authenticate": challenge})

    def make_forbidden_error(self) -> HTTPException:
        """The 403 for a route's condition that does not hold: the session is valid and stays."""
        return HTTPException(HTTP_403_FORBIDDEN, "Forbidden")
