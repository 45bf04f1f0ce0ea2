"""The Sealer: the one open/seal recipe, the version 2 format, context binding and version 1 compatibility.

Catalogue E3 (the version 2 known-answer vector), B9 (context), D11 (version 1 under a context).
The corpus of version 1 cookies from release 0.1 is opened in test_testing.py.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from nacl.bindings import crypto_secretbox_easy

from sealed_sessions import ConfigurationError, InvalidCookie, Reason, Sealer, SessionTooLarge
from tests.helpers import CORPUS_V1, DAY, KEY_A, KEY_B, RAW_A, START, b64

V2_NONCE = bytes(range(24))
V2_PLAINTEXT = bytes.fromhex(
    "000000006b49d200"  # issued_at   1_800_000_000
    "000000006b5c4700"  # expires_at  1_801_209_600
    "000000006b49d200"  # last_active 1_800_000_000
    "7b22757365725f6964223a34327d"  # {"user_id":42}
)
V2_COOKIE = (
    "AhMUAnYAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhePdINYO6s0FN7KXmj-BJ6ytqjmB5g2qgd13uCxyc4V-QVGI8ShhvkpoVEaazaY8GGhWKmtFiY"
)
V2_COOKIE_SHOP = (
    "AhMUAnYAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhczInkZyLqdqmHdUWw8euPSwvL9OFK8WJL1tSXCfB0W6xg7ZJj36XSgkkpEO20W2v2tGvo6L7s"
)


def seal_at(sealer: Sealer, data: dict[str, Any], *, nonce: bytes | None = None) -> str:
    """``data`` sealed by ``sealer`` at START, for fourteen days."""
    return sealer.seal(data, issued_at=START, expires_at=START + 14 * DAY, last_active=START, nonce=nonce)


@pytest.mark.case("E3")
def test_version_2_known_answer_vector_by_code_and_by_spec() -> None:
    """A fixed key, name, context, nonce and payload give this exact version 2 cookie, by the code and by the spec."""
    assert seal_at(Sealer(KEY_A, "__Host-session"), {"user_id": 42}, nonce=V2_NONCE) == V2_COOKIE
    assert seal_at(Sealer(KEY_A, "session", context="shop"), {"user_id": 42}, nonce=V2_NONCE) == V2_COOKIE_SHOP
    # The same values built from the format description alone (_keys.py and _envelope.py).
    key_id = hashlib.blake2b(b"", key=RAW_A, person=b"sealed-kid:v2", digest_size=4).digest()
    for name, context, expected in ((b"__Host-session", b"", V2_COOKIE), (b"session", b"shop", V2_COOKIE_SHOP)):
        data = len(name).to_bytes(2, "big") + name + len(context).to_bytes(2, "big") + context
        subkey = hashlib.blake2b(data, key=RAW_A, person=b"sealed-sess:v2", digest_size=32).digest()
        box = crypto_secretbox_easy(V2_PLAINTEXT, V2_NONCE, subkey)
        assert b64(b"\x02" + key_id + V2_NONCE + box) == expected


@pytest.mark.case("B9")
def test_context_binds_a_cookie_to_its_application() -> None:
    """A cookie sealed for the "shop" context never opens in "admin" or with no context, with the same key and name."""
    shop = seal_at(Sealer(KEY_A, context="shop"), {"user_id": 1})
    assert Sealer(KEY_A, context="shop").peek(shop).data == {"user_id": 1}
    for other in ("admin", "", "shop ", "Shop"):
        with pytest.raises(InvalidCookie) as info:
            Sealer(KEY_A, context=other).peek(shop)
        assert info.value.reason == Reason.BAD_MAC
    plain = seal_at(Sealer(KEY_A), {"user_id": 1})
    with pytest.raises(InvalidCookie):
        Sealer(KEY_A, context="shop").peek(plain)


@pytest.mark.case("B9")
def test_context_is_length_prefixed_so_name_and_context_cannot_be_shifted() -> None:
    """Moving characters between the cookie name and the context gives a different subkey (no ambiguity)."""
    value = seal_at(Sealer(KEY_A, "ab", context="c"), {"a": 1})
    with pytest.raises(InvalidCookie):
        Sealer(KEY_A, "a", context="bc").peek(value)


@pytest.mark.parametrize("context", [b"shop", "x" * 256, "é" * 128])
def test_context_must_be_a_short_str(context: Any) -> None:
    """A context that is not a str, or over 255 UTF-8 bytes, is refused at startup."""
    with pytest.raises(ConfigurationError, match="context"):
        Sealer(KEY_A, context=context)


@pytest.mark.case("D11")
def test_version_1_cookies_do_not_open_under_a_context() -> None:
    """Version 1 had no context: with a context set, a version 1 cookie is refused rather than trusted."""
    entry = next(e for e in CORPUS_V1["opens"] if e["id"] == "basic")
    with pytest.raises(InvalidCookie) as info:
        Sealer(entry["open_keys"], entry["cookie_name"], context="shop").peek(entry["cookie"])
    assert info.value.reason == Reason.UNKNOWN_KEY


def test_open_judges_expiry_and_peek_does_not() -> None:
    """open() refuses a value past its sealed expiry with EXPIRED; peek() still shows its contents."""
    sealer = Sealer(KEY_A, max_age=60)
    value = sealer.seal({"a": 1}, issued_at=START, expires_at=sealer.lifetime.expiry_for(START), last_active=START)
    assert sealer.open(value, START + 59).data == {"a": 1}
    with pytest.raises(InvalidCookie) as info:
        sealer.open(value, START + 60)
    assert info.value.reason == Reason.EXPIRED
    assert sealer.peek(value).expires_at == START + 60


@pytest.mark.case("D3", "D6")
def test_seal_uses_the_current_key_and_opens_with_older_ones() -> None:
    """The first key of the ring seals; a value from the older key opens, flagged for resealing."""
    old = seal_at(Sealer(KEY_B), {"a": 1})
    ring = Sealer([KEY_A, KEY_B])
    assert not ring.peek(old).sealed_with_current_key
    assert ring.peek(seal_at(ring, {"a": 1})).sealed_with_current_key
    assert Sealer(KEY_A).peek(seal_at(ring, {"a": 1})).data == {"a": 1}


@pytest.mark.case("F6")
def test_seal_refuses_a_value_too_long_for_any_cookie() -> None:
    """Data whose sealed value would pass 4096 characters raises SessionTooLarge naming the cookie."""
    with pytest.raises(SessionTooLarge, match="__Host-session"):
        seal_at(Sealer(KEY_A, "__Host-session"), {"big": "x" * 4000})


@pytest.mark.case("D7")
def test_repr_names_the_cookie_and_never_the_key() -> None:
    """repr(Sealer) names the cookie, context and key count, and holds no key material."""
    shown = repr(Sealer([KEY_A, KEY_B], "sid", context="shop"))
    assert "'sid'" in shown and "'shop'" in shown and "2 key(s)" in shown
    assert KEY_A not in shown and KEY_B not in shown and RAW_A.hex() not in shown
