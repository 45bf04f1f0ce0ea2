"""The HTML pages: register, log in, profile, your devices, log out (this device, one other device,
or all other devices), change password, forgot password, verify your e-mail.

Every form carries the session's CSRF token (sealed_sessions' CSRF protection: a secret in the
sealed session, masked afresh on every page); a POST without the right one, or from another site,
gets a 403 page. Successful
POSTs redirect (303) to a page, so reloading never resubmits. A page that needs a user sends a
visitor without a valid session (never logged in, logged out, or revoked) to the login page.

Registration never logs in and answers the same whether or not the address had an account.
Each login is a device row. Logging out deletes this device's row: a copy of this cookie, and a
slow request that would otherwise set it again after the logout, are refused; the user's other
devices stay logged in. The devices page lists them and logs out any one of them.
"Forgot your password?" answers the same for every address; a reset link (see :mod:`.links`) sets a
new password once and logs the user out everywhere. The profile sends a "verify your e-mail" link.
Throttled logins get 429 and a busy password hasher 503, both with ``Retry-After``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from sealed_sessions import csrf_token, flash, get_flashed_messages
from sealed_sessions.fastapi import CSRFProtect, DeviceInfo, SessionAuth

from .accounts import REGISTERED, AccountError
from .auth import (
    FRESH_LOGIN,
    SEEN_INTERVAL,
    AppAccounts,
    AppSettings,
    Auth,
    OptionalPrimaryUser,
    OptionalUser,
    client_address,
)
from .db import Db
from .errors import TryLater
from .html import form, hidden_field, html_page, input_field, notice
from .links import (
    INVALID_LINK,
    LINK_SENT,
    RESET,
    VERIFICATION_SENT,
    VERIFY,
    check_link,
    reset_password,
    send_link,
    verify_email,
)
from .models import User
from .settings import Settings

__all__ = ["csrf_failed_page", "router"]

router = APIRouter(include_in_schema=False)

# Flash messages: kept in the sealed session by the POST, shown once by the page it redirects to.
LOGGED_OUT_OTHERS = "All your other devices are logged out. This one stays logged in."
PASSWORD_CHANGED = "Password changed. Your other devices are logged out; this one stays logged in."  # noqa: S105 - a message, not a password
DEVICE_ENDED = "That device is logged out. It is sent to the login page at its next request."
CONFIRMED = "Password confirmed: you can change your password or delete your account for the next 10 minutes."
ACCOUNT_DELETED = "Your account is deleted, and every device logged out."
STALE_LOGIN = "For your safety this needs a recent login: confirm your password first."
PASSWORD_RESET = "Password changed. Every device was logged out: log in with the new password."  # noqa: S105 - a message, not a password
EMAIL_VERIFIED = "Your e-mail address is verified."
DEV_LINK = "dev-link"
"""The flash category of a link shown on the page in development (``DEMO_SHOW_LINKS``)."""
_LOGIN_NOTICES = {"registered": REGISTERED}


Csrf = Depends(CSRFProtect())
"""Every form POST: the origin checks, then the token from the form's ``csrf_token`` field."""


def csrf_failed_page(request: Request, _exc: Exception) -> Response:
    """The page for :class:`CSRFError`: 403 for a form without a valid token (an expired page, or a
    post from another site); the reason code is in the log, not on the page."""
    body = notice("This form has expired or was sent from another site. Nothing was changed.", error=True)
    body += '<p><a href="/login">Back to the start</a></p>'
    return html_page("Form expired", body, served_by=_served_by(request), status_code=403)


def _served_by(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.instance_name


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _when(timestamp: object) -> str:
    if not isinstance(timestamp, int):
        return "never"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- anonymous pages ---------------------------------------------------------------------------


def _register_page(
    request: Request, *, error: str = "", email: str = "", status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    fields = input_field("E-mail", "email", kind="email", value=email, autocomplete="username")
    fields += input_field("Password (8 characters or more)", "password", kind="password", autocomplete="new-password")
    body = (notice(error, error=True) if error else "") + form(
        "/register", csrf_token(request), fields, "Create account", form_id="register"
    )
    body += '<p>Have an account? <a href="/login">Log in</a></p>'
    return html_page("Register", body, served_by=_served_by(request), status_code=status_code, headers=headers)


def _login_page(
    request: Request, *, error: str = "", email: str = "", status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    fields = input_field("E-mail", "email", kind="email", value=email, autocomplete="username")
    fields += input_field("Password", "password", kind="password", autocomplete="current-password")
    done = _LOGIN_NOTICES.get(request.query_params.get("done", ""), "")
    body = (
        (notice(done) if done else "")
        + _flashed(request)
        + (notice(error, error=True) if error else "")
        + form("/login", csrf_token(request), fields, "Log in", form_id="login")
    )
    body += '<p><a href="/forgot" id="forgot-link">Forgot your password?</a></p>'
    body += '<p>New here? <a href="/register">Create an account</a></p>'
    return html_page("Log in", body, served_by=_served_by(request), status_code=status_code, headers=headers)


@router.get("/")
async def home(user: OptionalUser) -> Response:
    return _see_other("/profile" if user is not None else "/login")


@router.get("/register")
async def register_form(request: Request, user: OptionalUser) -> Response:
    if user is not None:
        return _see_other("/profile")
    return _register_page(request)


@router.post("/register", dependencies=[Csrf])
async def register_submit(
    request: Request,
    db: Db,
    accounts: AppAccounts,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    """Create the account if the address is free; either way, the same redirect to the login page."""
    try:
        await accounts.register(db, email, password)
    except AccountError as exc:
        return _register_page(request, error=str(exc), email=email, status_code=400)
    except TryLater as exc:
        return _register_page(request, error=exc.message, email=email, status_code=exc.status_code, headers=exc.headers)
    return _see_other("/login?done=registered")


@router.get("/login")
async def login_form(request: Request, user: OptionalUser) -> Response:
    if user is not None:
        return _see_other("/profile")
    return _login_page(request)


@router.post("/login", dependencies=[Csrf])
async def login_submit(
    request: Request,
    db: Db,
    auth: Auth,
    accounts: AppAccounts,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    try:
        user = await accounts.authenticate(db, email, password, client=client_address(request))
    except TryLater as exc:
        return _login_page(request, error=exc.message, email=email, status_code=exc.status_code, headers=exc.headers)
    if user is None:
        return _login_page(request, error="Wrong e-mail or password.", email=email, status_code=400)
    await auth.login_device(db, request, user)  # a new device and session: the CSRF secret is new too
    return _see_other("/profile")


def _flashed(request: Request) -> str:
    """The messages flashed by the POST that redirected here, as notices (each shown once); a development
    link as a link."""
    return "".join(
        f'<p class="notice" id="dev-link">Development only, as no mail server runs here: '
        f'<a href="{escape(m.message)}">the link a real site would e-mail</a></p>'
        if m.category == DEV_LINK
        else notice(m.message, error=m.category == "error")
        for m in get_flashed_messages(request)
    )


def _sent(request: Request, message: str, link: str | None) -> None:
    """Flash that a link was sent, and in development the link itself."""
    flash(request, message, "success")
    if link is not None:
        flash(request, link, DEV_LINK)


# -- forgot password, reset, verify -------------------------------------------------------------


@router.get("/forgot")
async def forgot_form(request: Request) -> Response:
    fields = input_field("E-mail", "email", kind="email", autocomplete="username")
    body = _flashed(request) + form("/forgot", csrf_token(request), fields, "Send me a reset link", form_id="forgot")
    body += '<p><a href="/login">Back to log in</a></p>'
    return html_page("Forgot your password?", body, served_by=_served_by(request))


@router.post("/forgot", dependencies=[Csrf])
async def forgot_submit(
    request: Request, db: Db, auth: Auth, accounts: AppAccounts, settings: AppSettings, email: Annotated[str, Form()]
) -> Response:
    """The same answer for every address; a reset link only for an address that has an account."""
    user = await accounts.user_with_email(db, email)
    link = send_link(auth, settings, user, RESET) if user is not None else None
    _sent(request, LINK_SENT, link)  # in development, the link's presence tells: that is the price of no mail
    return _see_other("/forgot")


def _link_page(
    request: Request,
    title: str,
    action: str,
    token: str,
    fields: str,
    button: str,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    if error == INVALID_LINK:
        body = (
            notice(error, error=True)
            + '<p><a href="/forgot">Ask for a new reset link</a> or <a href="/login">log in</a></p>'
        )
    else:
        body = (notice(error, error=True) if error else "") + form(
            action, csrf_token(request), hidden_field("token", token) + fields, button, form_id=action.strip("/")
        )
    return html_page(title, body, served_by=_served_by(request), status_code=status_code)


def _reset_page(request: Request, token: str, *, error: str = "", status_code: int = 200) -> Response:
    fields = input_field(
        "New password (8 characters or more)", "new_password", kind="password", autocomplete="new-password"
    )
    return _link_page(
        request, "Choose a new password", "/reset", token, fields, "Set password", error=error, status_code=status_code
    )


@router.get("/reset")
async def reset_form(request: Request, db: Db, auth: Auth, token: str = "") -> Response:
    """The form for a new password, or "invalid link" at once (one SELECT; nothing changes)."""
    if not await check_link(auth, db, token, RESET):
        return _reset_page(request, token, error=INVALID_LINK, status_code=400)
    return _reset_page(request, token)


@router.post("/reset", dependencies=[Csrf])
async def reset_submit(
    request: Request,
    db: Db,
    auth: Auth,
    accounts: AppAccounts,
    token: Annotated[str, Form()],
    new_password: Annotated[str, Form()],
) -> Response:
    try:
        await reset_password(auth, accounts, db, token, new_password)
    except AccountError as exc:
        return _reset_page(request, token, error=str(exc), status_code=400)
    except TryLater as exc:
        return html_page(
            "Try again later",
            notice(exc.message, error=True),
            served_by=_served_by(request),
            status_code=exc.status_code,
            headers=exc.headers,
        )
    flash(request, PASSWORD_RESET, "success")
    return _see_other("/login")


def _verify_page(request: Request, token: str, *, error: str = "", status_code: int = 200) -> Response:
    return _link_page(
        request,
        "Verify your e-mail",
        "/verify-email",
        token,
        "",
        "Verify my address",
        error=error,
        status_code=status_code,
    )


@router.get("/verify-email")
async def verify_form(request: Request, db: Db, auth: Auth, token: str = "") -> Response:
    """A button to confirm (a GET changes nothing, so a mail scanner fetching the link verifies nothing)."""
    if not await check_link(auth, db, token, VERIFY):
        return _verify_page(request, token, error=INVALID_LINK, status_code=400)
    return _verify_page(request, token)


@router.post("/verify-email", dependencies=[Csrf])
async def verify_submit(request: Request, db: Db, auth: Auth, token: Annotated[str, Form()]) -> Response:
    try:
        await verify_email(auth, db, token)
    except AccountError as exc:
        return _verify_page(request, token, error=str(exc), status_code=400)
    flash(request, EMAIL_VERIFIED, "success")
    return _see_other("/profile")


@router.post("/verify-email/send", dependencies=[Csrf])
async def verify_send(request: Request, auth: Auth, settings: AppSettings, user: OptionalPrimaryUser) -> Response:
    if user is None:
        return _see_other("/login")
    if not user.email_verified:
        _sent(request, VERIFICATION_SENT, send_link(auth, settings, user, VERIFY))
    return _see_other("/profile")


# -- pages for a logged-in user ----------------------------------------------------------------


def _profile_page(
    request: Request,
    user: User,
    *,
    error: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    session: Any = request.session
    token = csrf_token(request)
    flashed = _flashed(request)
    details = (
        "<dl>"
        f'<dt>E-mail</dt><dd id="email">{escape(user.email)}</dd>'
        f'<dt>E-mail verified</dt><dd id="email-verified">{"yes" if user.email_verified else "no"}</dd>'
        f'<dt>Logged in at</dt><dd id="login-time">{_when(session.get(SessionAuth.login_time_key))}</dd>'
        f'<dt>Session expires at</dt><dd id="expires-at">{_when(getattr(session, "expires_at", None))}</dd>'
        "</dl>"
        "<p>A session also ends after a day without use.</p>"
        "<p>The session lives in an encrypted cookie. The server keeps a revocation token per user and "
        "a row per logged-in device, which holds no secret: see and log out "
        '<a href="/devices" id="devices-link">your devices</a>.</p>'
    )
    password_fields = input_field(
        "Current password", "current_password", kind="password", autocomplete="current-password"
    ) + input_field("New password (8 characters or more)", "new_password", kind="password", autocomplete="new-password")
    verify = (
        ""
        if user.email_verified
        else form(
            "/verify-email/send",
            token,
            "<p>Prove this address is yours: we send it a link that verifies it.</p>",
            "Send a verification link",
            form_id="verify-send",
        )
    )
    body = (
        flashed
        + (notice(error, error=True) if error else "")
        + details
        + verify
        + form(
            "/logout",
            token,
            "<p>Log out on this device: its session is deleted on the server, so neither a copy of this "
            "cookie nor a request still running can log you back in. Your other devices stay logged in.</p>",
            "Log out",
            form_id="logout",
        )
        + form(
            "/logout-others",
            token,
            "<p>Every other browser or device logged in as you is refused at its next request, on every "
            "server. This one stays logged in.</p>",
            "Log out all other devices",
            form_id="logout-others",
        )
        + _sensitive_forms(request, token, password_fields)
    )
    return html_page(
        "Your profile", body, served_by=_served_by(request), status_code=status_code, logged_in=True, headers=headers
    )


def _sensitive_forms(request: Request, token: str, password_fields: str) -> str:
    """Change password and delete account: they need a recent login (``FRESH_LOGIN``), so a stale one
    is offered a password re-check first (``auth.confirm`` re-stamps the login time)."""
    auth: SessionAuth[User] = request.app.state.auth
    if not auth.login_is_fresh(request.session, FRESH_LOGIN):
        fields = input_field("Your password", "password", kind="password", autocomplete="current-password")
        return "<h2>Change password or delete the account</h2>" + form(
            "/confirm",
            token,
            f"<p>You logged in more than {FRESH_LOGIN // 60} minutes ago: confirm your password first.</p>{fields}",
            "Confirm",
            form_id="confirm",
        )
    delete = "<p>Delete the account and log out every device. This cannot be undone.</p>"
    return (
        "<h2>Change password</h2>"
        + form("/password", token, password_fields, "Change password", form_id="password")
        + "<h2>Delete account</h2>"
        + form("/account/delete", token, delete, "Delete my account", form_id="delete-account")
    )


@router.post("/confirm", dependencies=[Csrf])
async def confirm(
    request: Request,
    db: Db,
    auth: Auth,
    accounts: AppAccounts,
    user: OptionalPrimaryUser,
    password: Annotated[str, Form()],
) -> Response:
    """Re-check the password and make this login fresh again, for the password change and account deletion."""
    if user is None:
        return _see_other("/login")
    try:
        checked = await accounts.authenticate(db, user.email, password, client=client_address(request))
    except TryLater as exc:
        return _profile_page(request, user, error=exc.message, status_code=exc.status_code, headers=exc.headers)
    if checked is None or checked.id != user.id:
        return _profile_page(request, user, error="Wrong password.", status_code=400)
    auth.confirm(request, user)
    flash(request, CONFIRMED, "success")
    return _see_other("/profile")


@router.post("/account/delete", dependencies=[Csrf])
async def delete_account(request: Request, db: Db, auth: Auth, user: OptionalPrimaryUser) -> Response:
    """Delete the account (a recent login needed): its devices go with it, every session ends."""
    if user is None:
        return _see_other("/login")
    if not auth.login_is_fresh(request.session, FRESH_LOGIN):
        return _profile_page(request, user, error=STALE_LOGIN, status_code=401)
    await db.delete(user)
    await db.commit()
    request.session.clear()
    flash(request, ACCOUNT_DELETED, "success")
    return _see_other("/login")


@router.get("/profile")
async def profile(request: Request, user: OptionalUser) -> Response:
    if user is None:
        return _see_other("/login")
    return _profile_page(request, user)


@router.post("/logout", dependencies=[Csrf])
async def logout(request: Request, db: Db, auth: Auth) -> Response:
    """Delete this device's row (no copy of its cookie works afterwards), then clear this session."""
    await auth.logout_device(db, request)
    return _see_other("/login")


@router.post("/logout-others", dependencies=[Csrf])
async def logout_others(request: Request, db: Db, auth: Auth, user: OptionalPrimaryUser) -> Response:
    if user is None:
        return _see_other("/login")
    await auth.revoke(db, user, keep=request)
    flash(request, LOGGED_OUT_OTHERS, "success")
    return _see_other("/profile")


@router.post("/password", dependencies=[Csrf])
async def password(
    request: Request,
    db: Db,
    auth: Auth,
    accounts: AppAccounts,
    user: OptionalPrimaryUser,
    current_password: Annotated[str, Form()],
    new_password: Annotated[str, Form()],
) -> Response:
    if user is None:
        return _see_other("/login")
    if not auth.login_is_fresh(request.session, FRESH_LOGIN):
        return _profile_page(request, user, error=STALE_LOGIN, status_code=401)
    try:
        await accounts.change_password(user, current_password, new_password, client=client_address(request))
    except AccountError as exc:  # nothing was changed
        return _profile_page(request, user, error=str(exc), status_code=400)
    except TryLater as exc:
        return _profile_page(request, user, error=exc.message, status_code=exc.status_code, headers=exc.headers)
    await auth.revoke(db, user, keep=request)  # commits the new hash and the new token together
    flash(request, PASSWORD_CHANGED, "success")
    return _see_other("/profile")


# -- your devices ------------------------------------------------------------------------------


def _device_row(device: DeviceInfo, token: str) -> str:
    """One device as a table row: what it is, when it logged in and was last seen, and how to end it."""
    if device.current:
        action = "<strong>This device</strong>"
    else:
        fields = hidden_field("device_id", device.id)
        action = form("/devices/logout", token, fields, "Log out", form_id=f"end-{device.id}")
    return (
        f'<tr class="device{" current" if device.current else ""}" id="device-{escape(device.id)}">'
        f'<td class="user-agent">{escape(device.user_agent)}</td>'
        f"<td>{_when(device.created_at)}</td><td>{_when(device.last_seen_at)}</td><td>{action}</td></tr>"
    )


async def _devices_page(
    request: Request,
    db: AsyncSession,
    auth: SessionAuth[User],
    user: User,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    token = csrf_token(request)
    rows = "".join(_device_row(device, token) for device in await auth.list_devices(db, user, request))
    body = (
        _flashed(request)
        + (notice(error, error=True) if error else "")
        + "<p>Every browser and app logged in as you, newest first. Log out any you do not recognise: "
        "it is refused at its next request, on every server. No IP address is stored.</p>"
        '<table id="devices"><thead><tr><th>Device</th><th>Logged in</th><th>Last seen</th><th></th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        f"<p>Times are UTC; last seen is updated at most every {SEEN_INTERVAL // 60} minutes. A device is "
        'logged out a week after it logged in. <a href="/profile">Back to your profile</a></p>'
    )
    return html_page("Your devices", body, served_by=_served_by(request), status_code=status_code, logged_in=True)


@router.get("/devices")
async def devices(request: Request, db: Db, auth: Auth, user: OptionalPrimaryUser) -> Response:
    if user is None:
        return _see_other("/login")
    return await _devices_page(request, db, auth, user)


@router.post("/devices/logout", dependencies=[Csrf])
async def end_device(
    request: Request, db: Db, auth: Auth, user: OptionalPrimaryUser, device_id: Annotated[str, Form()]
) -> Response:
    """Log out one of the user's devices; a 404 page if it is not one of theirs (or already gone)."""
    if user is None:
        return _see_other("/login")
    if not await auth.end_device(db, user, device_id):
        error = "That device is not logged in (any more)."
        return await _devices_page(request, db, auth, user, error=error, status_code=404)
    flash(request, DEVICE_ENDED, "success")
    return _see_other("/devices")
