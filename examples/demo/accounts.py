"""What the HTML pages and the JSON API share: register, authenticate, change a password."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .models import User
from .passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
    verify_password,
    verify_unknown_user,
)

__all__ = ["AccountError", "EmailTaken", "authenticate", "change_password", "normalize_email", "register"]


class AccountError(ValueError):
    """Input a person can fix; the message is safe to show."""


class EmailTaken(AccountError):
    """Another account already uses this e-mail address."""


def normalize_email(email: str) -> str:
    """Trimmed and lower-cased; a minimal shape check (one ``@``, a dot after it, at most 254 characters)."""
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or "@" in domain or len(value) > 254 or any(c.isspace() for c in value):
        raise AccountError("Enter a valid e-mail address.")
    return value


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Use a password of at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"Use a password of at most {MAX_PASSWORD_LENGTH} characters.")


async def register(db: AsyncSession, email: str, password: str, *, scrypt_n: int) -> User:
    """Create and commit a user; :class:`EmailTaken` when the address is in use."""
    address = normalize_email(email)
    check_new_password(password)
    user = User(email=address, password_hash=await hash_password(password, scrypt_n))
    db.add(user)
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise EmailTaken("An account with this e-mail address already exists.") from None
    return user


async def authenticate(db: AsyncSession, email: str, password: str, *, scrypt_n: int) -> User | None:
    """The user with this e-mail and password, or ``None``; as slow for an unknown address as a known one."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    address = email.strip().lower()
    user = (await db.execute(select(User).where(User.email == address))).scalar_one_or_none()
    if user is None:
        await verify_unknown_user(password, scrypt_n)
        return None
    return user if await verify_password(password, user.password_hash) else None


async def change_password(user: User, current: str, new: str, *, scrypt_n: int) -> None:
    """Set a new password hash on ``user`` (not committed); :class:`AccountError` when ``current`` is wrong."""
    if len(current) > MAX_PASSWORD_LENGTH or not await verify_password(current, user.password_hash):
        raise AccountError("The current password is wrong.")
    check_new_password(new)
    user.password_hash = await hash_password(new, scrypt_n)
