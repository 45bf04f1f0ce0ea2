"""What the HTML pages and the JSON API share: register, authenticate, change a password.

:class:`Accounts` (one per application) puts every password check behind the login throttle and
every hash behind the hasher's concurrency limit. Registration answers the same whether or not
the address already has an account; login answers the same for an unknown address and a wrong
password, after the same amount of work.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .models import User
from .passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, HasherBusy, PasswordHasher
from .throttle import LoginThrottle

__all__ = ["REGISTERED", "AccountError", "Accounts", "normalize_email"]

REGISTERED = (
    "Thank you. Log in with your e-mail address and password. If the address already had an account, "
    "nothing about it has changed. (A real site would e-mail you a link first.)"
)
"""What every accepted registration is told, new address or not."""


class AccountError(ValueError):
    """Input a person can fix; the message is safe to show."""


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


class Accounts:
    """The account actions, with this application's password hasher and login throttle."""

    hasher: PasswordHasher
    throttle: LoginThrottle

    def __init__(self, hasher: PasswordHasher, throttle: LoginThrottle) -> None:
        self.hasher = hasher
        self.throttle = throttle

    async def register(self, db: AsyncSession, email: str, password: str) -> None:
        """Create and commit a user, unless the address is taken: then change nothing and say nothing.

        Both cases hash the password once, so they take the same time. A real application would
        now send an e-mail: a confirmation link to a new address, a "you already have an account"
        note to a taken one. :class:`AccountError` only for input a person can fix.
        """
        address = normalize_email(email)
        check_new_password(password)
        db.add(User(email=address, password_hash=await self.hasher.hash(password)))
        try:
            await db.commit()
        except IntegrityError:  # the address has an account: leave it alone
            await db.rollback()

    async def authenticate(self, db: AsyncSession, email: str, password: str, *, client: str | None) -> User | None:
        """The user with this e-mail and password, or ``None``; throttled per account and per ``client`` address.

        Raises :class:`~.throttle.TooManyAttempts` before any hashing once a limit is reached, and
        :class:`~.passwords.HasherBusy` when no hashing slot frees up. A hash made at a lower
        cost than today's is replaced after the password checks out.
        """
        self.throttle.check(email, client)
        user = None
        if len(password) <= MAX_PASSWORD_LENGTH:
            address = email.strip().lower()
            user = (await db.execute(select(User).where(User.email == address))).scalar_one_or_none()
            if user is None:
                await self.hasher.verify_unknown_user(password)
            elif not await self.hasher.verify(password, user.password_hash):
                user = None
        if user is None:
            self.throttle.failed(email, client)
            return None
        self.throttle.succeeded(email)
        if self.hasher.needs_rehash(user.password_hash):
            try:
                user.password_hash = await self.hasher.hash(password)
            except HasherBusy:  # the old hash still works: upgrade at the next login
                return user
            await db.commit()
        return user

    async def user_with_email(self, db: AsyncSession, email: str) -> User | None:
        """The user with this e-mail address, or ``None`` (a malformed address has none)."""
        try:
            address = normalize_email(email)
        except AccountError:
            return None
        user: User | None = (await db.execute(select(User).where(User.email == address))).scalar_one_or_none()
        return user

    async def set_password(self, user: User, new: str) -> None:
        """Set a new password hash on ``user`` (not committed), no current password asked: after a reset link."""
        check_new_password(new)
        user.password_hash = await self.hasher.hash(new)

    async def change_password(self, user: User, current: str, new: str, *, client: str | None) -> None:
        """Set a new password hash on ``user`` (not committed); :class:`AccountError` when ``current`` is wrong.

        A wrong current password counts against the login throttle, like a failed login.
        """
        self.throttle.check(user.email, client)
        if len(current) > MAX_PASSWORD_LENGTH or not await self.hasher.verify(current, user.password_hash):
            self.throttle.failed(user.email, client)
            raise AccountError("The current password is wrong.")
        self.throttle.succeeded(user.email)
        check_new_password(new)
        user.password_hash = await self.hasher.hash(new)
