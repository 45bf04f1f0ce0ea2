"""``python -m sealed_sessions``: make keys and look inside cookies. Never runs inside the app.

- ``keygen``: print a fresh random key (32 bytes, base64url) for ``secret_key``.
- ``inspect COOKIE``: open a cookie with the keys in ``$SEALED_SESSIONS_KEYS`` (comma-separated,
  newest first) and print its data and timestamps, or the reason it does not open. ``-`` reads
  the cookie from standard input. Every string value is redacted (only its length is shown)
  unless ``--show-secrets``: a session can hold tokens under any name. Whatever is printed has
  its control and formatting characters escaped (``\u001b``, ``\u202e``), so a session cannot
  drive the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ._cookie import DEFAULT_NAME
from ._errors import ConfigurationError, InvalidCookie
from ._keys import generate_key
from ._sealer import Sealer

__all__ = ["KEYS_ENV", "main"]

KEYS_ENV = "SEALED_SESSIONS_KEYS"


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "never"
    return f"{datetime.fromtimestamp(timestamp, UTC).isoformat()} ({timestamp})"


def _redacted(value: Any) -> Any:
    """``value`` with every string replaced by a placeholder that gives only its length."""
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, str):
        return f"<redacted: {len(value)} characters>"
    return value


def _safe_for_terminal(text: str) -> str:
    """``text`` with control, formatting and separator characters (C0, C1, bidi overrides) escaped."""
    return "".join(
        f"\\u{ord(c):04x}" if c not in "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text
    )


def _inspect(cookie: str, cookie_name: str, context: str, show_secrets: bool) -> int:
    keys = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    if not keys:
        print(f"error: set {KEYS_ENV} to the application's keys, comma-separated, newest first", file=sys.stderr)
        return 2
    if cookie == "-":  # from standard input: keeps the cookie out of `ps` and the shell history
        cookie = sys.stdin.read()
    try:
        opened = Sealer(keys, cookie_name, context=context).peek(cookie.strip())
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except InvalidCookie as exc:
        print(f"does not open: {exc.reason.value}", file=sys.stderr)
        return 1
    now = int(time.time())
    shown = json.dumps(opened.data if show_secrets else _redacted(opened.data), indent=2, ensure_ascii=False)
    print(_safe_for_terminal(shown))
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
    inspect.add_argument("--show-secrets", action="store_true", help="show string values instead of their lengths")
    inspect.add_argument(
        "--cookie-name", default=DEFAULT_NAME, help=f"the cookie's name (default: {DEFAULT_NAME}; plain HTTP: session)"
    )
    inspect.add_argument("--context", default="", help="the middleware's context label (default: none)")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        print(generate_key())
        return 0
    return _inspect(args.cookie, args.cookie_name, args.context, args.show_secrets)
