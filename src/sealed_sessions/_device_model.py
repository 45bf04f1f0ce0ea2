"""Per-device sessions: the table that holds one row per login, and what a row may say.

A device row is created at login and names the device's session: a random public id (128 bits,
for URLs such as ``DELETE /api/devices/{id}``), the SHA-256 of a 256-bit device secret that only
the sealed cookie holds, the owning user, when it logged in, when it was last seen, its absolute
expiry and a short summary of its browser and OS. The check then proves, in the one ``SELECT``
that loads the user, that the cookie's device still exists, belongs to that user, holds that
secret and has not expired.

Guaranteed: the table alone lets nobody forge or replay a session: it holds no secret a cookie
needs, only its hash, and every cookie is sealed besides. Ids and secrets come from
:mod:`secrets`, never a counter. No IP address is stored unless the application asks.

Not guaranteed: ``last_seen_at`` is approximate (written at most once per ``seen_interval`` per
device, never on an ordinary request), and the user-agent summary is what the browser claimed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ._columns import exact_string

__all__ = [
    "DEVICE_ID_BYTES",
    "DEVICE_SECRET_BYTES",
    "USER_AGENT_MAX_LENGTH",
    "DeviceInfo",
    "DeviceSessionMixin",
    "hash_device_secret",
    "new_device_id",
    "new_device_secret",
    "summarize_user_agent",
]

DEVICE_ID_BYTES = 16
"""Random bytes in a device id: 128 bits, as 22 characters of base64url."""
DEVICE_SECRET_BYTES = 32
"""Random bytes in a device secret: 256 bits, as 43 characters of base64url, kept only in the cookie."""
USER_AGENT_MAX_LENGTH = 64
"""Longest user-agent summary stored."""
DEVICE_ID_MAX_LENGTH = 32
SECRET_HASH_LENGTH = 64


def new_device_id() -> str:
    """A fresh public device id: 16 bytes from the OS CSPRNG, unpadded base64url."""
    return secrets.token_urlsafe(DEVICE_ID_BYTES)


def new_device_secret() -> str:
    """A fresh device secret: 32 bytes from the OS CSPRNG, unpadded base64url."""
    return secrets.token_urlsafe(DEVICE_SECRET_BYTES)


def hash_device_secret(secret: str) -> str:
    """What the table stores of a device secret: SHA-256, 64 hex digits.

    A plain hash is enough: the secret is 256 random bits, so there is nothing to guess.
    """
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class DeviceSessionMixin:
    """Adds the device-session columns to a declarative model; the application adds ``user_id``.

    ::

        class Device(DeviceSessionMixin, Base):
            __tablename__ = "user_devices"
            user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)

    ``user_id`` must reference the user model's primary key with ``ondelete="CASCADE"``, so a
    deleted user's devices go with it (on SQLite, enable foreign keys: see
    :func:`sealed_sessions.sqlalchemy.enable_sqlite_foreign_keys`). Timestamps are whole seconds
    since the epoch, from the same clock as the sessions.
    """

    id: Mapped[str] = mapped_column(exact_string(DEVICE_ID_MAX_LENGTH), primary_key=True, default=new_device_id)
    """Public, random, never a counter."""
    secret_hash: Mapped[str] = mapped_column(exact_string(SECRET_HASH_LENGTH), nullable=False)
    """SHA-256 of the device secret sealed in the cookie."""
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    """When this device logged in."""
    last_seen_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    """When this device was last seen (approximate: see the module docstring)."""
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    """Absolute expiry: the row never matches from this second on, and the purge removes it."""
    user_agent: Mapped[str] = mapped_column(String(USER_AGENT_MAX_LENGTH), nullable=False, default="")
    """A short browser and OS summary, such as ``Firefox on Linux``."""
    ip_address: Mapped[str | None] = mapped_column(String(45), nullable=True, default=None)
    """The address at login, only when the application asks (``record_ip=True``)."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One device as the user may see it (never its secret or hash)."""

    id: str
    created_at: int
    last_seen_at: int
    expires_at: int
    user_agent: str
    ip_address: str | None
    current: bool
    """This is the device of the request that asked."""


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def summarize_user_agent(header: str | None) -> str:
    """``"Browser on OS"`` from a User-Agent header, or a sanitised prefix of it when unknown.

    Always printable ASCII of at most ``USER_AGENT_MAX_LENGTH`` characters: the header is
    attacker-controlled and ends up on a page and in a database.
    """
    text = _PRINTABLE.sub("", header or "").strip()
    if not text:
        return "Unknown device"
    browser = next((name for token, name in _BROWSERS if token in text), None)
    system = next((name for token, name in _SYSTEMS if token in text), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system or ""
    return text[:USER_AGENT_MAX_LENGTH]
