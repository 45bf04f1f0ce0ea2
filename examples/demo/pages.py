"""The HTML pages: register, log in, profile, log out, log out other devices, change password.

Every form carries the session's CSRF token; a POST without the right one gets 403. Successful
POSTs redirect (303) to a page, so reloading never resubmits. A page that needs a user sends a
visitor without a valid session (never logged in, logged out, or revoked) to the login page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from .accounts import AccountError, EmailTaken, authenticate, change_password, register
from .auth import OptionalUser, auth, csrf_token, csrf_valid, get_settings
from .db import get_db
from .html import form, html_page, input_field, notice
from .models import User
from .settings import Settings

__all__ = ["CsrfFailed", "csrf_failed_page", "router"]

router = APIRouter(include_in_schema=False)

Db = Annotated[AsyncSession, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]

_NOTICES = {
    "others": "All your other devices are logged out. This one stays logged in.",
    "password": "Password changed. Your other devices are logged out; this one stays logged in.",
}


class CsrfFailed(Exception):
    """A form came back without this session's CSRF token."""


async def require_csrf(request: Request, csrf_token: Annotated[str, Form()] = "") -> None:
    """Dependency for every form POST: the submitted token must match the session's."""
    if not csrf_valid(request.session, csrf_token):
        raise CsrfFailed


Csrf = Depends(require_csrf)


def csrf_failed_page(request: Request, _exc: Exception) -> Response:
    """403 for a form without a valid CSRF token (expired page, or a post from another site)."""
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


def _register_page(request: Request, *, error: str = "", email: str = "", status_code: int = 200) -> Response:
    fields = input_field("E-mail", "email", kind="email", value=email, autocomplete="username")
    fields += input_field("Password (8 characters or more)", "password", kind="password", autocomplete="new-password")
    body = (notice(error, error=True) if error else "") + form(
        "/register", csrf_token(request.session), fields, "Create account", form_id="register"
    )
    body += '<p>Have an account? <a href="/login">Log in</a></p>'
    return html_page("Register", body, served_by=_served_by(request), status_code=status_code)


def _login_page(request: Request, *, error: str = "", email: str = "", status_code: int = 200) -> Response:
    fields = input_field("E-mail", "email", kind="email", value=email, autocomplete="username")
    fields += input_field("Password", "password", kind="password", autocomplete="current-password")
    body = (notice(error, error=True) if error else "") + form(
        "/login", csrf_token(request.session), fields, "Log in", form_id="login"
    )
    body += '<p>New here? <a href="/register">Create an account</a></p>'
    return html_page("Log in", body, served_by=_served_by(request), status_code=status_code)


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
    settings: AppSettings,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    try:
        user = await register(db, email, password, scrypt_n=settings.scrypt_n)
    except EmailTaken as exc:
        return _register_page(request, error=str(exc), email=email, status_code=409)
    except AccountError as exc:
        return _register_page(request, error=str(exc), email=email, status_code=400)
    _log_in(request, user)
    return _see_other("/profile")


@router.get("/login")
async def login_form(request: Request, user: OptionalUser) -> Response:
    if user is not None:
        return _see_other("/profile")
    return _login_page(request)


@router.post("/login", dependencies=[Csrf])
async def login_submit(
    request: Request,
    db: Db,
    settings: AppSettings,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    user = await authenticate(db, email, password, scrypt_n=settings.scrypt_n)
    if user is None:
        return _login_page(request, error="Wrong e-mail or password.", email=email, status_code=400)
    _log_in(request, user)
    return _see_other("/profile")


def _log_in(request: Request, user: User) -> None:
    """A new session for ``user`` (nothing from before survives) with a new CSRF token."""
    auth.login(request, user)
    csrf_token(request.session, renew=True)


# -- pages for a logged-in user ----------------------------------------------------------------


def _profile_page(request: Request, user: User, *, error: str = "", status_code: int = 200) -> Response:
    session: Any = request.session
    token = csrf_token(session)
    done = _NOTICES.get(request.query_params.get("done", ""), "")
    details = (
        "<dl>"
        f'<dt>E-mail</dt><dd id="email">{escape(user.email)}</dd>'
        f'<dt>Logged in at</dt><dd id="login-time">{_when(session.get(auth.login_time_key))}</dd>'
        f'<dt>Session expires at</dt><dd id="expires-at">{_when(getattr(session, "expires_at", None))}</dd>'
        "</dl>"
        "<p>A session also ends after a day without use.</p>"
        "<p>The session lives in an encrypted cookie; the server keeps only a revocation token per user.</p>"
    )
    password_fields = input_field(
        "Current password", "current_password", kind="password", autocomplete="current-password"
    ) + input_field("New password (8 characters or more)", "new_password", kind="password", autocomplete="new-password")
    body = (
        (notice(done) if done else "")
        + (notice(error, error=True) if error else "")
        + details
        + form("/logout", token, "<p>End the session on this device only.</p>", "Log out", form_id="logout")
        + form(
            "/logout-others",
            token,
            "<p>Rotate your revocation token: every other browser or device logged in as you is refused "
            "at its next request, on every server. This one stays logged in.</p>",
            "Log out all other devices",
            form_id="logout-others",
        )
        + "<h2>Change password</h2>"
        + form("/password", token, password_fields, "Change password", form_id="password")
    )
    return html_page("Your profile", body, served_by=_served_by(request), status_code=status_code, logged_in=True)


@router.get("/profile")
async def profile(request: Request, user: OptionalUser) -> Response:
    if user is None:
        return _see_other("/login")
    return _profile_page(request, user)


@router.post("/logout", dependencies=[Csrf])
async def logout(request: Request) -> Response:
    auth.logout(request)
    return _see_other("/login")


@router.post("/logout-others", dependencies=[Csrf])
async def logout_others(request: Request, db: Db, user: OptionalUser) -> Response:
    if user is None:
        return _see_other("/login")
    await auth.revoke(db, user, keep=request)
    return _see_other("/profile?done=others")


@router.post("/password", dependencies=[Csrf])
async def password(
    request: Request,
    db: Db,
    settings: AppSettings,
    user: OptionalUser,
    current_password: Annotated[str, Form()],
    new_password: Annotated[str, Form()],
) -> Response:
    if user is None:
        return _see_other("/login")
    try:
        await change_password(user, current_password, new_password, scrypt_n=settings.scrypt_n)
    except AccountError as exc:  # nothing was changed
        return _profile_page(request, user, error=str(exc), status_code=400)
    await auth.revoke(db, user, keep=request)  # commits the new hash and the new token together
    return _see_other("/profile?done=password")
