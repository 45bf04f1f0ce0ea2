"""The demo's tables: users (with the revocation token column from ``SessionTokenMixin``) and one
row per logged-in device (``DeviceSessionMixin``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, String, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions.sqlalchemy import DeviceSessionMixin, SessionTokenMixin

__all__ = ["Base", "Device", "User"]


class Base(DeclarativeBase):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


class User(SessionTokenMixin, Base):
    """A person who can log in. ``session_token`` (from the mixin) is what revocation rotates."""

    __tablename__ = "demo_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    email_verified: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Set by redeeming a "verify your e-mail" link (see :mod:`.links`); a changed address is unverified."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Device(DeviceSessionMixin, Base):
    """One login of a user: a browser or app, listed on the devices page and ended one by one.

    The mixin holds the id, the SHA-256 of the device secret sealed in the cookie, the times and a
    user-agent summary; a deleted user's devices go with it (``ON DELETE CASCADE``).
    """

    __tablename__ = "demo_devices"

    user_id: Mapped[int] = mapped_column(ForeignKey("demo_users.id", ondelete="CASCADE"), index=True)
