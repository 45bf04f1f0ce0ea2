"""Password hashing with the standard library's scrypt, compared in constant time, a few at a time.

A hash is stored as ``scrypt$n$r$p$salt$digest`` (base64url). New hashes use N=2**17, r=8, p=1
(128 MiB and about half a second of one core each: OWASP's current advice). A stored hash keeps
the parameters it was made with, so hashes made at a lower cost still verify, and
:meth:`PasswordHasher.needs_rehash` says when to replace one (at the next successful login).

Hashing runs in worker threads, at most ``concurrency`` at once per process (an
``asyncio.Semaphore``): twenty wrong passwords sent together cannot take every core, nor 20 x
128 MiB. A request that finds every slot busy waits up to ``queue_wait`` seconds for one, then
gets :class:`HasherBusy` (the app answers 503 with ``Retry-After``) instead of queueing without
bound.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from .errors import TryLater

__all__ = [
    "DEFAULT_SCRYPT_N",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "HasherBusy",
    "PasswordHasher",
]

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
DEFAULT_SCRYPT_N = 2**17
"""scrypt's CPU/memory cost for new hashes: 128 * N * r bytes = 128 MiB with r=8."""
MAX_SCRYPT_N = 2**17
"""The largest N this module makes or checks; ``_MAXMEM`` is sized for it."""
HASH_CONCURRENCY = 4
"""Password hashes running at once per process (at most 4 x 128 MiB of memory)."""
HASH_QUEUE_WAIT = 2.0
"""Seconds a request waits for a free hashing slot before it is told to retry."""
BUSY_RETRY_AFTER = 2

T = TypeVar("T")

_R, _P, _DKLEN, _SALT = 8, 1, 32, 16
_MAXMEM = 128 * _R * (MAX_SCRYPT_N + 2 + _P) + 1024 * 1024
"""OpenSSL needs 128 * r * (N + 2 + p) bytes; 1 MiB of margin above that for N = MAX_SCRYPT_N."""


class HasherBusy(TryLater):
    """Every hashing slot stayed busy for ``queue_wait`` seconds: answer 503 and ask to retry."""

    status_code = 503

    def __init__(self) -> None:
        super().__init__("The server is busy. Try again in a moment.", BUSY_RETRY_AFTER)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=_MAXMEM)


def _hash_sync(password: str, n: int) -> str:
    salt = secrets.token_bytes(_SALT)
    return f"scrypt${n}${_R}${_P}${_b64(salt)}${_b64(_scrypt(password, salt, n, _R, _P))}"


def _parameters(stored: str) -> tuple[int, int, int] | None:
    """``(n, r, p)`` of a stored hash, or ``None`` when it is not one of ours."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(x.isdigit() for x in parts[1:4]):
        return None
    return int(parts[1]), int(parts[2]), int(parts[3])


def _verify_sync(password: str, stored: str) -> bool:
    parameters = _parameters(stored)
    if parameters is None or parameters[0] > MAX_SCRYPT_N:  # not ours, or costlier than we allow
        return False
    n, r, p = parameters
    salt, digest = stored.split("$")[4:]
    try:
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), n, r, p)
    except ValueError:  # a malformed stored hash never matches
        return False
    return hmac.compare_digest(actual, expected)


class PasswordHasher:
    """Hash and check passwords at cost ``n``, at most ``concurrency`` at once (one per application)."""

    n: int
    concurrency: int
    queue_wait: float
    queued: int

    def __init__(
        self, n: int = DEFAULT_SCRYPT_N, *, concurrency: int = HASH_CONCURRENCY, queue_wait: float = HASH_QUEUE_WAIT
    ) -> None:
        if n < 2 or n & (n - 1) or n > MAX_SCRYPT_N:
            raise ValueError(f"scrypt n must be a power of two up to {MAX_SCRYPT_N}, got {n}")
        if concurrency < 1 or queue_wait < 0:
            raise ValueError("concurrency must be at least 1 and queue_wait at least 0")
        self.n = n
        self.concurrency = concurrency
        self.queue_wait = queue_wait
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy: str | None = None
        self.queued = 0
        """Requests waiting for a hashing slot right now."""

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``concurrency`` hashing slots; :class:`HasherBusy` after ``queue_wait`` seconds."""
        await self._acquire()
        try:
            yield
        finally:
            self._slots.release()

    async def hash(self, password: str) -> str:
        """Hash ``password`` with a fresh random salt at this hasher's cost."""
        return await self._in_thread(_hash_sync, password, self.n)

    async def verify(self, password: str, stored: str) -> bool:
        """Whether ``password`` matches ``stored`` (at the cost it was made with), in constant time."""
        return await self._in_thread(_verify_sync, password, stored)

    async def _acquire(self) -> None:
        if self._slots.locked() and self.queue_wait == 0:
            raise HasherBusy
        self.queued += 1
        try:
            async with asyncio.timeout(self.queue_wait):
                await self._slots.acquire()
        except TimeoutError:
            raise HasherBusy from None
        finally:
            self.queued -= 1

    async def _in_thread(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` in a worker thread, holding a slot until the thread is done.

        The slot is released by the thread's own completion, not by the request: a client that
        disconnects (cancelling its request) cannot free a slot while its hash still runs.
        """
        await self._acquire()
        work = asyncio.get_running_loop().run_in_executor(None, function, *args)
        work.add_done_callback(lambda _: self._slots.release())
        return await asyncio.shield(work)

    async def verify_unknown_user(self, password: str) -> bool:
        """Spend the time of a real check when the e-mail is unknown, so timing does not tell; always False."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        await self.verify(password, self._dummy)
        return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made more cheaply than this hasher would make it now."""
        parameters = _parameters(stored)
        return parameters is None or parameters[0] < self.n or parameters[1:] != (_R, _P)
