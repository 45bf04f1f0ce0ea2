"""Opt-in compression of the sealed data (``compress=True``): smaller cookies, bounded inflation (V5-V7)."""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealed_sessions import InvalidCookie, Reason, Sealer
from sealed_sessions._payload import MAX_PLAINTEXT, decode, encode
from tests.helpers import KEY_A, START, FakeClock, call, cookie, session_app

REPETITIVE = {"cart": [{"sku": f"ITEM-{i:04d}", "qty": 1, "note": "gift wrap please"} for i in range(40)]}
HEADER = struct.pack(">QQQ", START, START + 60, START)


def seal(data: dict[str, Any], *, compress: bool) -> str:
    return Sealer(KEY_A, compress=compress).seal(data, issued_at=START, expires_at=START + 60, last_active=START)


def sealed_plaintext(plaintext: bytes) -> str:
    """A value sealed with the real key around any plaintext (timestamps included), bypassing every check."""
    from sealed_sessions._envelope import Envelope
    from sealed_sessions._keys import KeyRing

    return Envelope(KeyRing(KEY_A), "__Host-session").seal(plaintext)


def test_repetitive_data_seals_smaller_and_opens_equal() -> None:
    """With compression a repetitive session is a fraction of its plain size and opens to the same data."""
    plain, packed = seal(REPETITIVE, compress=False), seal(REPETITIVE, compress=True)
    assert len(packed) < len(plain) / 3
    assert Sealer(KEY_A).open(packed, START).data == REPETITIVE


def test_small_data_is_not_compressed() -> None:
    """Data under the threshold is sealed exactly as without compression (zlib's overhead would eat the gain)."""
    small = {"user": 1, "name": "Ada"}
    assert len(seal(small, compress=True)) == len(seal(small, compress=False))


def test_data_that_would_not_shrink_is_stored_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """When compressing does not make the data shorter, the plain JSON is sealed."""
    data_json = b'{"blob":"' + os.urandom(300).hex().encode() + b'"}'
    monkeypatch.setattr(zlib, "compress", lambda data, level: data + b"longer")
    assert encode(data_json, START, None, START, compress=True).endswith(data_json)


def test_compressed_cookie_opens_with_compression_off() -> None:
    """Turning compression off again logs nobody out: compressed cookies still open."""
    assert Sealer(KEY_A, compress=False).open(seal(REPETITIVE, compress=True), START).data == REPETITIVE


def test_change_detection_compares_the_uncompressed_json() -> None:
    """An opened compressed cookie remembers its JSON, so an unchanged session is recognised as such."""
    opened = Sealer(KEY_A).open(seal(REPETITIVE, compress=True), START)
    assert opened.data_json == encode_json(REPETITIVE)


def encode_json(data: dict[str, Any]) -> bytes:
    from sealed_sessions._payload import dump_data

    return dump_data(data)


@pytest.mark.case("V5")
def test_decompression_bomb_is_bad_payload_without_inflating_it() -> None:
    """A sealed payload inflating past MAX_PLAINTEXT is refused after at most MAX_PLAINTEXT bytes."""
    bomb = b'{"a":"' + b"0" * (MAX_PLAINTEXT * 4) + b'"}'
    value = sealed_plaintext(HEADER + b"\x00" + zlib.compress(bomb, 9))
    assert len(value) < 4096  # small on the wire, huge inflated
    with pytest.raises(InvalidCookie) as info:
        Sealer(KEY_A).open(value, START)
    assert info.value.reason is Reason.BAD_PAYLOAD


@pytest.mark.case("V6")
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x00", id="marker-only"),
        pytest.param(b"\x00not zlib", id="not-zlib"),
        pytest.param(b"\x00" + zlib.compress(b'{"a":1}')[:-3], id="truncated"),
        pytest.param(b"\x00" + zlib.compress(b'{"a":1}') + b"extra", id="trailing-bytes"),
        pytest.param(b"\x00" + zlib.compress(b"[1,2]"), id="not-an-object"),
        pytest.param(b"\x00" + zlib.compress(b'{"a":NaN}'), id="nan"),
        pytest.param(b"\x00" + zlib.compress(b"\x00" + zlib.compress(b'{"a":1}')), id="nested-compression"),
    ],
)
def test_bad_compressed_bodies_are_bad_payload(body: bytes) -> None:
    """A compressed body that is corrupt, truncated, trailed, nested or not a JSON object never opens."""
    with pytest.raises(InvalidCookie) as info:
        decode(HEADER + body, sealed_with_current_key=True)
    assert info.value.reason is Reason.BAD_PAYLOAD


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.integers(), st.text(max_size=30), st.lists(st.text(max_size=5), max_size=8)),
        max_size=20,
    )
)
def test_round_trip_with_compression(data: dict[str, Any]) -> None:
    """Any JSON session sealed with compression opens to equal data (K2 with compress=True)."""
    plaintext = encode(encode_json(data), START, START + 60, START, compress=True)
    assert decode(plaintext, sealed_with_current_key=True).data == data


async def test_middleware_with_compression_round_trips_and_stays_quiet_when_unchanged() -> None:
    """Through the middleware a compressed session opens, reads without resealing, and writes anew."""
    app = session_app(compress=True, clock=FakeClock())
    value = seal(REPETITIVE, compress=True)
    read = await call(app, cookie(value))
    assert read.json() == REPETITIVE
    assert read.set_cookie == []
    written = await call(app, cookie(value), path="/write")
    assert Sealer(KEY_A).open(written.cookie_value(), START + 1).data == {**REPETITIVE, "n": 1}
