"""The same actions as a JSON API under ``/api/``.

Every POST and DELETE must say ``Content-Type: application/json`` (else 415): a browser cannot
send that cross-site without a CORS preflight, which this app never grants, so the API needs no
CSRF token.
Errors use FastAPI's ``{"detail": ...}`` shape; a revoked or missing session gets 401 with
``WWW-Authenticate`` and a deletion cookie; a database outage gets 503 with ``Retry-After``.
Throttled logins get 429 and a busy password hasher 503, both with ``Retry-After``. Every
response under ``/api/`` carries ``Cache-Control: no-store`` (set in ``create_app``).

``POST /api/register`` answers 202 with the same body whether or not the address had an account,
and never logs in. Each login is a device: ``GET /api/devices`` lists the user's devices,
``DELETE /api/devices/{id}`` ends one of them (404 for an id that is not the user's), and
``POST /api/logout`` ends this device on the server, so no copy of its cookie works afterwards;
the user's other devices stay logged in.

``POST /api/forgot-password`` answers 202 with the same body for every address (and, in development
with ``DEMO_SHOW_LINKS``, the link a real site would e-mail, only when the address has an account);
``POST /api/reset-password`` with that link's token sets a new password once and ends every session.
``POST /api/verify-email/send`` makes a verification link for the logged-in user, and
``POST /api/verify-email`` redeems it. A dead link gets 400 with one message, whatever the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import Message
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from sealed_sessions import AuthEvents
from sealed_sessions.fastapi import DeviceInfo, SessionAuth

from .accounts import REGISTERED, AccountError
from .auth import AppAccounts, AppSettings, Auth, CurrentUser, FreshUser, PrimaryUser, VerifiedUser, client_address
from .db import Db
from .errors import TryLater
from .links import LINK_SENT, RESET, VERIFICATION_SENT, VERIFY, reset_password, send_link, verify_email
from .models import User
from .passwords import MAX_PASSWORD_LENGTH

__all__ = ["router"]


async def require_json(request: Request) -> None:
    """415 for a POST or DELETE that is not ``application/json``: the API's defence against cross-site requests."""
    if request.method not in ("POST", "DELETE"):
        return
    message = Message()
    message["content-type"] = request.headers.get("content-type", "")
    if message.get_content_type() != "application/json":
        raise HTTPException(status_code=415, detail="Send Content-Type: application/json")


router = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(require_json)])


class Credentials(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class Registered(BaseModel):
    message: str


class ForgotPassword(BaseModel):
    email: str = Field(max_length=254)


class LinkSent(BaseModel):
    message: str
    link: str | None = None
    """Development only (``DEMO_SHOW_LINKS``): the path a real site would e-mail."""


class PasswordReset(BaseModel):
    token: str = Field(max_length=1024)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class EmailVerification(BaseModel):
    token: str = Field(max_length=1024)


class UserOut(BaseModel):
    id: int
    email: str


class Me(UserOut):
    email_verified: bool
    logged_in_at: datetime | None
    session_expires_at: datetime | None
    served_by: str


class DeviceOut(BaseModel):
    """One logged-in device of the user; times are UTC (ISO 8601)."""

    id: str
    current: bool
    """The device that asked."""
    user_agent: str
    """A browser and OS summary, such as ``Firefox on Linux``: what the browser claimed."""
    created_at: datetime
    """When it logged in."""
    last_seen_at: datetime
    """When it was last seen, to within ``SEEN_INTERVAL`` (15 minutes)."""
    expires_at: datetime


def _user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email)


def _time(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def _device_out(device: DeviceInfo) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        current=device.current,
        user_agent=device.user_agent,
        created_at=datetime.fromtimestamp(device.created_at, UTC),
        last_seen_at=datetime.fromtimestamp(device.last_seen_at, UTC),
        expires_at=datetime.fromtimestamp(device.expires_at, UTC),
    )


def _try_later(exc: TryLater) -> HTTPException:
    return HTTPException(status_code=exc.status_code, detail=exc.message, headers=exc.headers)


@router.post("/register", status_code=202)
async def api_register(body: Credentials, db: Db, accounts: AppAccounts) -> Registered:
    """Create an account if the address is free; the same answer either way, and nobody is logged in."""
    try:
        await accounts.register(db, body.email, body.password)
    except AccountError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except TryLater as exc:
        raise _try_later(exc) from None
    return Registered(message=REGISTERED)


@router.post("/login")
async def api_login(request: Request, body: Credentials, db: Db, auth: Auth, accounts: AppAccounts) -> UserOut:
    """Log in: a new device row, and a new session holding the user id, the revocation token and the device."""
    try:
        user = await accounts.authenticate(db, body.email, body.password, client=client_address(request))
    except TryLater as exc:
        raise _try_later(exc) from None
    if user is None:
        raise auth.scheme.make_not_authenticated_error()
    await auth.login_device(db, request, user)
    return _user_out(user)


class BearerToken(BaseModel):
    """A bearer token for a client that cannot keep cookies (a CLI, a mobile app)."""

    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


@router.post("/token")
async def api_token(request: Request, body: Credentials, db: Db, auth: Auth, accounts: AppAccounts) -> BearerToken:
    """Log in for a client without cookies: a new device row, and the session sealed as a bearer token
    in the body (``Authorization: Bearer <token>`` on every request; no cookie is set or read). Throttled
    like the form login; ``POST /api/token/revoke`` with the token ends this device."""
    try:
        user = await accounts.authenticate(db, body.email, body.password, client=client_address(request))
    except TryLater as exc:
        raise _try_later(exc) from None
    if user is None:
        raise auth.scheme.make_not_authenticated_error()
    token = await auth.login_device_bearer(db, request, user)
    return BearerToken(token=token, expires_in=auth.bearer_max_age)


@router.post("/token/revoke", status_code=204)
async def api_token_revoke(request: Request, user: CurrentUser, db: Db, auth: Auth) -> Response:
    """End the bearer token this request carries (its device row is deleted): the client's logout."""
    if not await auth.logout_bearer(db, request, user):
        raise HTTPException(status_code=400, detail="This request carries no bearer token")
    return Response(status_code=204)


@router.get("/keys")
async def api_keys(request: Request) -> dict[str, Any]:
    """How many session cookies each key of the ring opened since this process started, and when the
    older keys' cookies must all have expired: "can I drop the old key yet?". Key ids are public (every
    cookie carries one); no secret is shown."""
    events: AuthEvents = request.app.state.events
    assert events.key_usage is not None
    return events.key_usage.snapshot()


@router.get("/me")
async def api_me(request: Request, user: CurrentUser, settings: AppSettings, auth: Auth) -> Me:
    """Who this session belongs to, when it logged in, when it expires, and which server answered."""
    session: Any = await auth.scheme(request)  # the cookie's session, or a bearer token's
    return Me(
        id=user.id,
        email=user.email,
        email_verified=user.email_verified,
        logged_in_at=_time(session.get(SessionAuth.login_time_key)),
        session_expires_at=_time(getattr(session, "expires_at", None)),
        served_by=settings.instance_name,
    )


@router.post("/logout", status_code=204)
async def api_logout(request: Request, db: Db, auth: Auth) -> Response:
    """Log out this device: delete its row (no copy of the cookie works afterwards) and clear the session."""
    await auth.logout_device(db, request)
    return Response(status_code=204)


@router.get("/devices")
async def api_devices(request: Request, user: PrimaryUser, db: Db, auth: Auth) -> list[DeviceOut]:
    """The user's logged-in devices, newest first; ``current`` marks the one asking."""
    return [_device_out(device) for device in await auth.list_devices(db, user, request)]


@router.delete("/devices/{device_id}", status_code=204)
async def api_end_device(device_id: str, user: PrimaryUser, db: Db, auth: Auth) -> Response:
    """Log out one of the user's devices: it is refused from its next request on. 404 if it is not theirs."""
    if not await auth.end_device(db, user, device_id):
        raise HTTPException(status_code=404, detail="No such device")
    return Response(status_code=204)


@router.post("/logout-others", status_code=204)
async def api_logout_others(request: Request, user: PrimaryUser, db: Db, auth: Auth) -> Response:
    """Log out every other device: their rows are deleted and the revocation token rotated; this one stays."""
    await auth.revoke(db, user, keep=request)
    return Response(status_code=204)


@router.post("/password", status_code=204)
async def api_password(
    request: Request, body: PasswordChange, user: FreshUser, db: Db, auth: Auth, accounts: AppAccounts
) -> Response:
    """Change the password (a login of the last 10 minutes, else 401: ``POST /api/confirm`` first); like
    logout-others, this device stays logged in and the others end."""
    try:
        await accounts.change_password(user, body.current_password, body.new_password, client=client_address(request))
    except AccountError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except TryLater as exc:
        raise _try_later(exc) from None
    await auth.revoke(db, user, keep=request)
    return Response(status_code=204)


class Confirmation(BaseModel):
    password: str = Field(max_length=1024)


@router.post("/confirm", status_code=204)
async def api_confirm(
    request: Request, body: Confirmation, user: PrimaryUser, db: Db, auth: Auth, accounts: AppAccounts
) -> Response:
    """Re-check the password of the logged-in user and make this login fresh again (``auth.confirm``),
    for the routes that need a recent login. Throttled like a login. A bearer client gets a fresh login
    from a new ``POST /api/token`` instead: ``auth.confirm`` re-stamps the cookie's session only."""
    if auth.scheme.bearer is not None and auth.scheme.bearer.token_of(request):
        raise HTTPException(status_code=400, detail="A bearer client confirms by logging in again (POST /api/token)")
    try:
        checked = await accounts.authenticate(db, user.email, body.password, client=client_address(request))
    except TryLater as exc:
        raise _try_later(exc) from None
    if checked is None or checked.id != user.id:
        raise HTTPException(status_code=400, detail="Wrong password")
    auth.confirm(request, user)
    return Response(status_code=204)


@router.delete("/account", status_code=204)
async def api_delete_account(request: Request, user: FreshUser, db: Db) -> Response:
    """Delete the account (a login of the last 10 minutes, else 401): its devices go with it (``ON DELETE
    CASCADE``), so every session of the user is refused from its next request; this one is cleared."""
    await db.delete(user)
    await db.commit()
    request.session.clear()
    return Response(status_code=204)


@router.get("/verified-only")
async def api_verified_only(user: VerifiedUser) -> dict[str, str]:
    """An example of a per-route condition: only users with a verified address (403 otherwise), checked in
    the same one statement as the session."""
    return {"message": f"Welcome, {user.email}: your address is verified."}


@router.post("/forgot-password", status_code=202)
async def api_forgot_password(
    body: ForgotPassword, db: Db, auth: Auth, accounts: AppAccounts, settings: AppSettings
) -> LinkSent:
    """Send a password-reset link if the address has an account; the same answer either way."""
    user = await accounts.user_with_email(db, body.email)
    return LinkSent(message=LINK_SENT, link=send_link(auth, settings, user, RESET) if user is not None else None)


@router.post("/reset-password", status_code=204)
async def api_reset_password(body: PasswordReset, db: Db, auth: Auth, accounts: AppAccounts) -> Response:
    """Set a new password with a reset link's token (once); every session of the user ends."""
    try:
        await reset_password(auth, accounts, db, body.token, body.new_password)
    except AccountError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except TryLater as exc:
        raise _try_later(exc) from None
    return Response(status_code=204)


@router.post("/verify-email/send", status_code=202)
async def api_verify_send(user: PrimaryUser, auth: Auth, settings: AppSettings) -> LinkSent:
    """Send the logged-in user a link that verifies their address (nothing if it is verified)."""
    if user.email_verified:
        return LinkSent(message="Your e-mail address is already verified.")
    return LinkSent(message=VERIFICATION_SENT, link=send_link(auth, settings, user, VERIFY))


@router.post("/verify-email", status_code=204)
async def api_verify_email(body: EmailVerification, db: Db, auth: Auth) -> Response:
    """Verify the address a verification link was sent to (once; a changed address kills the link)."""
    try:
        await verify_email(auth, db, body.token)
    except AccountError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return Response(status_code=204)
