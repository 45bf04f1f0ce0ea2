"""Password hashing with the standard library's scrypt, compared in constant time.

A hash is stored as ``scrypt$n$r$p$salt$digest`` (base64url), so the cost can rise later
without breaking existing hashes. Hashing runs in a worker thread: it takes tens of
milliseconds of CPU by design and must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

__all__ = ["MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "hash_password", "verify_password", "verify_unknown_user"]

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
_R, _P, _DKLEN, _SALT = 8, 1, 32, 16
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=_MAXMEM)


def _hash_sync(password: str, n: int) -> str:
    salt = secrets.token_bytes(_SALT)
    return f"scrypt${n}${_R}${_P}${_b64(salt)}${_b64(_scrypt(password, salt, n, _R, _P))}"


def _verify_sync(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:  # a malformed stored hash never matches
        return False
    return hmac.compare_digest(actual, expected)


async def hash_password(password: str, n: int = 2**14) -> str:
    """Hash ``password`` with a fresh random salt."""
    return await asyncio.to_thread(_hash_sync, password, n)


async def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``, compared in constant time."""
    return await asyncio.to_thread(_verify_sync, password, stored)


_DUMMY: dict[int, str] = {}


async def verify_unknown_user(password: str, n: int = 2**14) -> bool:
    """Spend the same time as a real check when the e-mail is unknown, so timing does not tell; always False."""
    if n not in _DUMMY:
        _DUMMY[n] = await hash_password(secrets.token_urlsafe(16), n)
    await verify_password(password, _DUMMY[n])
    return False
