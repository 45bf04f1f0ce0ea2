"""The envelope: authenticated encryption of bytes into a cookie-safe string, and back.

Format, version 2 (pinned by a known-answer test)::

    cookie value = base64url_nopad( version | key_id | nonce | box )
        version  1 byte    0x02
        key_id   4 bytes   selects the key in the ring (see _keys.py)
        nonce   24 bytes   fresh from the OS CSPRNG for every seal
        box     16+n bytes crypto_secretbox_easy(plaintext, nonce, subkey): Poly1305 MAC then
                           XSalsa20 ciphertext

Version 1 has the same layout with version byte 0x01 and a subkey bound to the cookie name only
(no context). It still opens where that is safe: under a random master key, when no context is
set. Opening one reports it as not sealed the current way, so the middleware reseals it as
version 2 on that response.

What you get: nobody without the key can read the plaintext or produce any value that opens
(XSalsa20-Poly1305, 256-bit keys, random 192-bit nonces, so nonce reuse is not a practical risk).
The subkey is derived per cookie name, context and format version, so a value opens only under
the name, application and version it was sealed for. The version and key id are neither
encrypted nor under the MAC: they only select how to open the rest, so a changed one is refused
as an unknown version or key id, or selects another key and fails the MAC.

What you do not get: the plaintext's length is visible (ciphertext length = plaintext + 16), and a
sealed value can be replayed as long as its own timestamps allow.
"""

from __future__ import annotations

import binascii
import os

from nacl.exceptions import CryptoError

from ._box import MAC_SIZE, box_open, box_seal
from ._errors import InvalidCookie, Reason
from ._keys import KEY_ID_SIZE, KeyRing

__all__ = ["MAX_COOKIE_VALUE", "Envelope"]

VERSION = 2
V1 = 1
NONCE_SIZE = 24
HEADER_SIZE = 1 + KEY_ID_SIZE + NONCE_SIZE
MAX_COOKIE_VALUE = 4096
"""No cookie we issue is longer than this; anything longer is refused before decoding. A session
split across several cookies (``max_chunks``) raises the bound to that many times this."""

_VERSION_BYTE = bytes([VERSION])
# base64url to standard base64 for binascii; "+", "/" and "=" are not base64url and become "!",
# which strict decoding refuses, as it refuses anything else outside the alphabet.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"", b"==", b"=")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# For unpadded text of length 4n+2 (resp. 4n+3) the last character carries 2 (resp. 4) data
# bits, so its value must be a multiple of 16 (resp. 4) in the base64url alphabet.
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_MIN_TEXT = (HEADER_SIZE + MAC_SIZE) * 4 // 3


def b64encode(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def b64decode_strict(text: str) -> bytes:
    """Decode unpadded base64url, refusing anything our encoder would not have produced."""
    tail = len(text) % 4
    # One value, one encoding: the bits of the last character beyond the data must be zero.
    if tail == 1 or (tail and text[-1] not in _CANONICAL_LAST[tail]):
        raise InvalidCookie(Reason.MALFORMED)
    try:
        return binascii.a2b_base64(text.encode("ascii").translate(_TO_STANDARD) + _PADDING[tail], strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):  # outside the alphabet, or not ASCII at all
        raise InvalidCookie(Reason.MALFORMED) from None


class Envelope:
    """Seals and opens bytes for one cookie name and context with one key ring.

    Build it once per cookie name at startup; it holds the derived subkeys.
    """

    __slots__ = ("_current_id", "_current_key", "_keys", "_v1_ids", "_v1_keys", "max_length")

    max_length: int
    """Longest value :meth:`open` decodes; longer ones are refused first (``TOO_LARGE``)."""

    def __init__(
        self, keys: KeyRing, cookie_name: str, context: str = "", *, max_length: int = MAX_COOKIE_VALUE
    ) -> None:
        self.max_length = max_length
        self._keys = keys.subkeys(cookie_name, context)
        self._v1_keys = {} if context else keys.v1_subkeys(cookie_name)
        # A version 1 cookie is reported under the id its key has now, so usage counts per master key.
        self._v1_ids = {e.v1_key_id: e.key_id for e in keys._entries if e.v1_key_id is not None}
        self._current_id = keys.key_ids[0]
        self._current_key = self._keys[self._current_id]

    def __repr__(self) -> str:
        return f"<Envelope: {len(self._keys)} key(s)>"

    def seal(self, plaintext: bytes, *, nonce: bytes | None = None) -> str:
        """Encrypt and authenticate ``plaintext`` with the current key, in the current format.

        ``nonce`` exists for known-answer tests only; leave it out and a fresh random one is used.
        """
        if nonce is None:
            nonce = os.urandom(NONCE_SIZE)
        box = box_seal(plaintext, nonce, self._current_key)
        return b64encode(_VERSION_BYTE + self._current_id + nonce + box)

    def open(self, value: str) -> tuple[bytes, bool]:
        """Return ``(plaintext, sealed_with_current_key)``, or raise :class:`InvalidCookie`.

        ``sealed_with_current_key`` is false for an older key of the ring or an older format.
        Refuses oversized input before decoding it, and picks the key by id: one MAC check at
        most, whatever the number of keys.
        """
        plaintext, _, current = self.open_with_key_id(value)
        return plaintext, current

    def open_with_key_id(self, value: str) -> tuple[bytes, bytes, bool]:
        """:meth:`open`, also naming the key that opened ``value``: ``(plaintext, key_id, sealed_with_current_key)``.

        ``key_id`` is one of the ring's :attr:`KeyRing.key_ids` (for a version 1 cookie, the id
        its key has in the current format), so usage can be counted per key at no extra cost.
        """
        if len(value) > self.max_length:
            raise InvalidCookie(Reason.TOO_LARGE)
        if len(value) < _MIN_TEXT:
            raise InvalidCookie(Reason.MALFORMED)
        raw = b64decode_strict(value)
        key_id = raw[1 : 1 + KEY_ID_SIZE]
        if raw[0] == VERSION:
            key = self._keys.get(key_id)
        elif raw[0] == V1:
            key = self._v1_keys.get(key_id)
            key_id = self._v1_ids.get(key_id, key_id)
        else:
            raise InvalidCookie(Reason.UNKNOWN_VERSION)
        if key is None:
            raise InvalidCookie(Reason.UNKNOWN_KEY)
        try:
            plaintext = box_open(raw[HEADER_SIZE:], raw[1 + KEY_ID_SIZE : HEADER_SIZE], key)
        except CryptoError:
            raise InvalidCookie(Reason.BAD_MAC) from None
        return plaintext, key_id, key is self._current_key
