"""Keys: parsing what the application passes in, refusing weak ones, and deriving subkeys.

A key ring is an ordered list of master keys. The first seals; every key opens. Each master key
has a 4-byte key id that the envelope carries, so opening goes straight to the right key: the
cost of opening does not grow with the number of keys in the ring.

Master keys are never used directly. Each cookie name gets its own subkey::

    subkey = BLAKE2b-256(key=master, data=cookie_name, person=b"sealed-sess:v1")

so a value sealed for one cookie name never opens under another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from starlette.datastructures import Secret

from ._errors import ConfigurationError

__all__ = ["KEY_ID_SIZE", "KEY_SIZE", "KeyInput", "KeyRing", "generate_key"]

KEY_SIZE = 32
"""Bytes in a key: 256 bits, the size of an XSalsa20-Poly1305 key."""
KEY_ID_SIZE = 4
"""Bytes of the key id carried in every cookie."""
MIN_PASSPHRASE_LENGTH = 32
"""Shortest text secret accepted; it must also use at least MIN_DISTINCT_CHARACTERS characters."""
MIN_DISTINCT_CHARACTERS = 10
MIN_DISTINCT_BYTES = 16
"""A random 32-byte key has about 30 distinct byte values; fewer than 16 means it is not random."""

_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")
_PASSPHRASE_PERSON = b"sealed-pass:v1"
_KEY_ID_PERSON = b"sealed-kid:v1"
_SUBKEY_PERSON = b"sealed-sess:v1"

_HOW_TO = (
    "Generate a key with `python -m sealed_sessions keygen` (32 random bytes, base64url) and "
    "pass it as secret_key, or pass a random text secret of at least "
    f"{MIN_PASSPHRASE_LENGTH} characters."
)


def generate_key() -> str:
    """Return a fresh random key as the base64url text that ``secret_key`` accepts."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_SIZE)).rstrip(b"=").decode("ascii")


def _blake2b(data: bytes, *, key: bytes, person: bytes, size: int) -> bytes:
    return hashlib.blake2b(data, key=key, person=person, digest_size=size).digest()


def _master_key(value: object, position: int) -> bytes:
    """Turn one configured secret into 32 bytes of key material, or refuse it."""
    where = f"secret_key[{position}]"
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) != KEY_SIZE:
            raise ConfigurationError(
                f"{where}: a bytes key must be exactly {KEY_SIZE} bytes, got {len(raw)}. {_HOW_TO}"
            )
        if len(set(raw)) < MIN_DISTINCT_BYTES:
            raise ConfigurationError(f"{where}: this key is not random (too few distinct bytes). {_HOW_TO}")
        return raw
    if not isinstance(value, str | Secret):
        raise ConfigurationError(f"{where}: expected a key (str or bytes), got {type(value).__name__}. {_HOW_TO}")
    text = str(value)  # a Secret gives up its value only here
    if text != text.strip():
        # A key read from a file or an environment variable with its newline would otherwise be
        # taken as a different text secret, and servers that strip it would not share sessions.
        raise ConfigurationError(f"{where}: the key starts or ends with whitespace; strip it. {_HOW_TO}")
    if _KEY_TEXT.fullmatch(text):
        try:
            raw = base64.urlsafe_b64decode(text.rstrip("=") + "=")
        except (binascii.Error, ValueError):  # pragma: no cover - the pattern admits only valid text
            raw = b""
        if len(raw) == KEY_SIZE:
            if len(set(raw)) < MIN_DISTINCT_BYTES:
                raise ConfigurationError(f"{where}: this key is not random (too few distinct bytes). {_HOW_TO}")
            return raw
    if "," in text or any(c.isspace() for c in text):
        # "key1,key2" from an environment variable would otherwise become one passphrase, and a
        # text with spaces is a human phrase, not a random secret.
        raise ConfigurationError(
            f"{where}: a text secret must not contain commas or whitespace; pass several keys as a list "
            f"(e.g. os.environ[...].split(',')). {_HOW_TO}"
        )
    if len(text) < MIN_PASSPHRASE_LENGTH:
        raise ConfigurationError(
            f"{where}: a text secret must be at least {MIN_PASSPHRASE_LENGTH} characters, got {len(text)}. {_HOW_TO}"
        )
    if len(set(text)) < MIN_DISTINCT_CHARACTERS:
        raise ConfigurationError(f"{where}: this text secret is too repetitive to be random. {_HOW_TO}")
    return _blake2b(text.encode("utf-8"), key=b"", person=_PASSPHRASE_PERSON, size=KEY_SIZE)


@dataclass(frozen=True, slots=True)
class _Entry:
    key_id: bytes
    master: bytes


class KeyRing:
    """An ordered set of master keys: the first seals, all of them open.

    Built once at startup. Raises :class:`ConfigurationError` for a missing, weak, malformed or
    duplicated key, with a message that says how to make a good one. Keys never appear in
    ``repr()``.
    """

    __slots__ = ("_entries",)

    def __init__(self, secret_key: KeyInput) -> None:
        if isinstance(secret_key, KeyRing):
            self._entries: tuple[_Entry, ...] = secret_key._entries
            return
        if isinstance(secret_key, str | bytes | bytearray | memoryview) or not isinstance(secret_key, Sequence):
            values: list[object] = [secret_key]
        else:
            values = list(secret_key)
        if not values:
            raise ConfigurationError(f"secret_key is empty: at least one key is needed. {_HOW_TO}")
        entries: list[_Entry] = []
        for position, value in enumerate(values):
            master = _master_key(value, position)
            key_id = _blake2b(b"", key=master, person=_KEY_ID_PERSON, size=KEY_ID_SIZE)
            for earlier in entries:
                if earlier.master == master:
                    raise ConfigurationError(f"secret_key[{position}] repeats an earlier key; list each key once.")
                if earlier.key_id == key_id:  # pragma: no cover - 1 in 2**32 per pair
                    raise ConfigurationError(
                        f"secret_key[{position}] has the same key id as an earlier key; generate a new key."
                    )
            entries.append(_Entry(key_id, master))
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<KeyRing: {len(self._entries)} key(s), ids {[e.key_id.hex() for e in self._entries]}>"

    @property
    def key_ids(self) -> tuple[bytes, ...]:
        """The key ids, current first. Public: they identify keys without revealing them."""
        return tuple(e.key_id for e in self._entries)

    def subkeys(self, cookie_name: str) -> dict[bytes, bytes]:
        """Map each key id to the subkey for ``cookie_name``, in ring order (current first)."""
        name = cookie_name.encode("utf-8")
        return {e.key_id: _blake2b(name, key=e.master, person=_SUBKEY_PERSON, size=KEY_SIZE) for e in self._entries}


# Defined after KeyRing so that it is a real union at run time: typing.get_type_hints() on any
# function annotated with it (ours or the application's) resolves without a NameError.
KeyInput: TypeAlias = str | bytes | Secret | Sequence[str | bytes | Secret] | KeyRing
"""What ``secret_key`` accepts: a key, a text secret, a ``starlette.datastructures.Secret``,
a list of those (newest first), or a :class:`KeyRing`."""
