"""``python -m sealed_sessions``: make keys and look inside cookies. Never runs inside the app.

- ``keygen``: print a fresh random key (32 bytes, base64url) for ``secret_key``.
- ``inspect COOKIE``: open a cookie with the keys in ``$SEALED_SESSIONS_KEYS`` (comma-separated,
  newest first) and print its data and timestamps, or the reason it does not open. ``-`` reads
  the cookie from standard input; values under keys naming a token, password or secret (such as
  the revocation token) are redacted unless ``--show-secrets``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ._errors import ConfigurationError, InvalidCookie
from ._keys import generate_key
from ._sealer import Sealer

__all__ = ["KEYS_ENV", "main"]

KEYS_ENV = "SEALED_SESSIONS_KEYS"


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "never"
    return f"{datetime.fromtimestamp(timestamp, UTC).isoformat()} ({timestamp})"


_SECRET_WORDS = ("token", "password", "secret")
"""Values under keys containing these words are shown as a placeholder unless --show-secrets."""


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "<redacted>" if any(w in k.lower() for w in _SECRET_WORDS) else _redacted(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _inspect(cookie: str, cookie_name: str, show_secrets: bool) -> int:
    keys = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    if not keys:
        print(f"error: set {KEYS_ENV} to the application's keys, comma-separated, newest first", file=sys.stderr)
        return 2
    if cookie == "-":  # from standard input: keeps the cookie out of `ps` and the shell history
        cookie = sys.stdin.read()
    try:
        opened = Sealer(keys, cookie_name).peek(cookie.strip())
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except InvalidCookie as exc:
        print(f"does not open: {exc.reason.value}", file=sys.stderr)
        return 1
    now = int(time.time())
    print(json.dumps(opened.data if show_secrets else _redacted(opened.data), indent=2, ensure_ascii=False))
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
    inspect.add_argument("cookie", help="the cookie value (without the name=), or - to read it from standard input")
    inspect.add_argument(
        "--show-secrets", action="store_true", help="show values under keys naming a token, password or secret"
    )
    inspect.add_argument("--cookie-name", default="session", help="the cookie's name (default: session)")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        print(generate_key())
        return 0
    return _inspect(args.cookie, args.cookie_name, args.show_secrets)
