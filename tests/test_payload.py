"""The plaintext inside the box: timestamps plus a JSON object, checked the same way on write and read (B1-B8)."""

from __future__ import annotations

import json
import marshal
import math
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_sessions import InvalidCookie, Reason, Sealer, SessionDataError
from sealed_sessions._payload import MAX_DEPTH, check_json_value, decode, dump_data, encode
from sealed_sessions.testing import seal, unseal
from tests.helpers import KEY_A, START
from tests.test_properties import json_values


def nested(levels: int, leaf: Any = 0) -> Any:
    """``levels`` lists around ``leaf``: nested(0) is the leaf itself, depth 1."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def body_reason(body: bytes) -> Reason:
    with pytest.raises(InvalidCookie) as info:
        decode(encode(body, START, START + 60, START), sealed_with_current_key=True)
    return info.value.reason


def sealed_body(body: bytes) -> str:
    """A cookie made with the real key whose plaintext body is ``body``, bypassing every check."""
    return Sealer(KEY_A).seal_json(body, issued_at=START, expires_at=START + 60, last_active=START)


@pytest.fixture
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every unpickling or unmarshalling entry point fail the test if anything calls it."""

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pickle or marshal called on a cookie")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    for name in ("loads", "load"):
        monkeypatch.setattr(marshal, name, forbidden)


@pytest.mark.case("B1")
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json at all", id="text"),
        pytest.param(b"{", id="unterminated"),
        pytest.param(b"{'a': 1}", id="python_repr"),
        pytest.param(b'{"a":1}trailing', id="trailing"),
        pytest.param(b"\x00\x01", id="binary"),
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="one_byte"),
    ],
)
def test_body_that_is_not_json_is_bad_payload(body: bytes) -> None:
    """An authentic plaintext whose body is not JSON is BAD_PAYLOAD."""
    assert body_reason(body) == Reason.BAD_PAYLOAD


@pytest.mark.case("B2")
@pytest.mark.parametrize("body", [b"null", b"0", b"42", b"1.5", b'"str"', b"[]", b"[1,2]", b"true"])
def test_json_that_is_not_an_object_is_bad_payload(body: bytes) -> None:
    """JSON that is not an object (null, number, string, array, bool) is BAD_PAYLOAD."""
    assert body_reason(body) == Reason.BAD_PAYLOAD


@pytest.mark.case("B3")
@pytest.mark.parametrize("size", range(25))
def test_plaintext_shorter_than_its_header_is_bad_payload(size: int) -> None:
    """A plaintext shorter than the 24-byte header plus "{}" is BAD_PAYLOAD."""
    with pytest.raises(InvalidCookie) as info:
        decode(encode(b"{}", START, START + 60, START)[:size], sealed_with_current_key=True)
    assert info.value.reason == Reason.BAD_PAYLOAD


@pytest.mark.case("B3")
def test_timestamps_beyond_int64_are_bad_payload() -> None:
    """A timestamp field with the top bit set is BAD_PAYLOAD, not a huge date."""
    for field in range(3):
        header = bytearray(encode(b"{}", START, START + 60, START))
        header[field * 8] = 0x80
        with pytest.raises(InvalidCookie) as info:
            decode(bytes(header), sealed_with_current_key=True)
        assert info.value.reason == Reason.BAD_PAYLOAD


@pytest.mark.case("B4")
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"a":"\xff"}', id="invalid_byte"),
        pytest.param(b'{"a":"\xc3"}', id="truncated_sequence"),
        pytest.param(b'{"a":"\xed\xa0\x80"}', id="encoded_surrogate"),
        pytest.param(b'{"a":"\xc0\xaf"}', id="overlong"),
        pytest.param(b'\xef\xbb\xbf{"a":1}', id="utf8_bom"),
        pytest.param('{"a":1}'.encode("utf-16"), id="utf16"),
        pytest.param('{"a":1}'.encode("utf-16-le"), id="utf16le"),
        pytest.param('{"a":1}'.encode("utf-32"), id="utf32"),
        pytest.param(b'{"a":"\\ud800"}', id="escaped_lone_surrogate"),
        pytest.param(b'{"\\udfff":1}', id="lone_surrogate_key"),
    ],
)
def test_plaintext_not_in_strict_utf8_is_bad_payload(body: bytes) -> None:
    """Anything but strict UTF-8 text (invalid bytes, BOM, UTF-16/32, lone surrogates) is BAD_PAYLOAD."""
    assert body_reason(body) == Reason.BAD_PAYLOAD


@pytest.mark.case("B1")
@pytest.mark.parametrize(
    "body",
    [
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":-Infinity}',
        b'{"a":1e999}',
        b'{"a":[-1e400]}',
        b'{"a":1' + b"0" * 5000 + b"}",
    ],
)
def test_numbers_json_cannot_carry_are_bad_payload(body: bytes) -> None:
    """NaN, Infinity, overflowing floats and over-long integers are BAD_PAYLOAD."""
    assert body_reason(body) == Reason.BAD_PAYLOAD


@pytest.mark.case("B1")
def test_depth_limit_on_read() -> None:
    """A value MAX_DEPTH deep under a key opens; one level deeper is BAD_PAYLOAD."""
    ok = json.dumps({"k": nested(MAX_DEPTH - 1)}).encode()
    assert decode(encode(ok, START, 0, START), sealed_with_current_key=True).data == {"k": nested(MAX_DEPTH - 1)}
    assert body_reason(json.dumps({"k": nested(MAX_DEPTH)}).encode()) == Reason.BAD_PAYLOAD
    assert body_reason(b'{"k":' + b"[" * 100_000 + b"]" * 100_000 + b"}") == Reason.BAD_PAYLOAD


@pytest.mark.case("B8")
def test_write_and_read_depth_limits_agree() -> None:
    """Whatever check_json_value accepts opens again, and one level more is refused at write time."""
    deepest = {"k": nested(MAX_DEPTH - 1), "d": {"x": nested(MAX_DEPTH - 2)}, "e": nested(MAX_DEPTH - 1, [])}
    for key, value in deepest.items():
        check_json_value(key, value)
    assert unseal(KEY_A, seal(KEY_A, deepest)).data == deepest
    with pytest.raises(SessionDataError, match="nested more than"):
        check_json_value("k", nested(MAX_DEPTH))


@pytest.mark.case("B6")
@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(pickle.dumps({"user_id": 1}), id="pickle"),
        pytest.param(pickle.dumps({"user_id": 1}, protocol=0), id="pickle_protocol_0"),
        pytest.param(b"cos\nsystem\n(S'true'\ntR.", id="pickle_reduce"),
        pytest.param(marshal.dumps({"user_id": 1}), id="marshal"),
        pytest.param(marshal.dumps(compile("1", "<x>", "eval")), id="marshal_code"),
    ],
)
def test_pickle_and_marshal_refused_without_unpickling(payload: bytes, no_pickle: None) -> None:
    """A pickle or marshal payload sealed with the real key is BAD_PAYLOAD, and no unpickler runs."""
    with pytest.raises(InvalidCookie) as info:
        decode(payload, sealed_with_current_key=True)  # the bytes alone, read as a whole plaintext
    assert info.value.reason == Reason.BAD_PAYLOAD
    with pytest.raises(InvalidCookie) as info:
        unseal(KEY_A, sealed_body(payload))  # behind our header, sealed with the real key
    assert info.value.reason == Reason.BAD_PAYLOAD


@pytest.mark.case("B7")
@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="empty"),
        pytest.param({"name": "Zoë 東京 🍪", "rtl": "\u202eabc", "nul": "\x00", "quote": '"\\'}, id="unicode_emoji"),
        pytest.param({"🍪": 1, "": 2, " ": 3}, id="unicode_keys"),
        pytest.param({"a": {"b": {"c": [1, 2.5, -0.0, None, True, False, "x", [], {}]}}}, id="nested"),
        pytest.param({"big": 2**200, "neg": -(2**63), "tiny": 5e-324, "max": 1.7976931348623157e308}, id="numbers"),
        pytest.param({str(i): i for i in range(100)}, id="many_keys"),
    ],
)
def test_session_data_round_trips_with_key_order_and_types(data: dict[str, Any]) -> None:
    """Session data comes back equal, with key order and value types kept."""
    opened = decode(encode(dump_data(data), START, None, START), sealed_with_current_key=True).data
    assert opened == data
    assert list(opened) == list(data)
    assert json.dumps(opened) == json.dumps(data)
    assert unseal(KEY_A, seal(KEY_A, data)).data == data


@pytest.mark.case("B7")
def test_dump_is_compact_utf8() -> None:
    """dump_data writes compact separators and raw UTF-8, not \\u escapes."""
    assert dump_data({"a": [1, 2], "é": "🍪"}) == '{"a":[1,2],"é":"🍪"}'.encode()


class Custom:
    pass


@pytest.mark.case("B8")
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param((1, 2), "tuple is not a JSON type", id="tuple"),
        pytest.param({1, 2}, "set is not a JSON type", id="set"),
        pytest.param(frozenset(), "frozenset is not a JSON type", id="frozenset"),
        pytest.param(b"bytes", "bytes is not a JSON type", id="bytes"),
        pytest.param(bytearray(b"x"), "bytearray is not a JSON type", id="bytearray"),
        pytest.param({1: "a"}, "object keys must be str, got int", id="int_key"),
        pytest.param({None: "a"}, "object keys must be str, got NoneType", id="none_key"),
        pytest.param({("a",): 1}, "object keys must be str, got tuple", id="tuple_key"),
        pytest.param(math.nan, "nan is not a JSON number", id="nan"),
        pytest.param(math.inf, "inf is not a JSON number", id="inf"),
        pytest.param(-math.inf, "-inf is not a JSON number", id="minus_inf"),
        pytest.param([1, [2, math.nan]], "nan is not a JSON number", id="nested_nan"),
        pytest.param("a\ud800b", "lone surrogate", id="lone_surrogate"),
        pytest.param({"\udfff": 1}, "lone surrogate", id="lone_surrogate_in_key"),
        pytest.param(nested(MAX_DEPTH), "nested more than 32", id="too_deep"),
        pytest.param(Custom(), "Custom is not a JSON type", id="custom_object"),
        pytest.param(object(), "object is not a JSON type", id="object"),
        pytest.param(10**5000, "too many digits", id="huge_int"),
        pytest.param([{"ok": 1}, {"bad": (1,)}], "tuple is not a JSON type", id="deep_tuple"),
    ],
)
def test_check_json_value_refuses_and_names_the_key(value: Any, fragment: str) -> None:
    """Non-JSON values raise SessionDataError naming the session key and the problem."""
    with pytest.raises(SessionDataError) as info:
        check_json_value("cart", value)
    assert "session['cart']" in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.case("B8")
@pytest.mark.parametrize("key", [1, None, b"k", ("a",)])
def test_non_string_session_key_refused(key: Any) -> None:
    """A session key that is not a str is refused with its type named."""
    with pytest.raises(SessionDataError, match=f"session keys must be str, got {type(key).__name__}"):
        check_json_value(key, 1)


@pytest.mark.case("B8")
def test_lone_surrogate_session_key_refused() -> None:
    """A session key holding a lone surrogate is refused at write time, not when the response is sealed."""
    with pytest.raises(SessionDataError, match="lone surrogate"):
        check_json_value("\ud800", 1)


@pytest.mark.case("B8")
def test_self_reference_refused() -> None:
    """A list that contains itself is refused as too deep rather than recursing forever."""
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SessionDataError, match="nested more than"):
        check_json_value("loop", loop)
    with pytest.raises(SessionDataError, match=r"session\['loop'\]"):
        dump_data({"loop": loop})


@pytest.mark.case("B8")
def test_dump_data_names_the_bad_key() -> None:
    """dump_data on data that bypassed the checks names the offending key."""
    with pytest.raises(SessionDataError, match=r"session\['when'\].*set is not a JSON type"):
        dump_data({"ok": 1, "when": {1}})


@pytest.mark.case("B8")
def test_seal_refuses_bad_data() -> None:
    """testing.seal applies the same write-time checks as the session."""
    with pytest.raises(SessionDataError, match=r"session\['t'\]"):
        seal(KEY_A, {"t": (1, 2)})


def test_check_json_value_accepts_json_types() -> None:
    """Every JSON type, and the deepest allowed nesting, is accepted and does round-trip as JSON."""
    values: list[Any] = [None, True, 0, -1, 2**100, 1.5, -0.0, "", "🍪", [], {}, {"a": [None]}, nested(MAX_DEPTH - 1)]
    for value in values:
        check_json_value("k", value)  # raises SessionDataError on a refusal
        assert json.loads(dump_data({"k": value})) == {"k": value}


def test_timestamps_round_trip_and_zero_expiry_means_none() -> None:
    """The three timestamps come back as sealed, and an expiry of None is stored as 0 and read as None."""
    payload = decode(encode(b'{"a":1}', 1, 2**63 - 1, 3), sealed_with_current_key=False)
    assert (payload.issued_at, payload.expires_at, payload.last_active) == (1, 2**63 - 1, 3)
    assert not payload.sealed_with_current_key
    assert decode(encode(b"{}", START, None, START), sealed_with_current_key=True).expires_at is None
    assert payload.data_json == b'{"a":1}'


# -- the encoder built once ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_the_encoder_built_once_writes_what_json_writes(data: dict[str, Any]) -> None:
    """dump_data's encoder gives exactly the bytes of json.dumps(compact, ensure_ascii=False) for any JSON data."""
    assert dump_data(data) == json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def test_a_cycle_or_a_foreign_object_is_a_session_data_error() -> None:
    """Without a circular-reference check, a cycle still ends as SessionDataError, as a non-JSON object does."""
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SessionDataError):
        dump_data({"loop": cycle})
    with pytest.raises(SessionDataError):
        dump_data({"when": object()})
    assert dump_data({"ok": [1]}) == b'{"ok":[1]}'  # a failed encoding leaves nothing behind
