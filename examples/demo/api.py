"""The same actions as a JSON API under ``/api/``.

Every POST must say ``Content-Type: application/json`` (else 415): a browser cannot send that
cross-site without a CORS preflight, which this app never grants, so the API needs no CSRF token.
Errors use FastAPI's ``{"detail": ...}`` shape; a revoked or missing session gets 401 with
``WWW-Authenticate`` and a deletion cookie; a database outage gets 503 with ``Retry-After``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import Message
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from .accounts import AccountError, EmailTaken, authenticate, change_password, register
from .auth import CurrentUser, auth, get_settings
from .db import get_db
from .models import User
from .passwords import MAX_PASSWORD_LENGTH
from .settings import Settings

__all__ = ["router"]


async def require_json(request: Request) -> None:
    """415 for a POST that is not ``application/json``: the API's defence against cross-site forms."""
    if request.method != "POST":
        return
    message = Message()
    message["content-type"] = request.headers.get("content-type", "")
    if message.get_content_type() != "application/json":
        raise HTTPException(status_code=415, detail="Send Content-Type: application/json")


router = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(require_json)])

Db = Annotated[AsyncSession, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]


class Credentials(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class UserOut(BaseModel):
    id: int
    email: str


class Me(UserOut):
    logged_in_at: datetime | None
    session_expires_at: datetime | None
    served_by: str


def _user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email)


def _time(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


@router.post("/register", status_code=201)
async def api_register(request: Request, body: Credentials, db: Db, settings: AppSettings) -> UserOut:
    """Create an account and log this client in."""
    try:
        user = await register(db, body.email, body.password, scrypt_n=settings.scrypt_n)
    except EmailTaken as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except AccountError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    auth.login(request, user)
    return _user_out(user)


@router.post("/login")
async def api_login(request: Request, body: Credentials, db: Db, settings: AppSettings) -> UserOut:
    """Log in: a new session holding the user id and the current revocation token."""
    user = await authenticate(db, body.email, body.password, scrypt_n=settings.scrypt_n)
    if user is None:
        raise auth.scheme.make_not_authenticated_error()
    auth.login(request, user)
    return _user_out(user)


@router.get("/me")
async def api_me(request: Request, user: CurrentUser, settings: AppSettings) -> Me:
    """Who this session belongs to, when it logged in, when it expires, and which server answered."""
    session: Any = request.session
    return Me(
        id=user.id,
        email=user.email,
        logged_in_at=_time(session.get(auth.login_time_key)),
        session_expires_at=_time(getattr(session, "expires_at", None)),
        served_by=settings.instance_name,
    )


@router.post("/logout", status_code=204)
async def api_logout(request: Request) -> Response:
    """End this session (other devices stay logged in)."""
    auth.logout(request)
    return Response(status_code=204)


@router.post("/logout-others", status_code=204)
async def api_logout_others(request: Request, user: CurrentUser, db: Db) -> Response:
    """Rotate the revocation token: every other session of this user is refused from now on."""
    await auth.revoke(db, user, keep=request)
    return Response(status_code=204)


@router.post("/password", status_code=204)
async def api_password(
    request: Request, body: PasswordChange, user: CurrentUser, db: Db, settings: AppSettings
) -> Response:
    """Change the password; like logout-others, this device stays logged in and the others end."""
    try:
        await change_password(user, body.current_password, body.new_password, scrypt_n=settings.scrypt_n)
    except AccountError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    await auth.revoke(db, user, keep=request)
    return Response(status_code=204)
