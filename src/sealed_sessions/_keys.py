"""Keys: parsing what the application passes in, refusing weak ones, and deriving subkeys.

A key ring is an ordered list of master keys. The first seals; every key opens. Each master key
has a 4-byte key id that the envelope carries, so opening goes straight to the right key: the
cost of opening does not grow with the number of keys in the ring.

A master key is either 32 random bytes (``keygen`` output, used as it is) or a text secret,
stretched once at startup with Argon2id (``STRETCH_OPSLIMIT`` passes over ``STRETCH_MEMLIMIT``
bytes, about 0.1 s and 64 MiB) so that testing one guess of a text secret against a cookie costs
that much too: the key id is derived from the stretched key, never from the text.

Master keys are never used directly. Each cookie name and context get their own subkey::

    subkey = BLAKE2b-256(key=master, data=len16(name) | name | len16(context) | context,
                         person=b"sealed-sess:v2")
    key id = BLAKE2b-32(key=master, data=b"", person=b"sealed-kid:v2")

so a value sealed for one cookie name or one application never opens under another. Version 1
cookies (``person=b"sealed-sess:v1"``, the name alone, no context) still open under a random
master key when no context is set, and are resealed in the current format when they do.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import itertools
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from nacl.pwhash import argon2id
from starlette.datastructures import Secret

from ._errors import ConfigurationError

__all__ = [
    "KEY_ID_SIZE",
    "KEY_SIZE",
    "STRETCH_MEMLIMIT",
    "STRETCH_OPSLIMIT",
    "KeyInput",
    "KeyRing",
    "generate_key",
]

KEY_SIZE = 32
"""Bytes in a key: 256 bits, the size of an XSalsa20-Poly1305 key."""
KEY_ID_SIZE = 4
"""Bytes of the key id carried in every cookie."""
MIN_PASSPHRASE_LENGTH = 32
"""Shortest text secret accepted; it must also use at least MIN_DISTINCT_CHARACTERS characters."""
MIN_DISTINCT_CHARACTERS = 10
MIN_DISTINCT_BYTES = 16
"""A random 32-byte key has about 30 distinct byte values; fewer than 16 means it is not random."""
MAX_CONSECUTIVE_RUN = 10
"""A text secret holding this many consecutive characters in a row (``abcdefghij``) is refused."""
STRETCH_OPSLIMIT = 3
"""Argon2id passes for a text secret (libsodium's ``OPSLIMIT_MODERATE``)."""
STRETCH_MEMLIMIT = 64 * 1024 * 1024
"""Argon2id memory for a text secret: 64 MiB (libsodium's ``MEMLIMIT_INTERACTIVE``)."""

_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")
_STRETCH_SALT = b"sealed-sessions2"  # public and fixed: every server must derive the same key
_KEY_ID_PERSON = b"sealed-kid:v2"
_SUBKEY_PERSON = b"sealed-sess:v2"
_V1_KEY_ID_PERSON = b"sealed-kid:v1"
_V1_SUBKEY_PERSON = b"sealed-sess:v1"

_HOW_TO = (
    "Generate a key with `python -m sealed_sessions keygen` (32 random bytes, base64url) and "
    "pass it as secret_key. A text secret of at least "
    f"{MIN_PASSPHRASE_LENGTH} random characters is accepted too, but only keygen output is a key."
)


def generate_key() -> str:
    """Return a fresh random key as the base64url text that ``secret_key`` accepts."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_SIZE)).rstrip(b"=").decode("ascii")


def _blake2b(data: bytes, *, key: bytes, person: bytes, size: int) -> bytes:
    return hashlib.blake2b(data, key=key, person=person, digest_size=size).digest()


@functools.lru_cache(maxsize=16)  # a process builds the same ring in each worker and test: stretch once
def _stretch(text: str) -> bytes:
    """Argon2id of a text secret: the master key it stands for."""
    return argon2id.kdf(
        KEY_SIZE, text.encode("utf-8"), _STRETCH_SALT, opslimit=STRETCH_OPSLIMIT, memlimit=STRETCH_MEMLIMIT
    )


def _weakness_of_bytes(raw: bytes) -> str | None:
    """Why 32 bytes cannot be random, or ``None``. Each test fails for random keys with p < 2**-40."""
    if len(set(raw)) < MIN_DISTINCT_BYTES:
        return "too few distinct bytes"
    steps = {(b - a) % 256 for a, b in itertools.pairwise(raw)}
    if len(steps) <= 2:
        return "its bytes count up or down"
    if all(0x20 <= b < 0x7F for b in raw):
        return "it is printable text, not random bytes (pass text as str, or use keygen)"
    return None


def _weakness_of_text(text: str) -> str | None:
    """Why a text secret is obviously guessable, or ``None``. Passing this is no proof of strength."""
    if len(set(text)) < MIN_DISTINCT_CHARACTERS:
        return "too repetitive"
    run = longest = 1
    for a, b in itertools.pairwise(text):
        run = run + 1 if abs(ord(b) - ord(a)) == 1 else 1
        longest = max(longest, run)
    if longest >= MAX_CONSECUTIVE_RUN:
        return "it holds a run of consecutive characters such as abcdefghij"
    trigrams = [text[i : i + 3] for i in range(len(text) - 2)]
    if len(set(trigrams)) < len(trigrams) * 3 // 4:
        return "the same pieces recur"
    return None


def _master_key(value: object, position: int) -> tuple[bytes, bool]:
    """Turn one configured secret into ``(32 bytes of key material, random)``, or refuse it.

    ``random`` is true for a raw key and false for a stretched text secret.
    """
    where = f"secret_key[{position}]"
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) != KEY_SIZE:
            raise ConfigurationError(
                f"{where}: a bytes key must be exactly {KEY_SIZE} bytes, got {len(raw)}. {_HOW_TO}"
            )
        weakness = _weakness_of_bytes(raw)
        if weakness is not None:
            raise ConfigurationError(f"{where}: this key is not random ({weakness}). {_HOW_TO}")
        return raw, True
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
            weakness = _weakness_of_bytes(raw)
            if weakness is not None and not weakness.startswith("it is printable"):
                raise ConfigurationError(f"{where}: this key is not random ({weakness}). {_HOW_TO}")
            if weakness is None:
                return raw, True
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
    weakness = _weakness_of_text(text)
    if weakness is not None:
        raise ConfigurationError(f"{where}: this text secret is not random ({weakness}). {_HOW_TO}")
    return _stretch(text), False


def _length_prefixed(*parts: bytes) -> bytes:
    return b"".join(len(part).to_bytes(2, "big") + part for part in parts)


@dataclass(frozen=True, slots=True)
class _Entry:
    key_id: bytes
    master: bytes
    v1_key_id: bytes | None
    """The key id of format version 1, for a random master key only (a text secret's v1 id was an
    unstretched hash of it: cookies carrying it are refused rather than kept as a guessing oracle)."""


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
            master, random = _master_key(value, position)
            key_id = _blake2b(b"", key=master, person=_KEY_ID_PERSON, size=KEY_ID_SIZE)
            v1_key_id = _blake2b(b"", key=master, person=_V1_KEY_ID_PERSON, size=KEY_ID_SIZE) if random else None
            for earlier in entries:
                if earlier.master == master:
                    raise ConfigurationError(f"secret_key[{position}] repeats an earlier key; list each key once.")
                if earlier.key_id == key_id:  # pragma: no cover - 1 in 2**32 per pair
                    raise ConfigurationError(
                        f"secret_key[{position}] has the same key id as an earlier key; generate a new key."
                    )
            entries.append(_Entry(key_id, master, v1_key_id))
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<KeyRing: {len(self._entries)} key(s), ids {[e.key_id.hex() for e in self._entries]}>"

    @property
    def key_ids(self) -> tuple[bytes, ...]:
        """The key ids, current first. Public: they identify keys without revealing them."""
        return tuple(e.key_id for e in self._entries)

    def subkeys(self, cookie_name: str, context: str = "") -> dict[bytes, bytes]:
        """Map each key id to the subkey for ``cookie_name`` and ``context``, in ring order (current first)."""
        data = _length_prefixed(cookie_name.encode("utf-8"), context.encode("utf-8"))
        return {e.key_id: _blake2b(data, key=e.master, person=_SUBKEY_PERSON, size=KEY_SIZE) for e in self._entries}

    def v1_subkeys(self, cookie_name: str) -> dict[bytes, bytes]:
        """Map version 1 key ids to version 1 subkeys, for the random master keys of the ring only."""
        name = cookie_name.encode("utf-8")
        return {
            e.v1_key_id: _blake2b(name, key=e.master, person=_V1_SUBKEY_PERSON, size=KEY_SIZE)
            for e in self._entries
            if e.v1_key_id is not None
        }


# Defined after KeyRing so that it is a real union at run time: typing.get_type_hints() on any
# function annotated with it (ours or the application's) resolves without a NameError.
KeyInput: TypeAlias = str | bytes | Secret | Sequence[str | bytes | Secret] | KeyRing
"""What ``secret_key`` accepts: a key, a text secret, a ``starlette.datastructures.Secret``,
a list of those (newest first), or a :class:`KeyRing`."""
