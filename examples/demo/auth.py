"""The dependencies the demo's routes use: the application's ``SessionAuth``, the user, settings, accounts.

``create_app`` builds one ``SessionAuth`` per application (:func:`make_auth`), because its cookie
name follows the settings (``__Host-session`` over HTTPS, ``session`` in plain-HTTP development)
and its clock is injectable. It runs in device mode: each login is a row of the device table, so a
user can list their devices and end one, and logout ends this device on the server.
:data:`CurrentUser` and :data:`OptionalUser` run that instance's dependencies: one SQL statement
that loads the user and checks the revocation token and the device row. With a read replica
(``DEMO_READ_DATABASE_URL``), that statement runs on the replica, and a miss there is confirmed on
the primary before the session is refused. :data:`PrimaryUser` and :data:`OptionalPrimaryUser`
check on the primary only: the account and device routes use them, since they change the user (and
must see a revocation at once, not once the replica has replayed it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from weakref import WeakKeyDictionary

from fastapi import Depends, Request

from sealed_sessions import AuthEvents, KeyRing
from sealed_sessions.fastapi import RouteUserDependency, SessionAuth

from .accounts import Accounts
from .db import Db, ReadDb, get_db, get_read_db
from .models import Device, User
from .settings import Settings

__all__ = [
    "FRESH_LOGIN",
    "SEEN_INTERVAL",
    "AppAccounts",
    "AppSettings",
    "Auth",
    "CurrentUser",
    "FreshUser",
    "OptionalPrimaryUser",
    "OptionalUser",
    "PrimaryUser",
    "VerifiedUser",
    "client_address",
    "get_auth",
    "make_auth",
]

SEEN_INTERVAL = 15 * 60
"""A device's "last seen" time is written at most this often (seconds): one UPDATE per device per interval."""


def make_auth(
    settings: Settings,
    clock: Callable[[], float],
    *,
    max_age: int,
    keys: KeyRing,
    context: str,
    events: AuthEvents | None = None,
) -> SessionAuth[User]:
    """The application's ``SessionAuth`` in device mode: a device lives ``max_age`` seconds, as long as the
    session's absolute lifetime. Its 401 and OpenAPI label name the cookie the middleware sets. ``keys``
    and ``context`` are the middleware's: they seal the password-reset and verification links and the
    bearer tokens of API clients (``POST /api/token``). ``events`` is the hub the middleware reports to."""
    return SessionAuth(
        User,
        get_db,
        session_cookie=settings.cookie_name,
        clock=clock,
        read_db=get_read_db if settings.read_database_url else None,
        devices=Device,
        device_max_age=max_age,
        seen_interval=SEEN_INTERVAL,
        secret_key=keys,
        context=context,
        bearer=True,
        bearer_max_age=max_age,
        events=events,
    )


def get_auth(request: Request) -> SessionAuth[User]:
    auth: SessionAuth[User] = request.app.state.auth
    return auth


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


Auth = Annotated[SessionAuth[User], Depends(get_auth)]
AppSettings = Annotated[Settings, Depends(get_settings)]
AppAccounts = Annotated[Accounts, Depends(get_accounts)]


async def current_user(request: Request, auth: Auth, db: Db, read_db: ReadDb) -> User:
    """``auth.current_user`` of this application's ``SessionAuth``: checked on the replica if there is one."""
    return await auth.current_user(await auth.scheme(request), db, read_db)


def _cookie_session(request: Request, auth: SessionAuth[User]) -> Any:
    """The cookie's session only: the HTML pages are for browsers, and a page that checks freshness or
    confirms a login must look at the very session that authenticated (never a bearer token's)."""
    session = auth.scheme.session_of(request)
    session.get(auth.user_id_key)  # a read: the page depends on the cookie (Vary: Cookie)
    return session


async def optional_user(request: Request, auth: Auth, db: Db, read_db: ReadDb) -> User | None:
    """For the HTML pages: ``auth.optional_user`` on the cookie only, checked on the replica if there is one."""
    return await auth.optional_user(_cookie_session(request, auth), db, read_db)


async def primary_user(request: Request, auth: Auth, db: Db) -> User:
    """``auth.primary_user``: checked on the primary, and the user belongs to the request's ``Db``."""
    return await auth.primary_user(await auth.scheme(request), db)


async def optional_primary_user(request: Request, auth: Auth, db: Db) -> User | None:
    """For the HTML pages: ``auth.optional_user`` on the cookie only, checked on the primary."""
    return await auth.optional_user(_cookie_session(request, auth), db)


CurrentUser = Annotated[User, Depends(current_user)]
"""The logged-in user: 401 (and the cookie cleared) when revoked, 503 when the database is down."""
OptionalUser = Annotated[User | None, Depends(optional_user)]
"""The HTML pages' logged-in user (by the cookie only) or ``None``; 503 when the database is down."""
PrimaryUser = Annotated[User, Depends(primary_user)]
"""As :data:`CurrentUser`, checked on the primary: for routes that change the user or its devices."""
OptionalPrimaryUser = Annotated[User | None, Depends(optional_primary_user)]
"""As :data:`OptionalUser` (the cookie only), checked on the primary: for pages that change the user or its devices."""


FRESH_LOGIN = 10 * 60
"""Changing the password and deleting the account need a login (or a password re-check) this recent."""

_route_users: WeakKeyDictionary[SessionAuth[User], dict[str, RouteUserDependency[User]]] = WeakKeyDictionary()


def _route_user(auth: SessionAuth[User], kind: str) -> RouteUserDependency[User]:
    """This application's per-route dependency ``kind``, built once per ``SessionAuth``."""
    built = _route_users.setdefault(auth, {})
    if kind not in built:
        if kind == "fresh":  # the sealed login time is recent; checked on the primary (it writes)
            built[kind] = auth.user(fresh=FRESH_LOGIN, on_primary=True)
        else:  # a verified address, in the same WHERE as the session check
            built[kind] = auth.user(where=User.email_verified)
    return built[kind]


async def fresh_user(request: Request, auth: Auth, db: Db) -> User:
    """``auth.fresh_user(max_age=FRESH_LOGIN)``: a login older than that gets a 401 asking to re-authenticate."""
    return await _route_user(auth, "fresh")(await auth.scheme(request), db)


async def verified_user(request: Request, auth: Auth, db: Db, read_db: ReadDb) -> User:
    """``auth.user(where=User.email_verified)``: 403 when the address is not verified, in the same one statement."""
    return await _route_user(auth, "verified")(await auth.scheme(request), db, read_db)


FreshUser = Annotated[User, Depends(fresh_user)]
"""The logged-in user, logged in (or re-confirmed) within :data:`FRESH_LOGIN`: 401 with
``error="insufficient_user_authentication"`` otherwise (``POST /api/confirm`` re-stamps it)."""
VerifiedUser = Annotated[User, Depends(verified_user)]
"""The logged-in user whose e-mail address is verified: 403 otherwise (the session stays valid)."""


def client_address(request: Request) -> str | None:
    """The client's IP address, as uvicorn reports it (behind nginx: from ``X-Forwarded-For``)."""
    return request.client.host if request.client is not None else None
