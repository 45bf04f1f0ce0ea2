"""Reading the cookies of Mozilla's client-sessions (node-client-sessions 0.8, the Express middleware).

Format, from lib/client-sessions.js of client-sessions 0.8.0 (``deriveKey``, ``setupKeys``,
``computeHmac``, ``encode``, ``decode`` and ``loadFromCookie``)::

    encryption key = HMAC-SHA-256(secret, "cookiesession-encryption")
    signature key  = HMAC-SHA-256(secret, "cookiesession-signature")
    plaintext      = cookieName "=" JSON.stringify(session)                     UTF-8
    ciphertext     = AES-256-CBC(encryption key, iv, PKCS#7-padded plaintext)    iv: 16 random bytes
    mac            = HMAC-SHA-256(signature key, iv "." ciphertext "." createdAt "." duration)
    value          = b64u(iv) "." b64u(ciphertext) "." createdAt "." duration "." b64u(mac)

``b64u`` is unpadded base64url; ``iv`` and ``ciphertext`` enter the MAC as raw bytes, ``createdAt``
and ``duration`` as decimal text, both in milliseconds. The session is valid while ``now <=
createdAt + duration``; ``activeDuration`` is not in the cookie (the server, when a session is
that close to expiry, moved ``createdAt`` forward and re-sent the cookie).

Needs the ``cryptography`` package for AES-CBC (``pip install 'sealed-sessions[migrate]'``);
without it this module imports, and :class:`ClientSessionsCookie` refuses to be built.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from ._envelope import MAX_COOKIE_VALUE, b64decode_strict
from ._errors import ConfigurationError, InvalidCookie, Reason
from ._lifetime import CLOCK_SKEW
from ._migration import LegacySession, check_location, load_data, secret_bytes

__all__ = ["ClientSessionsCookie"]

IV_SIZE = 16
BLOCK_SIZE = 16
MAC_SIZE = 32
_ENCRYPTION_LABEL = b"cookiesession-encryption"
_SIGNATURE_LABEL = b"cookiesession-signature"
# A JavaScript integer as Number.prototype.toString writes it: no sign, no leading zero, no exponent.
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,15}")
_MISSING = (
    "ClientSessionsCookie needs the 'cryptography' package for AES-CBC: "
    "pip install 'sealed-sessions[migrate]' (or pip install cryptography)"
)


class ClientSessionsCookie:
    """Reads the cookies of client-sessions 0.8 (``app.use(sessions({cookieName, secret, ...}))``).

    Give it the Express app's ``secret`` and ``cookieName`` (``"session_state"`` by default), and
    the ``path`` and ``domain`` of its ``cookie`` options. Its ``duration`` and ``activeDuration``
    are not needed: every cookie carries its own ``createdAt`` and ``duration``, and they decide,
    as in client-sessions. ``max_age`` (seconds from ``createdAt``) optionally cuts them shorter.
    Only the default algorithms (``aes256``, ``sha256``) are read; any other setting is refused
    here. (With a ``secret``, client-sessions itself can use only ``aes256`` with ``sha256`` or
    ``sha256-drop128``: its derived keys are 32 bytes.) Explicit ``encryptionKey`` and
    ``signatureKey`` options are not supported.

    What you get: a value opens only if its HMAC-SHA-256 verifies under the old secret (compared in
    constant time, before anything is decrypted) and it was made for this ``cookie_name`` (the
    name is inside the encrypted plaintext). Padding is checked strictly, but only after the MAC
    passed, so it cannot serve as a padding oracle. ``expires_at`` is ``createdAt + duration``
    rounded down to the second (at most a second earlier than client-sessions), ``issued_at`` is
    ``createdAt`` in seconds; a ``createdAt`` more than ``CLOCK_SKEW`` seconds ahead is ``FUTURE``
    (client-sessions only moves it ahead of the clock when ``activeDuration`` exceeds ``duration``).
    Numbers are read as client-sessions writes them: where its ``parseInt`` would accept ``"01"``
    or ``"1x"``, this reader refuses them (``MALFORMED``).

    What you do not get: a value is bound to the secret and the cookie name only, so another
    client-sessions app sharing both makes values that open here too; and the data's length was
    always visible, to within the 16-byte block.
    """

    __slots__ = ("_encryption_key", "_name_eq", "_signature_key", "cookie_name", "domain", "max_age", "path")

    cookie_name: str
    """The Express app's ``cookieName``, also bound inside every value."""
    path: str
    """The ``path`` of the Express app's ``cookie`` options."""
    domain: str | None
    """The ``domain`` of the Express app's ``cookie`` options."""
    max_age: int | None
    """An extra cap in seconds after ``createdAt``, or ``None`` to honour each cookie's own ``duration``."""

    def __init__(
        self,
        secret: str | bytes,
        cookie_name: str = "session_state",
        *,
        max_age: int | None = None,
        path: str = "/",
        domain: str | None = None,
        encryption_algorithm: str = "aes256",
        signature_algorithm: str = "sha256",
    ) -> None:
        key = secret_bytes("secret", secret, hint="the Express app's client-sessions secret")
        check_location(cookie_name, path, domain)
        if max_age is not None and (not isinstance(max_age, int) or isinstance(max_age, bool) or max_age <= 0):
            raise ConfigurationError(f"max_age must be a positive number of seconds or None, got {max_age!r}")
        for option, value, default in (
            ("encryption_algorithm", encryption_algorithm, "aes256"),
            ("signature_algorithm", signature_algorithm, "sha256"),
        ):
            if not isinstance(value, str) or value.lower() != default:
                raise ConfigurationError(
                    f"{option}={value!r} is not supported: only client-sessions' default {default!r} can be "
                    "read (cookies made with other algorithms cannot be migrated: their users log in again)"
                )
        try:
            import cryptography.hazmat.primitives.ciphers  # noqa: F401 - fail at startup, not per request
        except ImportError:
            raise ConfigurationError(_MISSING) from None
        self._encryption_key = hmac.new(key, _ENCRYPTION_LABEL, hashlib.sha256).digest()
        self._signature_key = hmac.new(key, _SIGNATURE_LABEL, hashlib.sha256).digest()
        self._name_eq = cookie_name.encode("ascii") + b"="
        self.cookie_name = cookie_name
        self.path = path
        self.domain = domain
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"<ClientSessionsCookie {self.cookie_name!r} max_age={self.max_age}>"

    def open(self, value: str, now: int) -> LegacySession:
        """The session in ``value`` if it is authentic and valid at ``now``; else :class:`InvalidCookie`."""
        if len(value) > MAX_COOKIE_VALUE:
            raise InvalidCookie(Reason.TOO_LARGE)
        parts = value.split(".")
        if len(parts) != 5 or not (_DECIMAL.fullmatch(parts[2]) and _DECIMAL.fullmatch(parts[3])):
            raise InvalidCookie(Reason.MALFORMED)
        iv, ciphertext, mac = b64decode_strict(parts[0]), b64decode_strict(parts[1]), b64decode_strict(parts[4])
        if len(iv) != IV_SIZE or len(mac) != MAC_SIZE or not ciphertext or len(ciphertext) % BLOCK_SIZE:
            raise InvalidCookie(Reason.MALFORMED)
        signed = b".".join((iv, ciphertext, parts[2].encode("ascii"), parts[3].encode("ascii")))
        if not hmac.compare_digest(hmac.new(self._signature_key, signed, hashlib.sha256).digest(), mac):
            raise InvalidCookie(Reason.BAD_MAC)
        plaintext = _unpad(_decrypt(self._encryption_key, iv, ciphertext))
        if not plaintext.startswith(self._name_eq):
            raise InvalidCookie(Reason.BAD_MAC)  # authentic, but made for another cookie name
        created_ms, duration_ms = int(parts[2]), int(parts[3])
        issued_at, expires_at = created_ms // 1000, (created_ms + duration_ms) // 1000
        if self.max_age is not None:
            expires_at = min(expires_at, issued_at + self.max_age)
        if issued_at > now + CLOCK_SKEW:
            raise InvalidCookie(Reason.FUTURE)
        if now >= expires_at:
            raise InvalidCookie(Reason.EXPIRED)
        return LegacySession(load_data(plaintext[len(self._name_eq) :]), issued_at, expires_at)


def _decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """AES-256-CBC decryption, without unpadding (the ciphertext is whole blocks, already authenticated)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def _unpad(padded: bytes) -> bytes:
    """Strip PKCS#7 padding, refusing (``BAD_PAYLOAD``) any that OpenSSL would not have written."""
    size = padded[-1]
    if not 1 <= size <= BLOCK_SIZE or padded[-size:] != bytes([size]) * size:
        raise InvalidCookie(Reason.BAD_PAYLOAD)
    return padded[:-size]
