"""The plaintext inside the envelope: three timestamps and the session data as JSON.

Layout, version 1::

    issued_at    8 bytes  big-endian seconds since the epoch: when this session (login) began
    expires_at   8 bytes  absolute expiry in seconds, 0 for none (a browser-session cookie)
    last_active  8 bytes  when the cookie was last sealed: the idle timeout counts from here
    data         n bytes  a JSON object, UTF-8, compact, no NaN or Infinity; or, when sealed
                          with compression, the byte 0x00 then that JSON as a zlib stream

The JSON always starts with ``{``, so the 0x00 marker cannot be mistaken for data. Compression is
used only when asked for (``compress=True``) and only when it makes the data shorter; a compressed
payload opens whatever the setting, and decompresses to at most ``MAX_PLAINTEXT`` bytes.

JSON only, by construction: nothing here can build an object other than dict, list, str, int,
float, bool and None, so a pickle or marshal payload is just an unreadable payload.

Writing and reading apply the same rules (``check_json_value``), so whatever can be sealed opens
again, and whatever opens can be sealed again unchanged: strict UTF-8 (no BOM, no UTF-16), no
NaN, Infinity or overflowing numbers such as ``1e999``, no lone surrogates, at most ``MAX_DEPTH``
levels below a session key. Duplicate object keys are not refused (the last one wins).
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ._errors import InvalidCookie, Reason, SessionDataError

__all__ = [
    "MAX_DEPTH",
    "MAX_PLAINTEXT",
    "MAX_TIMESTAMP",
    "Opened",
    "check_json_value",
    "decode",
    "dump_data",
    "encode",
    "load_object",
    "plain_values_only",
]

MAX_DEPTH = 32
"""Deepest nesting a value stored under one session key may have: ``session["k"] = 1`` is depth
1, ``session["k"] = [1]`` is depth 2 (the list and the number inside it each count)."""

_HEADER = struct.Struct(">QQQ")
MAX_TIMESTAMP = 2**63 - 1
"""Largest timestamp a cookie carries (the header fields are unsigned, capped to fit int64)."""
MAX_PLAINTEXT = 256 * 1024
"""Largest JSON a compressed payload may expand to (a bound on decompression, not a quota)."""
_COMPRESSED = 0
_COMPRESSED_MARK = bytes([_COMPRESSED])
_WORTH_COMPRESSING = 128  # below this, zlib's own header and checksum eat any saving


@dataclass(slots=True)  # not frozen: a frozen dataclass costs half a microsecond per request to build
class Opened:
    """What a cookie holds once opened: its data and the lifetime facts sealed next to it.

    The one type for an opened cookie, whoever opened it (the middleware, ``testing.unseal``, the
    CLI). Timestamps are whole seconds since the epoch. Treat it as read-only.
    """

    data: dict[str, Any]
    """The session data, as decoded from the sealed JSON."""
    issued_at: int
    """When the session began (login, or the first write): ``max_age`` counts from here."""
    expires_at: int | None
    """The absolute expiry sealed in the cookie, or ``None`` for a browser-session cookie."""
    last_active: int
    """When the cookie was last sealed: the idle timeout counts from here."""
    sealed_with_current_key: bool
    """False when an older key of the ring sealed it (the middleware then reseals it)."""
    data_json: bytes = field(default=b"", repr=False, compare=False)
    """The data exactly as sealed, so an unchanged session is recognised without re-encoding."""
    key_id: bytes | None = field(default=None, compare=False)
    """The 4-byte id of the ring key that opened it (public: every cookie carries it; for a
    version 1 cookie, the id its key has now); ``None`` when it was not one of our cookies (a
    legacy cookie being migrated). Not compared: which key sealed it is not what it holds."""

    def with_data(self, data: dict[str, Any]) -> Opened:
        """The same cookie with ``data`` in place of its own (a schema migrated it): to be resealed."""
        return Opened(data, self.issued_at, self.expires_at, self.last_active, False, self.data_json, self.key_id)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf, which could never be sealed again
        raise ValueError("not a finite number")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Built once: json.dumps and json.loads with options build a new coder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _fast_encoder() -> Callable[[Any], str]:
    """``_ENCODER.encode``, the same text and the same errors, with less Python around CPython's C encoder.

    ``JSONEncoder.encode`` goes through ``iterencode`` and rebuilds its arguments on every call;
    this builds the C encoder directly, still once per call and with a fresh dict for its
    circular-reference check (a shared one would keep stale entries after a failed encoding).
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - an interpreter without the C accelerator
        return _ENCODER.encode
    default, basestring = _ENCODER.default, json.encoder.encode_basestring

    def encode(data: Any) -> str:
        return "".join(make({}, default, basestring, None, ":", ",", False, False, False)(data, 0))

    return encode


_encode = _fast_encoder()
_DECODER = json.JSONDecoder(parse_constant=_no_constants, parse_float=_finite_float)
_SCAN: Callable[[str, int], tuple[Any, int]] = cast(Any, _DECODER).scan_once  # the C scanner


def dump_data(data: Mapping[str, Any]) -> bytes:
    """Serialise session data the one way we always do (compact, UTF-8, key order kept)."""
    try:
        return _encode(data).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
        # Re-run the precise check to name the offending key; fall back to the generic message.
        for key, value in data.items():
            check_json_value(key, value)
        raise SessionDataError(f"session data cannot be stored as JSON: {type(exc).__name__}") from None


def encode(
    data_json: bytes, issued_at: int, expires_at: int | None, last_active: int, *, compress: bool = False
) -> bytes:
    """The plaintext for ``data_json``; with ``compress``, zlib-compressed when that is shorter."""
    header = _HEADER.pack(issued_at, expires_at or 0, last_active)
    if compress and len(data_json) >= _WORTH_COMPRESSING:
        packed = zlib.compress(data_json, 9)
        if len(packed) + 1 < len(data_json):
            return header + _COMPRESSED_MARK + packed
    return header + data_json


def _decompress(packed: bytes) -> bytes:
    """The JSON inside a compressed payload, or ``BAD_PAYLOAD`` (corrupt, or over ``MAX_PLAINTEXT``)."""
    inflater = zlib.decompressobj()
    try:
        data_json = inflater.decompress(packed, MAX_PLAINTEXT)
    except zlib.error:
        raise InvalidCookie(Reason.BAD_PAYLOAD) from None
    if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise InvalidCookie(Reason.BAD_PAYLOAD)  # truncated, too large, or trailing bytes
    return data_json


def decode(plaintext: bytes, *, sealed_with_current_key: bool, key_id: bytes | None = None) -> Opened:
    """Parse an authentic plaintext that the key ``key_id`` opened, or raise ``InvalidCookie(BAD_PAYLOAD)``."""
    if len(plaintext) < _HEADER.size + 2:
        raise InvalidCookie(Reason.BAD_PAYLOAD)
    issued_at, expires_at, last_active = _HEADER.unpack_from(plaintext)
    if (issued_at | expires_at | last_active) > MAX_TIMESTAMP:  # all ones: over it iff one of them is
        raise InvalidCookie(Reason.BAD_PAYLOAD)
    data_json = plaintext[_HEADER.size :]
    if data_json[0] == _COMPRESSED:
        data_json = _decompress(data_json[1:])
    data = load_object(data_json)
    return Opened(data, issued_at, expires_at or None, last_active, sealed_with_current_key, data_json, key_id)


def plain_values_only(data: dict[str, Any]) -> bool:
    """True when no value of ``data`` is a dict or a list.

    Such data can only change through the dict API (which marks a session modified), never by a
    nested write in place: a session of plain values that was not modified still matches its
    ``data_json``, so serialising it again can be skipped (the read-only hot path does no JSON).
    """
    for value in dict.values(data):
        if isinstance(value, dict | list):
            return False
    return True


def load_object(data_json: bytes) -> dict[str, Any]:
    """A JSON object read by the rules every session follows, or ``BAD_PAYLOAD``.

    Strict UTF-8, no NaN, Infinity or overflowing numbers, an object at the top, and (checked in
    full when the text shows an escape or deep nesting) no lone surrogates and at most
    ``MAX_DEPTH`` levels: whatever this returns can be sealed again unchanged.
    """
    try:
        # Decode first: json.loads(bytes) would also accept a BOM, UTF-16 and UTF-32.
        text = data_json.decode("utf-8")
        try:  # what _DECODER.decode does, without its two whitespace matches: we never write any
            data, end = _SCAN(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):  # whitespace around it, trailing data, or not JSON: the full rules decide
            data = _DECODER.decode(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidCookie(Reason.BAD_PAYLOAD) from None
    if not isinstance(data, dict):
        raise InvalidCookie(Reason.BAD_PAYLOAD)
    # The same rules as at write time: "\ud800" parses as a lone surrogate and deep nesting as
    # deep nesting, and either would make the session impossible to seal again. Both can only come
    # from a \u escape or from many brackets, which our encoder never writes for ordinary data,
    # so the full walk runs only when the text shows one of them (it keeps the read path cheap).
    suspicious = b"\\u" in data_json or data_json.count(b"[") + data_json.count(b"{") > MAX_DEPTH
    if suspicious and _problem(data, 0) is not None:
        raise InvalidCookie(Reason.BAD_PAYLOAD)
    return data


def check_json_value(key: object, value: object) -> None:
    """Raise :class:`SessionDataError`, naming ``key``, unless ``value`` round-trips as JSON.

    Accepts dict (with str keys), list, str, int, finite float, bool and None, nested at most
    ``MAX_DEPTH`` deep. Refuses tuples and sets (they would come back as lists, or not at all),
    non-string keys (JSON would turn them into strings), NaN and Infinity, lone surrogates (in
    keys too), and integers too long to print.
    """
    if not isinstance(key, str):
        raise SessionDataError(f"session keys must be str, got {type(key).__name__} ({key!r})")
    problem = _problem(key, 1) or _problem(value, 1)
    if problem is not None:
        raise SessionDataError(f"session[{key!r}] cannot be stored as JSON: {problem}")


def _problem(value: object, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            int.__repr__(value)  # how json prints it; refused past sys.get_int_max_str_digits()
        except ValueError:
            return "an integer with too many digits for JSON"
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
