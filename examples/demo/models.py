"""The demo's one table: users, with the revocation token column from ``SessionTokenMixin``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions.sqlalchemy import SessionTokenMixin

__all__ = ["Base", "User"]


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
