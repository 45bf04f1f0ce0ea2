"""The plaintext inside the envelope: three timestamps and the session data as JSON.

Layout, version 1::

    issued_at    8 bytes  big-endian seconds since the epoch: when this session (login) began
    expires_at   8 bytes  absolute expiry in seconds, 0 for none (a browser-session cookie)
    last_active  8 bytes  when the cookie was last sealed: the idle timeout counts from here
    data         n bytes  a JSON object, UTF-8, compact, no NaN or Infinity

JSON only, by construction: nothing here can build an object other than dict, list, str, int,
float, bool and None, so a pickle or marshal payload is just an unreadable payload.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidCookie, Reason, SessionDataError

__all__ = ["MAX_DEPTH", "Payload", "check_json_value", "decode", "dump_data", "encode"]

MAX_DEPTH = 32
"""Deepest nesting of lists and objects a session may hold."""

_HEADER = struct.Struct(">QQQ")
_MAX_TIMESTAMP = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Payload:
    """What a cookie holds once opened."""

    data: dict[str, Any]
    data_json: bytes
    issued_at: int
    expires_at: int | None
    last_active: int


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth_ok(value: Any, depth: int) -> bool:
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_depth_ok(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_depth_ok(v, depth + 1) for v in value)
    return True


def dump_data(data: Mapping[str, Any]) -> bytes:
    """Serialise session data the one way we always do (compact, UTF-8, key order kept)."""
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
        # Re-run the precise check to name the offending key; fall back to the generic message.
        for key, value in data.items():
            check_json_value(key, value)
        raise SessionDataError(f"session data cannot be stored as JSON: {type(exc).__name__}") from None


def encode(data_json: bytes, issued_at: int, expires_at: int | None, last_active: int) -> bytes:
    return _HEADER.pack(issued_at, expires_at or 0, last_active) + data_json


def decode(plaintext: bytes) -> Payload:
    """Parse an authentic plaintext, or raise :class:`InvalidCookie` with ``BAD_PAYLOAD``."""
    if len(plaintext) < _HEADER.size + 2:
        raise InvalidCookie(Reason.BAD_PAYLOAD)
    issued_at, expires_at, last_active = _HEADER.unpack_from(plaintext)
    if issued_at > _MAX_TIMESTAMP or expires_at > _MAX_TIMESTAMP or last_active > _MAX_TIMESTAMP:
        raise InvalidCookie(Reason.BAD_PAYLOAD)
    data_json = plaintext[_HEADER.size :]
    try:
        data = json.loads(data_json, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidCookie(Reason.BAD_PAYLOAD) from None
    if not isinstance(data, dict) or not _depth_ok(data, 1):
        raise InvalidCookie(Reason.BAD_PAYLOAD)
    return Payload(data, data_json, issued_at, expires_at or None, last_active)


def check_json_value(key: object, value: object) -> None:
    """Raise :class:`SessionDataError`, naming ``key``, unless ``value`` round-trips as JSON.

    Accepts dict (with str keys), list, str, int, finite float, bool and None, nested at most
    ``MAX_DEPTH`` deep. Refuses tuples and sets (they would come back as lists, or not at all),
    non-string keys (JSON would turn them into strings), NaN and Infinity, and lone surrogates.
    """
    if not isinstance(key, str):
        raise SessionDataError(f"session keys must be str, got {type(key).__name__} ({key!r})")
    problem = _problem(value, 1)
    if problem is not None:
        raise SessionDataError(f"session[{key!r}] cannot be stored as JSON: {problem}")


def _problem(value: object, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a string holds a lone surrogate, which is not valid UTF-8"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a JSON number"
    if isinstance(value, list):
        for item in value:
            problem = _problem(item, depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"object keys must be str, got {type(k).__name__} ({k!r})"
            problem = _problem(k, depth) or _problem(v, depth + 1)
            if problem is not None:
                return problem
        return None
    return f"{type(value).__name__} is not a JSON type (use dict, list, str, int, float, bool or None)"
