"""The envelope: strict decoding, tamper detection, key selection, pinned formats (A7-A16, B5, D3-D6, D11, E1-E3).

The version 2 known-answer vector is in test_sealer.py; the version 1 vector here must keep opening.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from nacl.bindings import crypto_secretbox_easy

import sealed_sessions._envelope as envelope_module
from sealed_sessions import InvalidCookie, KeyRing, Reason
from sealed_sessions._box import MAC_SIZE, box_open
from sealed_sessions._envelope import HEADER_SIZE, MAX_COOKIE_VALUE, NONCE_SIZE, Envelope
from sealed_sessions._payload import encode
from sealed_sessions.testing import seal, unseal
from tests.helpers import KEY_A, KEY_B, KEY_C, RAW_A, b64, ring_keys, unb64

PLAINTEXT = b"sealed-sessions test plaintext, 40 bytes"


@pytest.fixture
def env() -> Envelope:
    return Envelope(KeyRing(KEY_A), "session")


@pytest.fixture
def cookie(env: Envelope) -> str:
    return env.seal(PLAINTEXT)


def reason_of(env: Envelope, value: str) -> Reason:
    with pytest.raises(InvalidCookie) as info:
        env.open(value)
    return info.value.reason


def test_round_trip(env: Envelope, cookie: str) -> None:
    """A sealed value opens to the same bytes, reported as sealed with the current key."""
    assert env.open(cookie) == (PLAINTEXT, True)
    assert len(unb64(cookie)) == HEADER_SIZE + MAC_SIZE + len(PLAINTEXT)


# -- strict base64url (A2-A5) -----------------------------------------------------------------


@pytest.mark.case("A4", "A5")
@pytest.mark.parametrize("bad", ["+", "/", "=", " ", "!", ".", "\n", "\x00", "é", "\u0661", "\U0001f36a"])
def test_character_outside_the_base64url_alphabet_is_malformed(env: Envelope, cookie: str, bad: str) -> None:
    """One character outside [A-Za-z0-9_-] anywhere in a valid cookie makes it MALFORMED."""
    for position in (0, 7, len(cookie) // 2, len(cookie) - 1):
        assert reason_of(env, cookie[:position] + bad + cookie[position + 1 :]) == Reason.MALFORMED


@pytest.mark.case("A4")
@pytest.mark.parametrize("padding", ["=", "==", "==="])
def test_padding_refused(env: Envelope, padding: str) -> None:
    """Standard padding is refused even where it would be correct: one value, one encoding."""
    for size in (40, 41):  # encodings with 2 and 1 padding characters
        value = env.seal(b"x" * size)
        assert reason_of(env, value + padding) == Reason.MALFORMED


@pytest.mark.case("A4")
def test_non_canonical_trailing_bits_refused(env: Envelope) -> None:
    """A last character with non-zero unused bits decodes to the same bytes but is refused."""
    value = env.seal(b"x" * 40)  # 85 bytes: the last character carries 4 unused bits
    assert len(value) % 4 == 2
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(value[-1])
    assert index % 16 == 0
    twin = value[:-1] + alphabet[index + 1]
    assert unb64(twin) == unb64(value)  # a lenient decoder would accept it as the same cookie
    assert reason_of(env, twin) == Reason.MALFORMED


@pytest.mark.case("A4")
def test_length_of_one_mod_four_refused(env: Envelope, cookie: str) -> None:
    """A length of 4n+1 characters cannot be base64 and is MALFORMED."""
    value = cookie + "A" * ((1 - len(cookie)) % 4)
    assert len(value) % 4 == 1
    assert reason_of(env, value) == Reason.MALFORMED


@pytest.mark.case("A2", "A3")
@pytest.mark.parametrize("value", ["", " ", "\n", "\t\r\n", "invalid", "purejunk", "<!--", "!@#", "+/"])
def test_empty_whitespace_and_garbage_are_malformed(env: Envelope, value: str) -> None:
    """Empty, whitespace and short garbage values are MALFORMED."""
    assert reason_of(env, value) == Reason.MALFORMED


# -- length (A7-A10) ---------------------------------------------------------------------------


@pytest.mark.case("A7")
def test_shorter_than_header_nonce_and_mac_is_malformed(env: Envelope, cookie: str) -> None:
    """Fewer bytes than version + key id + nonce + MAC is MALFORMED, whatever they hold."""
    raw = unb64(cookie)
    for size in range(HEADER_SIZE + MAC_SIZE):
        assert reason_of(env, b64(raw[:size])) == Reason.MALFORMED


@pytest.mark.case("A8")
def test_exactly_header_nonce_and_mac_fails_the_mac(env: Envelope, cookie: str) -> None:
    """A forged envelope with no plaintext fails the MAC; a real one opens to empty bytes."""
    raw = unb64(cookie)
    assert reason_of(env, b64(raw[: HEADER_SIZE + MAC_SIZE])) == Reason.BAD_MAC
    assert env.open(env.seal(b"")) == (b"", True)


@pytest.mark.case("A9")
def test_truncated_at_every_length_refused(env: Envelope, cookie: str) -> None:
    """Every proper prefix of the bytes, and of the text, is refused."""
    raw = unb64(cookie)
    for size in range(len(raw)):
        assert reason_of(env, b64(raw[:size])) in (Reason.MALFORMED, Reason.BAD_MAC)
    assert reason_of(env, b64(raw[:-1])) == Reason.BAD_MAC
    for size in range(len(cookie)):
        assert reason_of(env, cookie[:size]) in (Reason.MALFORMED, Reason.BAD_MAC)


@pytest.mark.case("A10")
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(lambda raw: raw + b"\x00", Reason.BAD_MAC, id="append_byte"),
        pytest.param(lambda raw: raw + raw, Reason.BAD_MAC, id="append_itself"),
        pytest.param(lambda raw: b"\x00" + raw, Reason.UNKNOWN_VERSION, id="prepend_zero"),
        pytest.param(lambda raw: b"\x01" + raw, Reason.UNKNOWN_KEY, id="prepend_version"),
        pytest.param(lambda raw: raw[:1] + raw, Reason.UNKNOWN_KEY, id="duplicate_first_byte"),
    ],
)
def test_bytes_appended_or_prepended_refused(
    env: Envelope, cookie: str, change: Callable[[bytes], bytes], expected: Reason
) -> None:
    """Extra bytes before or after a valid envelope are refused."""
    assert reason_of(env, b64(change(unb64(cookie)))) == expected


@pytest.mark.case("A10")
@pytest.mark.parametrize("suffix", ["A", "AA", "AAA", "AAAA", "_-_-"])
def test_text_appended_or_prepended_refused(env: Envelope, cookie: str, suffix: str) -> None:
    """Extra characters after a valid cookie are refused."""
    assert reason_of(env, cookie + suffix) in (Reason.MALFORMED, Reason.BAD_MAC)
    assert reason_of(env, suffix + cookie) in (Reason.MALFORMED, Reason.UNKNOWN_VERSION)


REGIONS = {
    "version": (0, 1, Reason.UNKNOWN_VERSION),
    "key_id": (1, 5, Reason.UNKNOWN_KEY),
    "nonce": (5, HEADER_SIZE, Reason.BAD_MAC),
    "mac": (HEADER_SIZE, HEADER_SIZE + MAC_SIZE, Reason.BAD_MAC),
    "ciphertext": (HEADER_SIZE + MAC_SIZE, None, Reason.BAD_MAC),
}


@pytest.mark.case("A11")
@pytest.mark.parametrize("region", [pytest.param(name, id=name) for name in REGIONS])
def test_any_bit_flip_refused_with_the_regions_reason(env: Envelope, cookie: str, region: str) -> None:
    """Flipping any one bit of any byte in the region is refused with the region's reason."""
    raw = unb64(cookie)
    start, end, expected = REGIONS[region]
    positions = range(start, len(raw) if end is None else end)
    assert len(positions) > 0
    for position in positions:
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[position] ^= 1 << bit
            assert reason_of(env, b64(bytes(flipped))) == expected, (position, bit)


@pytest.mark.case("A11")
def test_key_id_changed_to_another_ring_key_fails_the_mac() -> None:
    """A key id changed to another key of the ring selects that key and fails the MAC."""
    ring = KeyRing([KEY_A, KEY_B])
    env = Envelope(ring, "session")
    raw = bytearray(unb64(env.seal(PLAINTEXT)))
    raw[1:5] = ring.key_ids[1]
    assert reason_of(env, b64(bytes(raw))) == Reason.BAD_MAC


@pytest.mark.case("A12")
@pytest.mark.parametrize("version", [0, 3, 0x7F, 0xFF])
def test_unknown_version_refused_before_key_or_mac(env: Envelope, cookie: str, version: int) -> None:
    """Any version byte other than 1 or 2 is UNKNOWN_VERSION, checked before the key or MAC."""
    raw = bytearray(unb64(cookie))
    raw[0] = version
    assert reason_of(env, b64(bytes(raw))) == Reason.UNKNOWN_VERSION


@pytest.mark.case("A13")
def test_unknown_key_id_refused() -> None:
    """A cookie whose key id is not in the ring is UNKNOWN_KEY."""
    value = Envelope(KeyRing(KEY_B), "session").seal(PLAINTEXT)
    assert reason_of(Envelope(KeyRing(KEY_A), "session"), value) == Reason.UNKNOWN_KEY


@pytest.mark.case("A14")
def test_box_of_another_key_labelled_with_our_key_id_fails_the_mac() -> None:
    """A box made with another key but labelled with our key id fails the MAC."""
    ours = Envelope(KeyRing(KEY_A), "session")
    raw = bytearray(unb64(Envelope(KeyRing(KEY_B), "session").seal(PLAINTEXT)))
    raw[1:5] = KeyRing(KEY_A).key_ids[0]
    assert reason_of(ours, b64(bytes(raw))) == Reason.BAD_MAC


@pytest.mark.case("B5")
def test_value_sealed_for_another_cookie_name_does_not_open() -> None:
    """A value sealed for one cookie name does not open under another, with the same keys."""
    ring = KeyRing(KEY_A)
    value = Envelope(ring, "session").seal(PLAINTEXT)
    for other in ("session2", "Session", "__Host-session", ""):
        assert reason_of(Envelope(ring, other), value) == Reason.BAD_MAC
    assert Envelope(ring, "session").open(value) == (PLAINTEXT, True)


# -- size (A15) --------------------------------------------------------------------------------


@pytest.mark.case("A15")
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("A" * (MAX_COOKIE_VALUE + 1), id="4097"),
        pytest.param("A" * 1_000_000, id="1mb"),
        pytest.param("!" * (MAX_COOKIE_VALUE + 1), id="4097-not-base64"),
    ],
)
def test_oversized_value_refused_before_decoding(env: Envelope, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A value over MAX_COOKIE_VALUE is TOO_LARGE without being matched, decoded or opened."""

    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("decoding an oversized cookie")

    monkeypatch.setattr(envelope_module, "b64decode_strict", must_not_run)
    monkeypatch.setattr(envelope_module, "box_open", must_not_run)
    monkeypatch.setattr(base64, "urlsafe_b64decode", must_not_run)
    assert reason_of(env, value) == Reason.TOO_LARGE


@pytest.mark.case("A15")
def test_value_at_the_size_limit_is_still_decoded(env: Envelope) -> None:
    """Exactly MAX_COOKIE_VALUE characters is still decoded (and here fails the MAC)."""
    raw = bytearray(unb64(env.seal(b"x" * 3000)))
    value = b64(bytes(raw))[:MAX_COOKIE_VALUE].ljust(MAX_COOKIE_VALUE, "A")
    assert len(value) == MAX_COOKIE_VALUE
    assert reason_of(env, value) == Reason.BAD_MAC


# -- keys (D3, D5, D6) and the one-MAC-check rule ----------------------------------------------


@pytest.mark.case("D3")
def test_older_key_opens_and_says_so() -> None:
    """A value sealed with an older key in the ring opens, flagged as not current."""
    old = Envelope(KeyRing(KEY_A), "session").seal(PLAINTEXT)
    assert Envelope(KeyRing([KEY_B, KEY_A]), "session").open(old) == (PLAINTEXT, False)


@pytest.mark.case("D5")
def test_removed_key_is_unknown() -> None:
    """Once its key leaves the ring, an old value is UNKNOWN_KEY."""
    old = Envelope(KeyRing([KEY_A, KEY_B]), "session").seal(PLAINTEXT)
    assert reason_of(Envelope(KeyRing([KEY_B, KEY_C]), "session"), old) == Reason.UNKNOWN_KEY


@pytest.mark.case("D6")
def test_new_values_sealed_with_the_current_key() -> None:
    """Sealing always uses the first key of the ring, and says so in the key id."""
    ring = KeyRing([KEY_B, KEY_A, KEY_C])
    for _ in range(5):
        raw = unb64(Envelope(ring, "session").seal(PLAINTEXT))
        assert raw[1:5] == ring.key_ids[0]
        assert Envelope(KeyRing(KEY_B), "session").open(b64(raw)) == (PLAINTEXT, True)


@pytest.mark.case("A16")
def test_opening_checks_one_mac_whatever_the_ring_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 16 keys, opening a value sealed by the last one runs the box's open once, as does a forgery."""
    keys = ring_keys(16)
    ring = KeyRing(keys)
    value = Envelope(KeyRing(keys[-1]), "session").seal(PLAINTEXT)
    calls = []

    def counting(*args: Any) -> bytes:
        calls.append(1)
        result: bytes = box_open(*args)
        return result

    monkeypatch.setattr(envelope_module, "box_open", counting)
    env = Envelope(ring, "session")
    assert env.open(value) == (PLAINTEXT, False)
    assert len(calls) == 1
    bad = bytearray(unb64(value))
    bad[-1] ^= 1
    assert reason_of(env, b64(bytes(bad))) == Reason.BAD_MAC
    assert len(calls) == 2


# -- crypto properties (E1-E3) -----------------------------------------------------------------


@pytest.mark.case("E1")
def test_sealing_twice_differs(env: Envelope) -> None:
    """The same plaintext sealed twice gives two different cookies that both open."""
    first, second = env.seal(PLAINTEXT), env.seal(PLAINTEXT)
    assert first != second
    assert env.open(first) == env.open(second) == (PLAINTEXT, True)
    assert seal(KEY_A, {"u": 1}, issued_at=1) != seal(KEY_A, {"u": 1}, issued_at=1)


@pytest.mark.case("E2")
def test_hundred_thousand_nonces_are_unique(env: Envelope) -> None:
    """100,000 seals carry 100,000 distinct 24-byte nonces."""
    nonces = {unb64(env.seal(b""))[5:HEADER_SIZE] for _ in range(100_000)}
    assert len(nonces) == 100_000
    assert all(len(n) == NONCE_SIZE for n in list(nonces)[:10])


E3_NONCE = bytes(range(24))
E3_PLAINTEXT_HEX = (
    "000000006b49d200"  # issued_at   1_800_000_000, big-endian u64
    "000000006b5c4700"  # expires_at  1_801_209_600 (14 days later)
    "000000006b49d200"  # last_active 1_800_000_000
    "7b22757365725f6964223a34327d"  # {"user_id":42}
)
E3_COOKIE = (
    "AaxW3nwAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhdopGPbW5CewMa2OPDssxum64ob6StPrURLdTK0BKCeOrzyGAxflFMFUKYHven5ZFcPnxakGlI"
)


@pytest.mark.case("E3")
def test_plaintext_layout_pinned() -> None:
    """The plaintext is three big-endian u64 timestamps followed by compact JSON."""
    assert encode(b'{"user_id":42}', 1_800_000_000, 1_801_209_600, 1_800_000_000).hex() == E3_PLAINTEXT_HEX


@pytest.mark.case("E3", "E4", "D11")
def test_version_1_known_answer_vector_still_opens_and_is_resealed() -> None:
    """The version 1 vector, rebuilt from its format's description, opens (as not current) and reseals as version 2."""
    plaintext = bytes.fromhex(E3_PLAINTEXT_HEX)
    key_id = hashlib.blake2b(b"", key=RAW_A, person=b"sealed-kid:v1", digest_size=4).digest()
    subkey = hashlib.blake2b(b"session", key=RAW_A, person=b"sealed-sess:v1", digest_size=32).digest()
    assert key_id.hex() == "ac56de7c"
    assert b64(b"\x01" + key_id + E3_NONCE + crypto_secretbox_easy(plaintext, E3_NONCE, subkey)) == E3_COOKIE
    env = Envelope(KeyRing(KEY_A), "session")
    assert env.open(E3_COOKIE) == (plaintext, False)  # False: the middleware reseals it
    resealed = env.seal(plaintext, nonce=E3_NONCE)
    assert unb64(resealed)[:5] == b"\x02" + KeyRing(KEY_A).key_ids[0]
    assert env.open(resealed) == (plaintext, True)
    opened = unseal(KEY_A, E3_COOKIE, session_cookie="session")
    assert (opened.data, opened.issued_at, opened.expires_at, opened.last_active) == (
        {"user_id": 42},
        1_800_000_000,
        1_801_209_600,
        1_800_000_000,
    )
