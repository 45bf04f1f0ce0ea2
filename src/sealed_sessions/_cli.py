"""``python -m sealed_sessions``: make keys and look inside cookies. Never runs inside the app.

- ``keygen``: print a fresh random key (32 bytes, base64url) for ``secret_key``.
- ``inspect COOKIE``: open a cookie with the keys in ``$SEALED_SESSIONS_KEYS`` (comma-separated,
  newest first) and print its data and timestamps, or the reason it does not open.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from ._errors import ConfigurationError, InvalidCookie
from ._keys import generate_key
from .testing import unseal

__all__ = ["KEYS_ENV", "main"]

KEYS_ENV = "SEALED_SESSIONS_KEYS"


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "never"
    return f"{datetime.fromtimestamp(timestamp, UTC).isoformat()} ({timestamp})"


def _inspect(cookie: str, cookie_name: str) -> int:
    keys = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    if not keys:
        print(f"error: set {KEYS_ENV} to the application's keys, comma-separated, newest first", file=sys.stderr)
        return 2
    try:
        opened = unseal(keys, cookie.strip(), session_cookie=cookie_name)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except InvalidCookie as exc:
        print(f"does not open: {exc.reason.value}", file=sys.stderr)
        return 1
    now = int(time.time())
    print(json.dumps(opened.data, indent=2, ensure_ascii=False))
    print(f"issued at:   {_when(opened.issued_at)}")
    print(
        f"expires at:  {_when(opened.expires_at)}"
        + (" (expired)" if opened.expires_at is not None and now >= opened.expires_at else "")
    )
    print(f"last active: {_when(opened.last_active)}")
    print("key:         " + ("current" if opened.sealed_with_current_key else "older key in the ring"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sealed_sessions", description=(__doc__ or "").split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("keygen", help="print a fresh random key")
    inspect = commands.add_parser("inspect", help=f"open a cookie with the keys in ${KEYS_ENV}")
    inspect.add_argument("cookie", help="the cookie value (without the name=)")
    inspect.add_argument("--cookie-name", default="session", help="the cookie's name (default: session)")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        print(generate_key())
        return 0
    return _inspect(args.cookie, args.cookie_name)
