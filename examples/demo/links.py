"""The links a real site would e-mail: "reset your password" and "verify your e-mail".

Each is a purpose-bound token of the library (``auth.issue_token`` / ``auth.redeem_token``): no
table of tokens, one ``SELECT`` to redeem, and single use because redeeming changes what the token
is bound to:

- a reset link is bound to ``password_hash``: setting the new password kills it (and every other
  reset link sent before), so it works once; it lives 30 minutes;
- a verification link is bound to ``email`` and ``email_verified``: verifying kills it, and so does
  a change of address (a link sent to the old address cannot verify the new one); it lives a day.

No mail server runs here. With ``DEMO_SHOW_LINKS`` (on in plain-HTTP development only), the link is
logged at INFO and shown on the page; otherwise only the fact that a link was made is logged,
without it (a reset link in a log is a password reset for whoever reads the log). The link is a
path, never built from the request's ``Host`` header: a forged ``Host`` would otherwise e-mail
the victim a link to the attacker's site (host-header poisoning). A real site builds it from its
configured public URL.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from sealed_sessions import TokenRefused
from sealed_sessions.fastapi import SessionAuth

from .accounts import AccountError, Accounts
from .models import User
from .settings import Settings

__all__ = [
    "INVALID_LINK",
    "LINK_SENT",
    "RESET",
    "RESET_BINDING",
    "RESET_LIFETIME",
    "VERIFICATION_SENT",
    "VERIFY",
    "VERIFY_BINDING",
    "VERIFY_LIFETIME",
    "check_link",
    "reset_password",
    "send_link",
    "verify_email",
]

logger = logging.getLogger("examples.demo")

RESET = "password_reset"
RESET_BINDING = (User.password_hash,)
RESET_LIFETIME = 30 * 60
VERIFY = "verify_email"
VERIFY_BINDING = (User.email, User.email_verified)
VERIFY_LIFETIME = 24 * 60 * 60

LINK_SENT = (
    "If an account uses that address, we have sent it a link to reset the password. It works once, for 30 minutes."
)
"""What every "forgot password" request is told, whether or not the address has an account."""
VERIFICATION_SENT = "We have sent a verification link to your address. It works for a day."
INVALID_LINK = "This link is invalid, has expired or was already used. Ask for a new one."
"""What every refused link is told, whatever the reason (the reason is in the log)."""

_PATHS = {RESET: "/reset", VERIFY: "/verify-email"}


def send_link(auth: SessionAuth[User], settings: Settings, user: User, purpose: str) -> str | None:
    """Make ``purpose``'s link for ``user`` and "send" it: the path to show, or ``None`` when links are not shown."""
    if purpose == RESET:
        token = auth.issue_token(user, RESET, expires_in=RESET_LIFETIME, bound_to=RESET_BINDING)
    else:
        token = auth.issue_token(user, VERIFY, expires_in=VERIFY_LIFETIME, bound_to=VERIFY_BINDING)
    link = f"{_PATHS[purpose]}?{urlencode({'token': token})}"
    if not settings.links_shown:
        logger.info("%s link made for user %s (a real site would e-mail it)", purpose, user.id)
        return None
    logger.info("%s link for user %s (DEMO_SHOW_LINKS, development only): %s", purpose, user.id, link)
    return link


async def check_link(auth: SessionAuth[User], db: AsyncSession, token: str, purpose: str) -> bool:
    """Whether ``token`` would redeem for ``purpose`` now (the page shows its form, or says the link is dead)."""
    binding = RESET_BINDING if purpose == RESET else VERIFY_BINDING
    try:
        await auth.redeem_token(db, token, purpose, bound_to=binding)
    except TokenRefused:
        return False
    return True


async def reset_password(auth: SessionAuth[User], accounts: Accounts, db: AsyncSession, token: str, new: str) -> None:
    """Redeem a reset link and set ``new`` as the password; every session of the user ends.

    The new hash and the rotated revocation token commit together. The link then no longer
    matches ``password_hash``: used once. :class:`AccountError` (safe to show) for a dead link or
    an unusable password.
    """
    try:
        user = await auth.redeem_token(db, token, RESET, bound_to=RESET_BINDING)
    except TokenRefused:
        raise AccountError(INVALID_LINK) from None
    await accounts.set_password(user, new)
    await auth.revoke(db, user)  # whoever knew the old password is logged out everywhere


async def verify_email(auth: SessionAuth[User], db: AsyncSession, token: str) -> User:
    """Redeem a verification link: the user's address is verified (committed), which kills the link."""
    try:
        user = await auth.redeem_token(db, token, VERIFY, bound_to=VERIFY_BINDING)
    except TokenRefused:
        raise AccountError(INVALID_LINK) from None
    user.email_verified = True
    await db.commit()
    return user


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]*")


class RedactLinkTokens(logging.Filter):
    """Redact ``token=...`` from uvicorn's access records: a reset link in a log is a password reset."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Install :class:`RedactLinkTokens` on uvicorn's access logger, once."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactLinkTokens) for f in access.filters):
        access.addFilter(RedactLinkTokens())
