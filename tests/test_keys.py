"""Keys: what secret_key accepts, what it refuses and why, and what is derived from it (D1, D2, D7-D10).

A ``keygen`` key is used as it is; a text secret is stretched with Argon2id at startup, so a
cookie offers no fast oracle for guessing it, and obviously guessable secrets are refused.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from nacl.pwhash import argon2id
from starlette.datastructures import Secret

from sealed_sessions import ConfigurationError, KeyRing, Sealer, generate_key
from sealed_sessions._keys import KEY_ID_SIZE, KEY_SIZE, STRETCH_MEMLIMIT, STRETCH_OPSLIMIT
from tests.helpers import KEY_A, KEY_B, KEY_C, PASSPHRASE, RAW_A, START, unb64

HOW_TO = "python -m sealed_sessions keygen"
GUESSABLE = pytest.mark.case("D10")
"""An obviously guessable secret: an alphabet run, a repeated word, counting bytes, printable text as bytes."""
TEN_CHARACTERS = "_29X7__m-797_q_mp9K-p_p-2mXm7_29p-p2_779"
"""A 40-character text secret of exactly ten distinct characters, with no run and few repeated pieces."""


@pytest.mark.case("D1")
@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(KEY_A, id="base64url_text"),
        pytest.param(KEY_A + "=", id="base64url_padded"),
        pytest.param(RAW_A, id="bytes"),
        pytest.param(bytearray(RAW_A), id="bytearray"),
        pytest.param(Secret(KEY_A), id="starlette_secret"),
        pytest.param([KEY_A], id="list_of_one"),
        pytest.param((KEY_A,), id="tuple_of_one"),
        pytest.param([Secret(KEY_A)], id="list_of_secret"),
    ],
)
def test_accepted_forms_of_one_key_are_the_same_key(secret: Any) -> None:
    """Text, padded text, bytes, a Secret and a one-item list of the same key all give the same key id."""
    assert KeyRing(secret).key_ids == KeyRing(KEY_A).key_ids


@pytest.mark.case("D1")
def test_text_secret_is_stretched_and_accepted() -> None:
    """A long, varied text secret is accepted, and differs from any other secret."""
    ring = KeyRing(PASSPHRASE)
    assert len(ring) == 1
    assert ring.key_ids != KeyRing(PASSPHRASE + "x").key_ids


@pytest.mark.case("D1")
def test_key_ring_keeps_its_order_newest_first() -> None:
    """A list keeps its order: the first key is the one that seals."""
    ring = KeyRing([KEY_B, KEY_A, KEY_C])
    assert ring.key_ids == (KeyRing(KEY_B).key_ids[0], KeyRing(KEY_A).key_ids[0], KeyRing(KEY_C).key_ids[0])
    assert KeyRing(ring).key_ids == ring.key_ids


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        pytest.param(RAW_A[:31], "exactly 32 bytes, got 31", id="bytes_too_short", marks=pytest.mark.case("D1")),
        pytest.param(RAW_A + b"x", "exactly 32 bytes, got 33", id="bytes_too_long", marks=pytest.mark.case("D1")),
        pytest.param(b"", "exactly 32 bytes, got 0", id="bytes_empty", marks=pytest.mark.case("D1")),
        pytest.param(12345, "got int", id="int", marks=pytest.mark.case("D1")),
        pytest.param(None, "got NoneType", id="none", marks=pytest.mark.case("D1")),
        pytest.param(3.5, "got float", id="float", marks=pytest.mark.case("D1")),
        pytest.param({"key": KEY_A}, "got dict", id="dict", marks=pytest.mark.case("D1")),
        pytest.param([1, 2, 3], "got int", id="list_of_int", marks=pytest.mark.case("D1")),
        pytest.param([KEY_A, None], "secret_key[1]", id="none_in_ring", marks=pytest.mark.case("D1")),
        pytest.param([], "empty", id="empty_list", marks=pytest.mark.case("D1")),
        pytest.param((), "empty", id="empty_tuple", marks=pytest.mark.case("D1")),
        pytest.param("", "at least 32 characters, got 0", id="empty_text", marks=pytest.mark.case("D1")),
        pytest.param(
            KEY_A[:20], "at least 32 characters, got 20", id="truncated_key_text", marks=pytest.mark.case("D2")
        ),
        pytest.param("hunter2", "at least 32 characters", id="short_text", marks=pytest.mark.case("D2")),
        pytest.param("ab" * 40, "too repetitive", id="repetitive_text", marks=pytest.mark.case("D2")),
        pytest.param("abcdefghi" * 5, "too repetitive", id="nine_distinct_characters", marks=pytest.mark.case("D2")),
        pytest.param(b"\x00" * 32, "not random", id="zero_bytes", marks=pytest.mark.case("D2")),
        pytest.param(bytes([7]) * 32, "not random", id="repeated_byte", marks=pytest.mark.case("D2")),
        pytest.param(bytes(range(8)) * 4, "not random", id="few_distinct_bytes", marks=pytest.mark.case("D2")),
        pytest.param("A" * 43, "not random", id="repeated_byte_as_text", marks=pytest.mark.case("D2")),
        pytest.param("abcdefghijklmnopqrstuvwxyz012345", "consecutive characters", id="alphabet", marks=GUESSABLE),
        pytest.param("passwordpasswordpassword12345678", "pieces recur", id="repeated_word", marks=GUESSABLE),
        pytest.param("0123456789-session-secret-for-prod", "consecutive characters", id="digits_run", marks=GUESSABLE),
        pytest.param(bytes(range(32)), "count up or down", id="counting_bytes", marks=GUESSABLE),
        pytest.param(bytes(range(255, 223, -1)), "count up or down", id="counting_down_bytes", marks=GUESSABLE),
        pytest.param(b"MyCompanyName-session-secret-24!", "printable text", id="text_as_bytes", marks=GUESSABLE),
        pytest.param([KEY_A, KEY_B, KEY_A], "secret_key[2] repeats", id="duplicate_key", marks=pytest.mark.case("D2")),
        pytest.param(
            [KEY_A, RAW_A], "secret_key[1] repeats", id="duplicate_in_another_form", marks=pytest.mark.case("D2")
        ),
        pytest.param(KEY_A + "\n", "whitespace", id="trailing_newline", marks=pytest.mark.case("D1")),
        pytest.param(" " + PASSPHRASE, "whitespace", id="leading_space", marks=pytest.mark.case("D1")),
    ],
)
def test_bad_keys_are_refused_with_advice(secret: Any, fragment: str) -> None:
    """A missing, mistyped, weak or duplicated key raises ConfigurationError that says what is wrong."""
    with pytest.raises(ConfigurationError) as info:
        KeyRing(secret)
    message = str(info.value)
    assert fragment in message
    if "repeats" not in fragment:
        assert HOW_TO in message


@pytest.mark.case("D1")
def test_text_secret_needs_ten_distinct_characters() -> None:
    """The distinct-character threshold for text secrets is exactly ten."""
    assert len(set(TEN_CHARACTERS)) == 10
    assert len(KeyRing(TEN_CHARACTERS)) == 1
    with pytest.raises(ConfigurationError, match="too repetitive"):
        KeyRing(TEN_CHARACTERS.replace("q", "7"))


@pytest.mark.case("D1")
def test_text_secret_needs_32_characters() -> None:
    """A 32-character varied text secret is accepted and a 31-character one refused."""
    assert len(KeyRing(PASSPHRASE[:32])) == 1
    with pytest.raises(ConfigurationError, match="got 31"):
        KeyRing(PASSPHRASE[:31])


@pytest.mark.case("D7")
@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(KEY_A[:30], id="short_text"),
        pytest.param(KEY_A * 3 + "\n", id="whitespace"),
        pytest.param("s3cr3t-s3cr3t-s3cr3t", id="short_passphrase"),
        pytest.param([KEY_A, KEY_A], id="duplicate"),
    ],
)
def test_refused_secret_never_appears_in_the_error(secret: Any) -> None:
    """The refused secret (or any part of it longer than a few characters) never appears in the error."""
    with pytest.raises(ConfigurationError) as info:
        KeyRing(secret)
    message = str(info.value) + repr(info.value)
    text = secret[0] if isinstance(secret, list) else secret
    for start in range(0, len(text) - 8):
        assert text[start : start + 8] not in message


@pytest.mark.case("D7")
def test_keys_never_appear_in_repr() -> None:
    """repr() of a KeyRing and of a Sealer shows key ids and counts, never key material."""
    ring = KeyRing([KEY_A, KEY_B, PASSPHRASE])
    shown = repr(ring) + repr(Sealer(ring)) + str(ring)
    assert "3 key(s)" in repr(ring)
    for secret in (KEY_A, KEY_B, PASSPHRASE):
        assert secret[:10] not in shown
    for raw in (RAW_A, base64.urlsafe_b64decode(KEY_B + "=")):
        assert raw.hex()[:16] not in shown
        assert repr(raw)[2:14] not in shown
    for subkey in ring.subkeys("session").values():
        assert subkey.hex()[:16] not in shown


@pytest.mark.case("D7")
def test_keyring_has_no_instance_dict_to_leak() -> None:
    """KeyRing and Sealer use __slots__, so vars() and debuggers' __dict__ dumps find nothing."""
    ring = KeyRing(KEY_A)
    assert not hasattr(ring, "__dict__")
    assert not hasattr(Sealer(ring), "__dict__")


@pytest.mark.case("D8")
def test_subkeys_differ_per_cookie_name() -> None:
    """Each cookie name gets its own subkey, different from the master key and from other names."""
    ring = KeyRing(KEY_A)
    names = ["session", "session2", "Session", "__Host-session", "", "s" * 200]
    subkeys = [ring.subkeys(name)[ring.key_ids[0]] for name in names]
    assert len(set(subkeys)) == len(names)
    assert RAW_A not in subkeys
    assert all(len(k) == KEY_SIZE for k in subkeys)
    assert ring.subkeys("session") == KeyRing(KEY_A).subkeys("session")  # deterministic


@pytest.mark.case("D8")
def test_subkeys_differ_per_master_key() -> None:
    """The same cookie name under two master keys gives two different subkeys."""
    ring = KeyRing([KEY_A, KEY_B])
    first, second = ring.subkeys("session").values()
    assert first != second


@pytest.mark.case("D8")
def test_key_ids_are_stable_and_distinct() -> None:
    """Key ids are 4 bytes, the same on every run (pinned), and differ between keys."""
    assert KeyRing(KEY_A).key_ids[0].hex() == "13140276"
    ids = [KeyRing(k).key_ids[0] for k in (KEY_A, KEY_B, KEY_C, PASSPHRASE)]
    assert len(set(ids)) == 4
    assert all(len(i) == KEY_ID_SIZE for i in ids)


@pytest.mark.case("D1")
def test_generate_key_is_accepted_and_random() -> None:
    """generate_key() gives 43-character base64url text that KeyRing accepts, fresh on every call."""
    keys = [generate_key() for _ in range(50)]
    assert len(set(keys)) == 50
    for key in keys[:5]:
        assert len(key) == 43
        assert len(base64.urlsafe_b64decode(key + "=")) == KEY_SIZE
        assert len(KeyRing(key)) == 1
    assert len(KeyRing(keys)) == 50  # fifty distinct keys form one ring


@pytest.mark.case("D2")
@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(f"{KEY_A},{KEY_B}", id="comma_joined_keys"),
        pytest.param("correct horse battery staple is not a random key", id="phrase_with_spaces"),
        pytest.param("tab\tseparated-secret-of-more-than-32-characters", id="tab_inside"),
    ],
)
def test_text_secret_with_commas_or_whitespace_is_refused(secret: str) -> None:
    """A comma-joined key list or a human phrase is refused with advice to pass a list, never taken as one key."""
    with pytest.raises(ConfigurationError, match="commas or whitespace") as raised:
        KeyRing(secret)
    assert "pass several keys as a list" in str(raised.value)
    assert KEY_A not in str(raised.value)


# -- text secrets: stretched (D9), guessable ones refused (D10) -------------------------------------


@pytest.mark.case("D9")
def test_text_secret_is_stretched_with_argon2id_at_startup() -> None:
    """A text secret's master key is Argon2id(text) with the documented cost, and its key id derives from that."""
    stretched = argon2id.kdf(
        KEY_SIZE, PASSPHRASE.encode(), b"sealed-sessions2", opslimit=STRETCH_OPSLIMIT, memlimit=STRETCH_MEMLIMIT
    )
    expected_id = hashlib.blake2b(b"", key=stretched, person=b"sealed-kid:v2", digest_size=KEY_ID_SIZE).digest()
    assert KeyRing(PASSPHRASE).key_ids == (expected_id,)
    assert (STRETCH_OPSLIMIT, STRETCH_MEMLIMIT) >= (3, 64 * 1024 * 1024)  # each guess costs this much too


@pytest.mark.case("D9")
def test_stretching_runs_once_per_secret_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building many rings from the same text secret stretches it once (the costly step is cached)."""
    calls: list[bytes] = []
    real = argon2id.kdf

    def counting(*args: Any, **kwargs: Any) -> bytes:
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(argon2id, "kdf", counting)  # the module _keys calls through
    secret = "Zq8-unique-text-secret-for-the-cache-test_7Kp"
    for _ in range(5):
        KeyRing(secret)
    assert calls == [secret.encode()]


@pytest.mark.case("D9")
def test_a_cookie_gives_no_fast_oracle_for_guesses() -> None:
    """The key id in a cookie from a text secret matches no fast hash of the secret, in either format's derivation."""
    value = Sealer(PASSPHRASE).seal({"a": 1}, issued_at=START, expires_at=None, last_active=START)
    key_id = KeyRing(PASSPHRASE).key_ids[0]
    raw = unb64(value)
    assert raw[0] == 2 and raw[1 : 1 + KEY_ID_SIZE] == key_id  # version 2, carrying the stretched key's id
    fast_master = hashlib.blake2b(PASSPHRASE.encode(), person=b"sealed-pass:v1", digest_size=KEY_SIZE).digest()
    for person in (b"sealed-kid:v1", b"sealed-kid:v2"):
        assert hashlib.blake2b(b"", key=fast_master, person=person, digest_size=KEY_ID_SIZE).digest() != key_id


@pytest.mark.case("D9")
def test_random_keys_are_used_as_they_are() -> None:
    """A keygen key is not stretched: its key id is the keyed hash of its 32 raw bytes."""
    expected = hashlib.blake2b(b"", key=RAW_A, person=b"sealed-kid:v2", digest_size=KEY_ID_SIZE).digest()
    assert KeyRing(RAW_A).key_ids == KeyRing(KEY_A).key_ids == (expected,)


@pytest.mark.case("D10", "D11")
def test_a_text_secret_that_passes_the_checks_is_still_only_a_text_secret() -> None:
    """A company-name style secret passes the checks (they prove nothing) and gets no version 1 (unstretched) key."""
    ring = KeyRing("MyCompanyName-session-secret-2024")
    assert len(ring) == 1
    assert ring.v1_subkeys("session") == {}
    assert len(KeyRing(KEY_A).v1_subkeys("session")) == 1  # a random key keeps its version 1 subkey
