"""The libsodium calls behind the envelope: the direct path and PyNaCl's public bindings agree, byte for byte."""

from __future__ import annotations

import os

import pytest
from nacl.bindings import crypto_secretbox_easy, crypto_secretbox_open_easy
from nacl.exceptions import CryptoError

from sealed_sessions import _box
from sealed_sessions._box import MAC_SIZE

KEY = bytes(range(32))
NONCE = bytes(range(24))
DIRECT = _box._direct()
PUBLIC = _box._public()


def test_the_direct_path_is_the_one_in_use() -> None:
    """With PyNaCl's cffi module present (every release so far), the module uses the direct calls."""
    assert _box.box_seal.__qualname__ == DIRECT[0].__qualname__
    assert _box.box_open.__qualname__ == DIRECT[1].__qualname__


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100, 4096])
def test_both_paths_seal_and_open_the_same_bytes(size: int) -> None:
    """For any length, direct and public sealing give the same box, and each opens the other's."""
    message = os.urandom(size)
    box = DIRECT[0](message, NONCE, KEY)
    assert box == PUBLIC[0](message, NONCE, KEY) == crypto_secretbox_easy(message, NONCE, KEY)
    assert len(box) == size + MAC_SIZE
    assert DIRECT[1](box, NONCE, KEY) == PUBLIC[1](box, NONCE, KEY) == message


@pytest.mark.parametrize(
    "box",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00" * (MAC_SIZE - 1), id="shorter-than-the-mac"),
        pytest.param(b"\x00" * MAC_SIZE, id="a-zero-mac"),
        pytest.param(
            bytes(a ^ 1 if i == 20 else a for i, a in enumerate(crypto_secretbox_easy(b"x" * 9, NONCE, KEY))),
            id="flipped",
        ),
    ],
)
def test_forged_or_short_boxes_raise_crypto_error_on_both_paths(box: bytes) -> None:
    """Anything that is not an authentic box raises CryptoError on the direct path, as it does on the public one."""
    with pytest.raises(CryptoError):
        DIRECT[1](box, NONCE, KEY)
    if len(box) >= MAC_SIZE:
        with pytest.raises(CryptoError):
            crypto_secretbox_open_easy(box, NONCE, KEY)


def test_a_box_under_another_key_or_nonce_does_not_open() -> None:
    """The direct open checks the MAC under the key and nonce it is given."""
    box = DIRECT[0](b"secret", NONCE, KEY)
    with pytest.raises(CryptoError):
        DIRECT[1](box, NONCE, bytes(32))
    with pytest.raises(CryptoError):
        DIRECT[1](box, bytes(24), KEY)


@pytest.mark.parametrize(
    ("nonce", "key"),
    [(bytes(3), KEY), (bytes(25), KEY), (NONCE, bytes(31)), (NONCE, bytes(33))],
    ids=["n3", "n25", "k31", "k33"],
)
def test_a_wrong_nonce_or_key_length_is_refused_before_libsodium_reads_it(nonce: bytes, key: bytes) -> None:
    """libsodium reads 24 and 32 bytes whatever it is given: other lengths raise ValueError instead of over-reading."""
    box = DIRECT[0](b"x", NONCE, KEY)
    with pytest.raises(ValueError):
        DIRECT[0](b"x", nonce, key)
    with pytest.raises(ValueError):
        DIRECT[1](box, nonce, key)
