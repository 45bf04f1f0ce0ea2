"""StarletteCookie against cookies made by the installed Starlette's own SessionMiddleware (catalogue S).

Cookies come from a real Starlette app driven through httpx, with itsdangerous' clock set to
START (its ``get_timestamp`` is the overridable clock); hand-made values are signed with
itsdangerous itself, so only the reader under test is ours. ``now`` is always passed explicitly.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pickle  # only to build a payload that must be refused
from typing import Any

import itsdangerous
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.datastructures import Secret
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sealed_sessions import ConfigurationError, InvalidCookie, Reason
from sealed_sessions._envelope import MAX_COOKIE_VALUE
from sealed_sessions._lifetime import CLOCK_SKEW
from sealed_sessions._migration import LegacyCookie, LegacySession, StarletteCookie
from sealed_sessions.testing import seal
from tests.helpers import DAY, KEY_A, START, https_client, set_cookie_value

OLD_SECRET = "the-old-starlette-secret"
MAX_AGE = 14 * DAY
DATA: dict[str, Any] = {
    "user_id": 42,
    "name": "Zoë 東京 🍪",
    "roles": ["admin", "staff"],
    "prefs": {"theme": "dark", "n": None, "ok": True, "f": 1.5},
}


async def starlette_cookie(
    data: dict[str, Any], *, at: int = START, session_cookie: str = "session", **options: Any
) -> str:
    """The value Starlette's own SessionMiddleware sets for a session holding ``data``, signed at ``at``."""

    async def login(request: Request) -> PlainTextResponse:
        request.session.update(data)
        return PlainTextResponse("ok")

    options.setdefault("secret_key", OLD_SECRET)
    app = Starlette(
        routes=[Route("/login", login)],
        middleware=[Middleware(StarletteSessionMiddleware, session_cookie=session_cookie, **options)],
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: at)
        async with https_client(app) as client:
            response = await client.get("/login")
    (header,) = response.headers.get_list("set-cookie")
    assert header.startswith(f"{session_cookie}=")
    return set_cookie_value(header)


def signed(payload: bytes, *, at: int = START, secret: str = OLD_SECRET) -> str:
    """``payload`` (already base64) signed as Starlette signs, with itsdangerous at ``at``."""
    signer = itsdangerous.TimestampSigner(secret)
    signer.get_timestamp = lambda: at  # type: ignore[method-assign]  # itsdangerous' overridable clock
    return signer.sign(payload).decode("ascii")


def signed_json(text: bytes, **options: Any) -> str:
    """``text`` as Starlette's payload (standard base64) and signed."""
    return signed(base64.b64encode(text), **options)


def deep(levels: int) -> Any:
    """A value nested ``levels`` lists deep."""
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


def reason(reader: StarletteCookie, value: str, now: int = START) -> Reason:
    """The reason ``reader`` refuses ``value`` with (fails if it opens)."""
    with pytest.raises(InvalidCookie) as refused:
        reader.open(value, now)
    return refused.value.reason


READER = StarletteCookie(OLD_SECRET, max_age=MAX_AGE)


# -- cookies made by Starlette open ---------------------------------------------------------------


@pytest.mark.case("S1")
async def test_a_cookie_made_by_starlette_opens_to_its_data_and_timestamps() -> None:
    """A cookie set by Starlette's middleware opens to its data, issued at its signed time, expiring max_age later."""
    value = await starlette_cookie(DATA, max_age=MAX_AGE)
    assert READER.open(value, START + 60) == LegacySession(DATA, START, START + MAX_AGE)


@pytest.mark.case("S1")
async def test_starlette_itself_reads_back_what_was_migrated() -> None:
    """The value is genuinely Starlette's: its own signer accepts it, and both readers see the same data."""
    value = await starlette_cookie(DATA, max_age=MAX_AGE)
    signer = itsdangerous.TimestampSigner(OLD_SECRET)
    payload = signer.unsign(value)
    assert json.loads(base64.b64decode(payload)) == READER.open(value, START).data


@pytest.mark.case("S1")
@pytest.mark.parametrize(
    "secret_key",
    [OLD_SECRET, Secret(OLD_SECRET)],
    ids=["str", "starlette-Secret"],
)
async def test_the_secret_is_read_as_starlette_reads_it(secret_key: str | Secret) -> None:
    """Starlette's str or Secret secret, given to the reader as str or as its UTF-8 bytes, opens the cookie."""
    value = await starlette_cookie({"a": 1}, secret_key=secret_key)
    assert StarletteCookie(str(secret_key)).open(value, START).data == {"a": 1}
    assert StarletteCookie(str(secret_key).encode("utf-8")).open(value, START).data == {"a": 1}


@pytest.mark.case("S1")
async def test_a_non_ascii_secret_is_used_as_utf_8() -> None:
    """A secret with non-ASCII characters derives the same key as itsdangerous (UTF-8)."""
    secret = "pässwörd ✓ 🔑"
    value = await starlette_cookie({"a": 1}, secret_key=secret)
    assert StarletteCookie(secret).open(value, START).data == {"a": 1}


@pytest.mark.case("S1", "S5")
async def test_without_max_age_the_cookie_has_no_expiry_of_its_own() -> None:
    """With Starlette's max_age=None the value never expires by itself: expires_at is None."""
    value = await starlette_cookie({"a": 1}, max_age=None)
    opened = StarletteCookie(OLD_SECRET, max_age=None).open(value, START + 10 * 365 * DAY)
    assert (opened.issued_at, opened.expires_at) == (START, None)


async def test_a_cookie_of_another_starlette_app_sharing_the_secret_opens_whatever_its_name() -> None:
    """Starlette binds no cookie name into its signature: any name's value opens (the middleware picks the name)."""
    value = await starlette_cookie({"a": 1}, session_cookie="admin_session")
    assert READER.open(value, START).data == {"a": 1}


def test_the_reader_is_a_legacy_cookie_and_its_sessions_are_frozen() -> None:
    """StarletteCookie is a LegacyCookie (statically and at run time); a LegacySession cannot be altered."""
    reader: LegacyCookie = StarletteCookie(OLD_SECRET, "old", None, "/app", "example.com")
    assert isinstance(reader, LegacyCookie)
    assert (reader.cookie_name, reader.path, reader.domain) == ("old", "/app", "example.com")
    with pytest.raises(dataclasses.FrozenInstanceError):
        READER.open(signed_json(b'{"a": 1}'), START).data = {}  # type: ignore[misc]


# -- time -----------------------------------------------------------------------------------------


@pytest.mark.case("S5")
async def test_expiry_counts_max_age_from_the_signed_timestamp() -> None:
    """A second before ts + max_age opens; at and after it, EXPIRED (Starlette still accepted that one second)."""
    value = await starlette_cookie({"a": 1}, max_age=3600)
    reader = StarletteCookie(OLD_SECRET, max_age=3600)
    assert reader.open(value, START + 3599).expires_at == START + 3600
    assert reason(reader, value, START + 3600) == Reason.EXPIRED
    assert reason(reader, value, START + 30 * DAY) == Reason.EXPIRED


@pytest.mark.case("S5")
async def test_the_reader_max_age_decides_not_the_one_the_cookie_was_set_with() -> None:
    """The reader's max_age is applied to the signed timestamp, as in Starlette: the cookie carries no max_age."""
    value = await starlette_cookie({"a": 1}, max_age=MAX_AGE)
    assert reason(StarletteCookie(OLD_SECRET, max_age=60), value, START + 61) == Reason.EXPIRED


@pytest.mark.case("S6")
async def test_a_timestamp_beyond_the_clock_skew_is_future() -> None:
    """Signed more than CLOCK_SKEW seconds ahead of now: FUTURE, with or without max_age; within the skew it opens."""
    value = await starlette_cookie({"a": 1}, at=START + CLOCK_SKEW + 1)
    assert reason(READER, value) == Reason.FUTURE
    assert reason(StarletteCookie(OLD_SECRET, max_age=None), value) == Reason.FUTURE
    assert READER.open(value, START + 1).issued_at == START + CLOCK_SKEW + 1


@pytest.mark.case("S7")
def test_a_timestamp_too_large_for_a_cookie_is_bad_payload() -> None:
    """An authentic timestamp past 2**63 - 1 (eight bytes, top bit set) is BAD_PAYLOAD, not an overflow."""
    assert reason(READER, signed_json(b'{"a": 1}', at=2**63)) == Reason.BAD_PAYLOAD


# -- forged, truncated, other formats --------------------------------------------------------------


@pytest.mark.case("S3")
async def test_a_cookie_signed_with_another_secret_is_bad_mac() -> None:
    """A genuine Starlette cookie signed under another secret does not open."""
    value = await starlette_cookie(DATA, secret_key="another-secret")
    assert reason(READER, value) == Reason.BAD_MAC


@pytest.mark.case("S3")
async def test_altered_data_or_timestamp_is_bad_mac() -> None:
    """Swapping in other data or a later timestamp under the original signature is BAD_MAC."""
    value = await starlette_cookie({"user_id": 42})
    payload, timestamp, signature = value.split(".")
    other_payload = base64.b64encode(b'{"user_id": 1}').decode()
    later = signed_json(b'{"user_id": 42}', at=START + 30 * DAY).split(".")[1]
    assert reason(READER, f"{other_payload}.{timestamp}.{signature}") == Reason.BAD_MAC
    assert reason(READER, f"{payload}.{later}.{signature}", START + 30 * DAY) == Reason.BAD_MAC


@pytest.mark.case("S3", "S10")
async def test_no_single_character_change_opens() -> None:
    """Every one-character substitution of a Starlette cookie is refused, whatever Starlette's lenient parser says."""
    value = await starlette_cookie({"user_id": 42})
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=."
    for i, original in enumerate(value):
        for replacement in alphabet:
            if replacement != original:
                mutated = value[:i] + replacement + value[i + 1 :]
                assert reason(READER, mutated) in {Reason.MALFORMED, Reason.BAD_MAC}, (i, replacement)


@pytest.mark.case("S4")
async def test_truncated_at_every_length_or_extended_never_opens() -> None:
    """Every prefix of a valid cookie, and the cookie extended at either end, is refused by the MAC or sooner."""
    value = await starlette_cookie({"user_id": 42})
    variants = [value[:n] for n in range(len(value))] + [value + "A", value + ".", "A" + value, value + "=="]
    for variant in variants:
        assert reason(READER, variant) in {Reason.MALFORMED, Reason.BAD_MAC}, variant


@pytest.mark.case("S4")
@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "null",
        "invalid",
        "a.b.c",
        "..",
        "e30=.aw17Vg",
        '"e30=.aw17Vg.x"',
        "e30=.aw17Vg.yf9sa5JOxVyfODrTlpYQWyFPIR\u00e9",
    ],
    ids=["empty", "space", "null", "invalid", "short-parts", "dots", "two-parts", "quoted", "non-ascii"],
)
def test_garbage_is_malformed(value: str) -> None:
    """Empty, Starlette's "null" deletion value, too few parts, quoted or non-ASCII: MALFORMED, before any MAC."""
    assert reason(READER, value) == Reason.MALFORMED


@pytest.mark.case("S4")
def test_cookies_of_other_formats_are_malformed() -> None:
    """Our own sealed cookie and a client-sessions cookie are refused as malformed, never mistaken for Starlette's."""
    ours = seal(KEY_A, {"a": 1}, issued_at=START)
    client_sessions = "4FfD2T1Y5gtylxswm2iRPg.spEE5Y1nsIjzCI1w.1800000000000.86400000.KFaQnLhp_Zb_jFIBbws9"
    assert reason(READER, ours) == Reason.MALFORMED
    assert reason(READER, client_sessions) == Reason.MALFORMED


# -- what is inside ---------------------------------------------------------------------------------


@pytest.mark.case("S7")
@pytest.mark.parametrize(
    "data",
    [{"x": float("nan")}, {"x": float("inf")}, {"x": [float("-inf")]}, {"s": "\ud800"}, {"d": deep(40)}],
    ids=["nan", "infinity", "nested-infinity", "lone-surrogate", "too-deep"],
)
async def test_starlette_data_our_rules_refuse_is_bad_payload(data: dict[str, Any]) -> None:
    """Data Starlette signs but we could not seal again (NaN, Infinity, lone surrogate, 40 deep) is BAD_PAYLOAD."""
    assert reason(READER, await starlette_cookie(data)) == Reason.BAD_PAYLOAD


@pytest.mark.case("S7")
@pytest.mark.parametrize(
    "text",
    [
        b"[1, 2]",
        b"null",
        b'"text"',
        b"42",
        b"\xff\xfe{}",
        b"{'a': 1}",
        b'{"a": 1} x',
        pickle.dumps({"a": 1}),
        b'{"d": ' + b"[" * 40 + b"]" * 40 + b"}",
        b'{"n": 1e999}',
        b"\xef\xbb\xbf{}",
    ],
    ids=["array", "null", "string", "number", "utf-16", "repr", "trailing", "pickle", "deep", "1e999", "bom"],
)
def test_authentic_payloads_that_are_not_a_json_object_are_bad_payload(text: bytes) -> None:
    """Correctly signed payloads that are not one strict UTF-8 JSON object are BAD_PAYLOAD, never run or coerced."""
    assert reason(READER, signed_json(text)) == Reason.BAD_PAYLOAD


@pytest.mark.case("S10")
def test_non_canonical_encodings_are_malformed_even_when_correctly_signed() -> None:
    """Payload padding bits, a missing '=', no payload, a leading zero in the timestamp: MALFORMED, though signed."""
    signer = itsdangerous.TimestampSigner(OLD_SECRET)
    timestamp = base64.urlsafe_b64encode(START.to_bytes(4, "big")).rstrip(b"=").decode()
    padded_timestamp = base64.urlsafe_b64encode(b"\0" + START.to_bytes(4, "big")).rstrip(b"=").decode()
    for payload, ts in [("e31=", timestamp), ("e30", timestamp), ("", timestamp), ("e30=", padded_timestamp)]:
        message = f"{payload}.{ts}"
        value = f"{message}.{signer.get_signature(message).decode()}"
        assert reason(READER, value) == Reason.MALFORMED, value
    assert READER.open(f"e30=.{timestamp}.{signer.get_signature(f'e30=.{timestamp}').decode()}", START).data == {}


# -- size -------------------------------------------------------------------------------------------


@pytest.mark.case("S8")
async def test_an_oversize_starlette_cookie_is_too_large() -> None:
    """A genuine Starlette cookie longer than MAX_COOKIE_VALUE (browsers drop those anyway) is TOO_LARGE."""
    value = await starlette_cookie({"blob": "x" * 3100})
    assert len(value) > MAX_COOKIE_VALUE
    assert reason(READER, value) == Reason.TOO_LARGE


@pytest.mark.case("S8")
def test_oversize_input_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 MB value is TOO_LARGE without a regular expression, a decode or a MAC being run."""

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("work done on an oversize value")

    monkeypatch.setattr("sealed_sessions._migration.hmac.new", fail)
    monkeypatch.setattr("sealed_sessions._migration._b64decode_standard", fail)
    assert reason(READER, "e30=" + "A" * 1_000_000) == Reason.TOO_LARGE
    assert reason(READER, "x" * (MAX_COOKIE_VALUE + 1)) == Reason.TOO_LARGE


# -- only InvalidCookie comes out ---------------------------------------------------------------------


@pytest.mark.case("S11")
@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=200)
    | st.from_regex(r"[A-Za-z0-9+/=]{0,60}\.[A-Za-z0-9_-]{0,12}\.[A-Za-z0-9_-]{0,30}", fullmatch=True)
)
def test_arbitrary_text_only_ever_raises_invalid_cookie(value: str) -> None:
    """Whatever text arrives, open raises InvalidCookie (never another exception) and never opens."""
    with pytest.raises(InvalidCookie):
        READER.open(value, START)


# -- configuration ------------------------------------------------------------------------------------


@pytest.mark.case("S12")
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"secret_key": ""}, "secret_key is empty"),
        ({"secret_key": b""}, "secret_key is empty"),
        ({"secret_key": None}, "got a NoneType"),
        ({"secret_key": Secret(OLD_SECRET)}, "got a Secret"),
        ({"secret_key": "\ud800"}, "lone surrogate"),
        ({"session_cookie": "a b"}, "not a valid cookie name"),
        ({"session_cookie": ""}, "not a valid cookie name"),
        ({"path": "app"}, "must start with '/'"),
        ({"domain": "a;b"}, "domain"),
        ({"max_age": 0}, "max_age must be"),
        ({"max_age": -1}, "max_age must be"),
        ({"max_age": "3600"}, "max_age must be"),
        ({"max_age": True}, "max_age must be"),
    ],
)
def test_bad_configuration_is_refused_at_construction(options: dict[str, Any], message: str) -> None:
    """Unusable settings raise ConfigurationError with a message saying what to pass."""
    options.setdefault("secret_key", OLD_SECRET)
    with pytest.raises(ConfigurationError, match=message):
        StarletteCookie(**options)


@pytest.mark.case("S12")
def test_the_secret_never_appears_in_repr_or_refusals() -> None:
    """repr shows the name and max_age only; refusal messages carry the reason only."""
    reader = StarletteCookie(OLD_SECRET, "old_session", 3600)
    assert repr(reader) == "<StarletteCookie 'old_session' max_age=3600>"
    with pytest.raises(InvalidCookie) as refused:
        reader.open(signed_json(b"{}", secret="x"), START)
    assert str(refused.value) == "session cookie rejected: bad_mac"
    assert OLD_SECRET not in repr(reader)
