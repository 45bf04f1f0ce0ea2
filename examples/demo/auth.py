"""The demo's ``SessionAuth`` and the dependency aliases its routes use, plus CSRF tokens for forms."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import Depends, Request

from sealed_sessions.fastapi import SessionAuth

from .db import get_db
from .models import User
from .settings import Settings

__all__ = ["CSRF_KEY", "CurrentUser", "OptionalUser", "auth", "csrf_token", "csrf_valid", "get_settings"]

auth = SessionAuth(User, get_db)
CurrentUser = Annotated[User, Depends(auth.current_user)]
"""The logged-in user: 401 (and the cookie cleared) when revoked, 503 when the database is down."""
OptionalUser = Annotated[User | None, Depends(auth.optional_user)]
"""The logged-in user or ``None``; 503 when the database is down."""

CSRF_KEY = "csrf"
"""Session key of the per-session CSRF token that every HTML form carries back."""


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def csrf_token(session: dict[str, Any], *, renew: bool = False) -> str:
    """This session's CSRF token, made (and so saved in the cookie) on first use or when ``renew``."""
    token = session.get(CSRF_KEY)
    if renew or not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def csrf_valid(session: dict[str, Any], submitted: str) -> bool:
    """Whether a form's token matches the session's, compared in constant time."""
    expected = session.get(CSRF_KEY)
    if not isinstance(expected, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode("ascii", "replace"), submitted.encode("utf-8", "replace"))
