"""sealed-sessions: encrypted client-side sessions for Starlette and FastAPI.

The core imports nothing beyond Starlette and PyNaCl. The FastAPI dependency and its
SQLAlchemy model mixin live in ``sealed_sessions.fastapi`` and ``sealed_sessions.sqlalchemy``.
"""

from ._errors import (
    ConfigurationError,
    InvalidCookie,
    Reason,
    SealedSessionsError,
    SessionDataError,
    SessionTooLarge,
)
from ._keys import KeyInput, KeyRing, generate_key
from ._middleware import SessionMiddleware
from ._payload import Opened
from ._sealer import Sealer
from ._session import Session

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "InvalidCookie",
    "KeyInput",
    "KeyRing",
    "Opened",
    "Reason",
    "SealedSessionsError",
    "Sealer",
    "Session",
    "SessionDataError",
    "SessionMiddleware",
    "SessionTooLarge",
    "__version__",
    "generate_key",
]
