"""The two libsodium calls the envelope makes: ``crypto_secretbox_easy`` and its open.

Both go straight to PyNaCl's compiled cffi module, ``nacl._sodium``, which is what
``nacl.bindings`` itself calls. The public bindings re-check the key and nonce lengths and wrap
every result in a helper call on each use; the envelope guarantees those lengths once (keys are
derived at startup, nonces and boxes are sliced at fixed offsets), and on a request that only
reads the session those checks were a tenth of what opening costs. If a PyNaCl release ever
moves that module, the public bindings are used instead, with the same results and errors
(``tests/test_box.py`` checks both paths against each other).

Guaranteed: the same bytes and the same :class:`nacl.exceptions.CryptoError` on a failed MAC as
``nacl.bindings``, and a :class:`ValueError` for a key or nonce of the wrong length (libsodium
reads fixed lengths from what it is given: two ``len`` calls keep it inside the buffers).
"""

from __future__ import annotations

from collections.abc import Callable

from nacl.exceptions import CryptoError

__all__ = ["KEY_SIZE", "MAC_SIZE", "NONCE_SIZE", "box_open", "box_seal"]

MAC_SIZE = 16
"""Bytes the Poly1305 tag adds to a box."""
KEY_SIZE = 32
NONCE_SIZE = 24

Seal = Callable[[bytes, bytes, bytes], bytes]
Open = Callable[[bytes, bytes, bytes], bytes]


def _public() -> tuple[Seal, Open]:
    from nacl.bindings import crypto_secretbox_easy, crypto_secretbox_open_easy

    return crypto_secretbox_easy, crypto_secretbox_open_easy


def _direct() -> tuple[Seal, Open]:
    from nacl._sodium import ffi, lib  # type: ignore[import-not-found]  # PyNaCl's cffi module; see above

    new, buffer = ffi.new, ffi.buffer
    c_seal, c_open = lib.crypto_secretbox_easy, lib.crypto_secretbox_open_easy

    def seal(message: bytes, nonce: bytes, key: bytes) -> bytes:
        if len(nonce) != NONCE_SIZE or len(key) != KEY_SIZE:
            raise ValueError("a secretbox needs a 24-byte nonce and a 32-byte key")
        size = len(message) + MAC_SIZE
        out = new("unsigned char[]", size)
        if c_seal(out, message, len(message), nonce, key) != 0:  # pragma: no cover - libsodium never fails here
            raise CryptoError("Encryption failed")
        sealed: bytes = buffer(out, size)[:]
        return sealed

    def open_(box: bytes, nonce: bytes, key: bytes) -> bytes:
        if len(nonce) != NONCE_SIZE or len(key) != KEY_SIZE:
            raise ValueError("a secretbox needs a 24-byte nonce and a 32-byte key")
        size = len(box) - MAC_SIZE
        if size < 0:
            raise CryptoError("Decryption failed. Ciphertext failed verification")
        out = new("unsigned char[]", size or 1)
        if c_open(out, box, len(box), nonce, key) != 0:
            raise CryptoError("Decryption failed. Ciphertext failed verification")
        opened: bytes = buffer(out, size)[:]
        return opened

    return seal, open_


def _choose() -> tuple[Seal, Open]:
    try:
        return _direct()
    except (ImportError, AttributeError):  # pragma: no cover - every PyNaCl release so far has it
        return _public()


box_seal, box_open = _choose()
