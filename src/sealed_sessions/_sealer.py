"""The sealer: the one place where a cookie value is opened into session data, and sealed back.

::

    open:  value -> Envelope.open (keys, MAC) -> payload.decode (timestamps, JSON) -> Lifetime.rejection
    seal:  data  -> payload.dump_data -> payload.encode -> Envelope.seal (current key) -> value

The middleware, :mod:`sealed_sessions.testing`, the command line, the fuzz target and the
benchmarks all go through a :class:`Sealer`, so the recipe exists once.

What you get: a value opens only under the keys, cookie name and format it was sealed for, and
only while the timestamps sealed inside it say it is valid (see :mod:`._lifetime`). Every way a
value can fail raises :class:`InvalidCookie` with a :class:`Reason`; nothing else escapes ``open``.

What you do not get: protection against replay of a value that is still valid (that is the
revocation dependency's job), or secrecy of the data's length.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._cookie import DEFAULT_NAME
from ._envelope import MAX_COOKIE_VALUE, Envelope
from ._errors import ConfigurationError, InvalidCookie, SessionTooLarge
from ._keys import KeyInput, KeyRing
from ._lifetime import Lifetime
from ._payload import Opened, check_json_value, decode, dump_data, encode

__all__ = ["DEFAULT_MAX_AGE", "MAX_CONTEXT", "Sealer"]

DEFAULT_MAX_AGE = 14 * 24 * 60 * 60
"""Fourteen days in seconds: the default absolute lifetime, as in Starlette."""
MAX_CONTEXT = 255
"""Longest ``context`` label, in UTF-8 bytes."""


class Sealer:
    """Opens and seals the values of one cookie, under one key ring and one expiry policy.

    Build it once (key parsing and subkey derivation happen here, and refuse bad keys with a
    :class:`ConfigurationError`), then call :meth:`open` and :meth:`seal` as often as you like,
    from any number of tasks: it holds no per-call state.
    """

    __slots__ = ("_envelope", "compress", "context", "cookie_name", "keys", "lifetime", "max_length")

    keys: KeyRing
    """The key ring: the first key seals, every key opens."""
    cookie_name: str
    """The cookie name the subkeys are bound to: a value opens only under the name it was sealed for."""
    context: str
    """The application or purpose label bound into the subkeys (empty by default): a value sealed
    under one context never opens under another, even with the same key and cookie name."""
    lifetime: Lifetime
    """The expiry policy :meth:`open` applies."""
    max_length: int
    """Longest value sealed or opened (``MAX_COOKIE_VALUE`` unless a session may span cookies)."""
    compress: bool
    """Whether :meth:`seal` compresses the data when that makes it shorter (see the README on
    what compression reveals through length)."""

    def __init__(
        self,
        secret_key: KeyInput,
        cookie_name: str = DEFAULT_NAME,
        *,
        max_age: int | None = DEFAULT_MAX_AGE,
        idle_timeout: int | None = None,
        context: str = "",
        max_length: int = MAX_COOKIE_VALUE,
        compress: bool = False,
    ) -> None:
        if not _valid_context(context):
            raise ConfigurationError(f"context must be a str of at most {MAX_CONTEXT} UTF-8 bytes, got {context!r}")
        self.keys = KeyRing(secret_key)
        self.cookie_name = cookie_name
        self.context = context
        self.lifetime = Lifetime(max_age, idle_timeout)
        self.max_length = max_length
        self.compress = compress
        self._envelope = Envelope(self.keys, cookie_name, context, max_length=max_length)

    def __repr__(self) -> str:
        return f"<Sealer {self.cookie_name!r} context={self.context!r}: {len(self.keys)} key(s), {self.lifetime}>"

    def open(self, value: str, now: int) -> Opened:
        """The session in ``value`` if it is authentic and valid at ``now``; else :class:`InvalidCookie`."""
        plaintext, key_id, current = self._envelope.open_with_key_id(value)  # as peek(), one call less
        opened = decode(plaintext, sealed_with_current_key=current, key_id=key_id)
        reason = self.lifetime.rejection(opened, now)
        if reason is not None:
            raise InvalidCookie(reason)
        return opened

    def peek(self, value: str) -> Opened:
        """The session in an authentic ``value`` without judging its expiry: for debugging and tests.

        Raises :class:`InvalidCookie` for anything that is not authentic or not readable. Never use
        it to decide whether a request is logged in: an expired session opens here.
        """
        plaintext, key_id, current = self._envelope.open_with_key_id(value)
        return decode(plaintext, sealed_with_current_key=current, key_id=key_id)

    def seal(
        self,
        data: Mapping[str, Any],
        *,
        issued_at: int,
        expires_at: int | None,
        last_active: int,
        nonce: bytes | None = None,
    ) -> str:
        """A cookie value holding ``data``, started at ``issued_at``, last active (the idle clock) at ``last_active``.

        Raises :class:`SessionDataError` for data that is not JSON and :class:`SessionTooLarge`
        for a value longer than any cookie that opens. ``nonce`` is for known-answer tests only.
        """
        for key, value in data.items():
            check_json_value(key, value)  # json would quietly turn a nested tuple into a list
        return self.seal_json(
            dump_data(data), issued_at=issued_at, expires_at=expires_at, last_active=last_active, nonce=nonce
        )

    def seal_json(
        self,
        data_json: bytes,
        *,
        issued_at: int,
        expires_at: int | None,
        last_active: int,
        nonce: bytes | None = None,
    ) -> str:
        """:meth:`seal` for data already serialised by the rules of :mod:`._payload` (no check here)."""
        plaintext = encode(data_json, issued_at, expires_at, last_active, compress=self.compress)
        value = self._envelope.seal(plaintext, nonce=nonce)
        if len(value) > self.max_length:
            raise SessionTooLarge(len(value), self.max_length, self.cookie_name)
        return value


def _valid_context(context: object) -> bool:
    """A str that encodes as UTF-8 (no lone surrogates) in at most ``MAX_CONTEXT`` bytes."""
    if not isinstance(context, str):
        return False
    try:
        return len(context.encode("utf-8")) <= MAX_CONTEXT
    except UnicodeEncodeError:
        return False
