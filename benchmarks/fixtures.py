"""The fixed inputs every benchmark shares: keys, a typical session, and cookies that hold it.

The keys are not secrets: benchmarks never ship.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import itsdangerous

from sealed_sessions import Sealer

__all__ = [
    "EXTRA_KEYS",
    "IDLE_TIMEOUT",
    "KEY",
    "RICH_SESSION_DATA",
    "SESSION_DATA",
    "SESSION_LIFETIME",
    "STARLETTE_SECRET",
    "STARLETTE_SIGNER",
    "ours_cookie",
    "starlette_cookie",
    "starlette_seal",
]

KEY = "v0dJ8jL4q4fZ3-1xq8r8VbQ3b7nq3v9V0bXj2pXn0mQ"
EXTRA_KEYS = [
    base64.urlsafe_b64encode(hashlib.blake2b(b"benchmark key %d" % i, digest_size=32).digest()).decode().rstrip("=")
    for i in range(1, 16)
]
"""Fifteen more keys for a ring of 16, in ``keygen``'s format, the same in every process."""
STARLETTE_SECRET = "benchmark-secret-for-starlette-session-middleware"
STARLETTE_SIGNER = itsdangerous.TimestampSigner(STARLETTE_SECRET)
"""What Starlette's SessionMiddleware signs with."""
SESSION_DATA: dict[str, Any] = {"user_id": 123456, "csrf": "q3Jd7Zk1vYx2Lw9Pm4Nc8Rt6", "theme": "dark"}
"""A typical small session (about 80 bytes of JSON)."""
RICH_SESSION_DATA: dict[str, Any] = {
    **SESSION_DATA,
    "cart": [{"sku": "A-1042", "qty": 2}, {"sku": "B-7731", "qty": 1}],
    "_flash": [["info", "Added to your cart"]],
    "prefs": {"lang": "en", "tz": "Europe/Paris"},
}
"""The realistic case: a session that also holds a list and a dict (a cart, flash messages, preferences)."""
IDLE_TIMEOUT = 3600
"""The idle timeout of the "renewal due" rows."""
SESSION_LIFETIME = 14 * 24 * 60 * 60
"""How long the server-side competitors keep a session, as long as ours by default."""


def starlette_seal(data: dict[str, Any]) -> bytes:
    """What Starlette's SessionMiddleware does to the session: json.dumps, base64, sign."""
    return STARLETTE_SIGNER.sign(base64.b64encode(json.dumps(data).encode("utf-8")))


def starlette_cookie(data: dict[str, Any]) -> str:
    """A ``Cookie`` header value Starlette's SessionMiddleware (with STARLETTE_SECRET) accepts."""
    return "session=" + starlette_seal(data).decode("ascii")


def ours_cookie(data: dict[str, Any], *, last_active_ago: int = 0) -> str:
    """A ``Cookie`` header value sealed with KEY, ``last_active_ago`` seconds ago.

    For the benchmark apps, which serve plain HTTP (``https_only=False``): the cookie is ``session``.
    """
    sealer = Sealer(KEY, "session")
    then = int(time.time()) - last_active_ago
    return "session=" + sealer.seal(data, issued_at=then, expires_at=sealer.lifetime.expiry_for(then), last_active=then)
