"""sealed-sessions: encrypted client-side sessions for Starlette and FastAPI.

The core imports nothing beyond Starlette and PyNaCl. The FastAPI dependency and its
SQLAlchemy model mixin live in ``sealed_sessions.fastapi`` and ``sealed_sessions.sqlalchemy``.
"""

from ._client_sessions import ClientSessionsCookie
from ._csrf import CSRFError, CSRFReason, csrf_field, csrf_token, rotate_csrf_token
from ._csrf_middleware import CSRFMiddleware
from ._errors import (
    ConfigurationError,
    InvalidCookie,
    Reason,
    SealedSessionsError,
    SessionDataError,
    SessionTooLarge,
    TokenRefusal,
    TokenRefused,
)
from ._events import AuthEvent, AuthEvents, EventKind
from ._flash import FlashMessage, flash, get_flashed_messages
from ._key_usage import KeyUsage
from ._keys import KeyInput, KeyRing, generate_key
from ._metrics import prometheus_collector
from ._middleware import SessionMiddleware
from ._migration import LegacyCookie, LegacySession, StarletteCookie
from ._payload import Opened
from ._schema import SessionSchema
from ._sealer import Sealer
from ._session import Session

__version__ = "0.1.0"

__all__ = [
    "AuthEvent",
    "AuthEvents",
    "CSRFError",
    "CSRFMiddleware",
    "CSRFReason",
    "ClientSessionsCookie",
    "ConfigurationError",
    "EventKind",
    "FlashMessage",
    "InvalidCookie",
    "KeyInput",
    "KeyRing",
    "KeyUsage",
    "LegacyCookie",
    "LegacySession",
    "Opened",
    "Reason",
    "SealedSessionsError",
    "Sealer",
    "Session",
    "SessionDataError",
    "SessionMiddleware",
    "SessionSchema",
    "SessionTooLarge",
    "StarletteCookie",
    "TokenRefusal",
    "TokenRefused",
    "__version__",
    "csrf_field",
    "csrf_token",
    "flash",
    "generate_key",
    "get_flashed_messages",
    "prometheus_collector",
    "rotate_csrf_token",
]
