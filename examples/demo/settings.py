"""The demo's settings, read from the environment by the application (never by the library).

| variable | meaning | default |
|---|---|---|
| ``DATABASE_URL`` | SQLAlchemy async URL (``postgresql+asyncpg://...``) | ``sqlite+aiosqlite:///demo.db`` |
| ``SEALED_SESSIONS_KEYS`` | session keys, comma-separated, newest first | a random key per process (dev only) |
| ``DEMO_HTTPS_ONLY`` | ``true`` behind HTTPS (cookies get ``Secure``) | ``false`` (plain-HTTP development) |
| ``DEMO_INSTANCE_NAME`` | the name shown in every page footer and ``X-Served-By`` | the host name |
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from sealed_sessions import generate_key

__all__ = ["DATABASE_URL_ENV", "HTTPS_ONLY_ENV", "INSTANCE_NAME_ENV", "KEYS_ENV", "Settings"]

logger = logging.getLogger("examples.demo")

KEYS_ENV = "SEALED_SESSIONS_KEYS"
"""Same variable as ``python -m sealed_sessions inspect`` reads."""
DATABASE_URL_ENV = "DATABASE_URL"
HTTPS_ONLY_ENV = "DEMO_HTTPS_ONLY"
INSTANCE_NAME_ENV = "DEMO_INSTANCE_NAME"

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
    keys: tuple[str, ...] = ()
    """Session keys, newest first. Empty: a random key for this process only (development)."""
    https_only: bool = False
    """The demo's default is plain-HTTP development; deployments behind HTTPS must set it."""
    instance_name: str = field(default_factory=socket.gethostname)
    scrypt_n: int = 2**14
    """scrypt CPU/memory cost for new password hashes (16 MiB, tens of milliseconds)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the settings from environment variables (see the module docstring)."""
        keys = tuple(k.strip() for k in environ.get(KEYS_ENV, "").split(",") if k.strip())
        return cls(
            database_url=environ.get(DATABASE_URL_ENV, "").strip() or DEFAULT_DATABASE_URL,
            keys=keys,
            https_only=_parse_bool(HTTPS_ONLY_ENV, environ.get(HTTPS_ONLY_ENV, "false")),
            instance_name=environ.get(INSTANCE_NAME_ENV, "").strip() or socket.gethostname(),
        )

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
