"""The demo's settings, read from the environment by the application (never by the library).

| variable | meaning | default |
|---|---|---|
| ``DATABASE_URL`` | SQLAlchemy async URL (``postgresql+asyncpg://...``) | ``sqlite+aiosqlite:///demo.db`` |
| ``DEMO_READ_DATABASE_URL`` | a read replica of ``DATABASE_URL``, where session checks run | unset (no replica) |
| ``SEALED_SESSIONS_KEYS`` | session keys, comma-separated, newest first | a random key per process (dev only) |
| ``DEMO_HTTPS_ONLY`` | ``true`` behind HTTPS: a ``Secure`` cookie named ``__Host-session`` | ``false`` (plain HTTP) |
| ``DEMO_INSTANCE_NAME`` | the name shown in every page footer and ``/api/me`` | the host name |
| ``DEMO_DOCS`` | ``true`` serves ``/docs``, ``/redoc`` and ``/openapi.json`` (development) | ``false`` |
| ``DEMO_SHOW_LINKS`` | ``true`` logs and shows links a site would e-mail (no mail here) | ``true`` over HTTP |

The password-hashing cost is not read from the environment: production always gets
``scrypt_n=2**17``. Tests lower it by building ``Settings(scrypt_n=...)`` in code.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from sealed_sessions import generate_key

from .passwords import DEFAULT_SCRYPT_N

__all__ = [
    "DATABASE_URL_ENV",
    "DOCS_ENV",
    "HTTPS_ONLY_ENV",
    "INSTANCE_NAME_ENV",
    "KEYS_ENV",
    "READ_DATABASE_URL_ENV",
    "SHOW_LINKS_ENV",
    "Settings",
]

logger = logging.getLogger("examples.demo")

KEYS_ENV = "SEALED_SESSIONS_KEYS"
"""Same variable as ``python -m sealed_sessions inspect`` reads."""
DATABASE_URL_ENV = "DATABASE_URL"
READ_DATABASE_URL_ENV = "DEMO_READ_DATABASE_URL"
HTTPS_ONLY_ENV = "DEMO_HTTPS_ONLY"
INSTANCE_NAME_ENV = "DEMO_INSTANCE_NAME"
DOCS_ENV = "DEMO_DOCS"
SHOW_LINKS_ENV = "DEMO_SHOW_LINKS"

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///demo.db"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``create_app`` needs. Build it with :meth:`from_env` or directly in tests."""

    database_url: str = DEFAULT_DATABASE_URL
    read_database_url: str | None = None
    """A read replica of ``database_url``. Session checks run there (a miss is confirmed on the primary);
    every write, and every route that changes the user, uses ``database_url``. ``None``: no replica."""
    keys: tuple[str, ...] = ()
    """Session keys, newest first. Empty: a random key for this process only (development)."""
    https_only: bool = False
    """The demo's default is plain-HTTP development; deployments behind HTTPS must set it."""
    instance_name: str = field(default_factory=socket.gethostname)
    docs: bool = False
    """Serve the interactive API docs. Off by default: they map the whole API for anyone."""
    scrypt_n: int = DEFAULT_SCRYPT_N
    """scrypt cost for new password hashes (2**17: 128 MiB, OWASP's advice). Only tests lower it."""
    show_links: bool | None = None
    """Log the links a real site would e-mail (password reset, verification) and show them on the page.
    ``None``: on in plain-HTTP development, off behind HTTPS (see :attr:`links_shown`)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the settings from environment variables (see the module docstring)."""
        keys = tuple(k.strip() for k in environ.get(KEYS_ENV, "").split(",") if k.strip())
        return cls(
            database_url=environ.get(DATABASE_URL_ENV, "").strip() or DEFAULT_DATABASE_URL,
            read_database_url=environ.get(READ_DATABASE_URL_ENV, "").strip() or None,
            keys=keys,
            https_only=_parse_bool(HTTPS_ONLY_ENV, environ.get(HTTPS_ONLY_ENV, "false")),
            instance_name=environ.get(INSTANCE_NAME_ENV, "").strip() or socket.gethostname(),
            docs=_parse_bool(DOCS_ENV, environ.get(DOCS_ENV, "false")),
            show_links=_parse_bool(SHOW_LINKS_ENV, environ[SHOW_LINKS_ENV]) if SHOW_LINKS_ENV in environ else None,
        )

    @property
    def links_shown(self) -> bool:
        """Whether e-mail links are logged and shown: ``show_links``, by default only in development.

        A link holds a token that resets a password: whoever reads the log or the page could use it.
        Fine on a developer's machine without a mail server; never in production.
        """
        return self.show_links if self.show_links is not None else not self.https_only

    @property
    def cookie_name(self) -> str:
        """The session cookie's name: the middleware's default for these settings.

        ``__Host-session`` over HTTPS (a browser refuses one set by another host or over plain
        HTTP, so nobody can plant a cookie that shadows ours); ``session`` in plain-HTTP
        development, where a ``__Host-`` cookie (which must be ``Secure``) would be refused.
        """
        return "__Host-session" if self.https_only else "session"

    def session_keys(self) -> list[str]:
        """The keys for the middleware, or a fresh random one with a loud warning when none are set."""
        if self.keys:
            return list(self.keys)
        logger.warning(
            "\n%s\n INSECURE, DEVELOPMENT ONLY: %s is not set, so this process made up a random session key.\n"
            " Sessions end when it restarts, and no other process can open them.\n"
            " Set a real key:  export %s=$(python -m sealed_sessions keygen)\n%s",
            "!" * 100,
            KEYS_ENV,
            KEYS_ENV,
            "!" * 100,
        )
        return [generate_key()]

    def warn_if_insecure_transport(self) -> None:
        """Say loudly when cookies will travel over plain HTTP."""
        if not self.https_only:
            logger.warning(
                "%s=false: session cookies are sent without the Secure flag, over plain HTTP. "
                "Fine for http://127.0.0.1 development; behind HTTPS set %s=true.",
                HTTPS_ONLY_ENV,
                HTTPS_ONLY_ENV,
            )
